-- Holt-Winters on synthetic seasonal series, its persistence, and the predictive rule.
local hw = require("resty.autoscale.policy.holtwinters")
local schema = require("resty.autoscale.policy.schema")
local engine = require("resty.autoscale.policy.engine")

local SEASON = 1440
local function series(m) -- daily sine of amplitude 50 on a level of 200 rising 0.01 per minute
  return 200 + 0.01 * m + 50 * math.sin(2 * math.pi * (m % SEASON) / SEASON)
end
local CFG = {season = SEASON, alpha = 0.2, beta = 0.01, gamma = 0.3}

describe("Holt-Winters", function()
  it("forecasts nothing before a full season", function()
    local h = hw.newHoltWinters(CFG)
    for m = 0, SEASON - 2 do hw.observe(h, m, series(m)) end
    assert.is_nil(hw.forecast(h, SEASON + 5))
    hw.observe(h, SEASON - 1, series(SEASON - 1))
    assert.is_not_nil(hw.forecast(h, SEASON + 5))
  end)

  it("recovers the daily period and the trend of a seasonal series", function()
    local h = hw.newHoltWinters(CFG)
    local last = 6 * SEASON - 1
    for m = 0, last do hw.observe(h, m, series(m)) end
    assert.is_true(math.abs(h.trend - 0.01) < 0.005, "trend " .. h.trend)
    for _, ahead in ipairs({1, 60, 360, 720, 1080}) do
      local f = hw.forecast(h, last + ahead)
      local want = series(last + ahead)
      assert.is_true(math.abs(f - want) < 0.05 * want, ("%d min ahead: %.1f, want %.1f"):format(ahead, f, want))
    end
    -- the seasonal term peaks a quarter of a day into the season, as the sine does
    local best, bestSlot = -math.huge, 0
    for slot = 1, SEASON do
      if h.seasonal[slot] > best then best, bestSlot = h.seasonal[slot], slot end
    end
    assert.is_true(math.abs((bestSlot - 1) - SEASON / 4) < 30, "peak at minute " .. (bestSlot - 1))
  end)

  it("round-trips its history through encode and decode", function()
    local h = hw.newHoltWinters(CFG)
    for m = 0, 2 * SEASON do hw.observe(h, m, series(m)) end
    local text = hw.encode(h)
    local back = assert(hw.decode(text, CFG))
    assert.are.equal(math.floor(hw.forecast(h, 2 * SEASON + 90) * 1000), math.floor(hw.forecast(back, 2 * SEASON + 90) * 1000))
    local partial = hw.newHoltWinters(CFG)
    for m = 0, 99 do hw.observe(partial, m, m) end
    local p2 = assert(hw.decode(hw.encode(partial), CFG))
    assert.are.equal(100, hw.historyMinutes(p2))
    local bad, err = hw.decode(text, {season = 60, alpha = 0.2, beta = 0.01, gamma = 0.3})
    assert.is_nil(bad)
    assert.are.equal("history season 1440 differs from the configured 60", err)
    assert.is_nil((hw.decode("garbage", CFG)))
  end)

  it("fills a missing minute with the last value and starts over after a season-long gap", function()
    local h = hw.newHoltWinters({season = 4, alpha = 0.5, beta = 0.1, gamma = 0.1})
    hw.observe(h, 0, 10); hw.observe(h, 2, 30)
    assert.are.equal(3, hw.historyMinutes(h))
    hw.observe(h, 20, 5)
    assert.are.equal(1, hw.historyMinutes(h))
  end)
end)

describe("predictive rule", function()
  local cfg = assert(schema.checkPolicy({max_replicas = 100, target = {value = 100},
    predictive = {provision_delay = 60, buffer = 120}}, "scaling"))

  it("scales ahead on an external forecast but never scales in on it alone", function()
    local s = engine.newPolicyState(cfg)
    local d, e = engine.evaluate(cfg, s, {now = 0, current = 5, ready = 5, requests_per_second = 500, forecast = 900})
    assert.are.equal(9, d)
    assert.are.equal("predictive", e.winner)
    s = engine.newPolicyState(cfg)
    d = engine.evaluate(cfg, s, {now = 0, current = 5, ready = 5, requests_per_second = 500, forecast = 100})
    assert.are.equal(5, d)
  end)

  it("reads an external forecaster through its source, and falls back to the model without a value", function()
    local ext = assert(schema.checkPolicy({max_replicas = 100, target = {value = 100},
      predictive = {model = "level", forecast_source = "forecaster"}}, "scaling"))
    assert.are.equal("forecaster", ext.predictive.forecast_source)
    local s = engine.newPolicyState(ext)
    local d, e = engine.evaluate(ext, s, {now = 0, current = 10, ready = 10, requests_per_second = 1000,
      external = {forecaster = 1500}})
    assert.are.equal(15, d)
    assert.are.equal("predictive", e.winner)
    assert.are.equal("external forecast", e.rules[2].note)
    assert.are.equal(1500, e.inputs.forecast)
    -- the source goes quiet: the level model (the minute 0 mean, 1000) stands in
    d, e = engine.evaluate(ext, s, {now = 60, current = 15, ready = 15, requests_per_second = 1000, external = {}})
    assert.are.equal(1000, e.rules[2].value)
    assert.are.equal("no value from forecaster: built-in forecast", e.rules[2].note)
    assert.is_nil(e.inputs.forecast)
    local _, problems = schema.checkPolicy({max_replicas = 10, target = {value = 1}, predictive = {forecast_source = "a b"}}, "scaling")
    assert.are.same({"scaling.predictive.forecast_source: expected a source name of letters, digits, '_', '.', '-', ':' or '/', got \"a b\""}, problems)
  end)

  it("is off until a day of history, then follows the daily pattern", function()
    local s = engine.newPolicyState(cfg)
    local _, e = engine.evaluate(cfg, s, {now = 0, current = 2, ready = 2, requests_per_second = 150})
    assert.are.equal("history 0 of 1440 minutes", e.rules[2].note)
    -- two days of a daily pattern at one evaluation a minute: 1000 rps for an hour at 10:00
    local function rate(t) local tod = t % 86400 return (tod >= 36000 and tod < 39600) and 1000 or 100 end
    for t = 60, 2 * 86400 + 35700, 60 do
      engine.evaluate(cfg, s, {now = t, current = 1, ready = 1, requests_per_second = rate(t)})
    end
    -- 3 minutes before the surge the forecast at now + 180 s already asks for it
    local d
    d, e = engine.evaluate(cfg, s, {now = 2 * 86400 + 35820, current = 1, ready = 1, requests_per_second = 100})
    assert.are.equal("predictive", e.winner)
    assert.is_true(d >= 5, "desired " .. d)
  end)
end)
