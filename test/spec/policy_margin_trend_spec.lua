-- Measured-error quantile margins, the level forecast, the trend term and per-direction
-- tolerances (the pieces of the default policy that meets issue 6's backtest targets).
local schema = require("resty.autoscale.policy.schema")
local engine = require("resty.autoscale.policy.engine")
local errors = require("resty.autoscale.policy.errors")
local trend = require("resty.autoscale.policy.trend")
local hpa = require("resty.autoscale.policy.hpa")

local function policy(raw)
  local cfg, problems = schema.checkPolicy(raw, "scaling")
  assert.are.same({}, problems)
  return cfg
end

local function rule(e, name)
  for _, r in ipairs(e.rules) do if r.rule == name then return r end end
end

describe("measured error window", function()
  it("gives the nearest-rank quantile once it holds five errors", function()
    local w = errors.newErrorWindow(5)
    for _, e in ipairs({10, 0, 10, 0}) do errors.pushError(w, e) end
    assert.is_nil(errors.errorQuantile(w, 0.8))
    errors.pushError(w, 30)
    for _, case in ipairs({{0.2, 0}, {0.5, 10}, {0.8, 10}, {0.81, 30}, {1, 30}, {0, 0}}) do
      assert.are.equal(case[2], errors.errorQuantile(w, case[1]), "q " .. case[1])
    end
    assert.are.equal(10, errors.meanAbsError(w))
  end)

  it("forgets the oldest error when full", function()
    local w = errors.newErrorWindow(5)
    for _, e in ipairs({100, 1, 2, 3, 4, -6}) do errors.pushError(w, e) end
    assert.are.equal(4, errors.errorQuantile(w, 1))
    assert.are.equal(-6, errors.errorQuantile(w, 0.2))
    assert.are.equal(16 / 5, errors.meanAbsError(w))
  end)
end)

describe("ramp growth", function()
  local function means(list, size)
    local r = trend.newMinuteMeans(size or 3)
    for i, v in ipairs(list) do trend.pushMinute(r, i, v) end
    return r
  end
  local cases = {
    {"smallest of two rises", {100, 120, 150}, 1.2},
    {"a fall breaks the ramp", {100, 90, 150}, 1},
    {"flat is no ramp", {100, 100, 120}, 1},
    {"capped at max_growth", {100, 200, 400}, 1.25},
    {"a rise from zero is a burst", {0, 50, 100}, 1},
    {"too few minutes", {100, 120}, 1},
  }
  for _, c in ipairs(cases) do
    it(c[1], function() assert.are.equal(c[3], trend.rampGrowth(means(c[2]), 2, 1.25)) end)
  end

  it("starts over after a missing minute", function()
    local r = trend.newMinuteMeans(3)
    trend.pushMinute(r, 1, 100); trend.pushMinute(r, 2, 120); trend.pushMinute(r, 4, 150)
    assert.are.equal(1, trend.rampGrowth(r, 2, 1.25))
    trend.pushMinute(r, 5, 180); trend.pushMinute(r, 6, 216)
    assert.are.equal(1.2, trend.rampGrowth(r, 2, 1.25))
  end)

  it("projects the rate over the horizon", function()
    assert.are.equal(144, trend.project(100, 1.2, 120))
    assert.are.equal(100, trend.project(100, 1, 120))
  end)
end)

describe("per-direction tolerance", function()
  it("defaults both directions to the policy's tolerance", function()
    local cfg = policy({max_replicas = 10, target = {value = 50}, tolerance = 0.2})
    assert.are.equal(0.2, cfg.behavior.scale_up.tolerance)
    assert.are.equal(0.2, cfg.behavior.scale_down.tolerance)
  end)

  it("scales up past a ratio the scale-down tolerance would hold", function()
    -- ratio 1.05 above, 0.95 below: up tolerance 0 acts, down tolerance 0.1 holds
    assert.are.equal(11, (hpa.replicasForMetric("average", 525, 50, 10, 10, 0, 0.1)))
    assert.are.equal(10, (hpa.replicasForMetric("average", 475, 50, 10, 10, 0, 0.1)))
    assert.are.equal(10, (hpa.replicasForMetric("average", 525, 50, 10, 10, 0.1)))
    local cfg = policy({max_replicas = 20, target = {value = 50}, behavior = {scale_up = {tolerance = 0}}})
    local s = engine.newPolicyState(cfg)
    assert.are.equal(11, (engine.evaluate(cfg, s, {now = 0, current = 10, ready = 10, requests_per_second = 525})))
  end)
end)

describe("schema of the new fields", function()
  it("fills in documented defaults", function()
    local cfg = policy({max_replicas = 10, target = {value = 80}, predictive = {}, trend = {}})
    local p = cfg.predictive
    assert.are.same({"holt_winters", 0, 60, "none"}, {p.model, p.quantile, p.error_window, p.warm_up})
    local t = cfg.trend
    assert.are.same({80, 120, 2, 1.25}, {t.target, t.horizon, t.minutes, t.max_growth})
    assert.is_nil(policy({max_replicas = 10, target = {value = 80}, trend = {enabled = false}}).trend)
  end)

  it("names bad values by path", function()
    local _, problems = schema.checkPolicy({max_replicas = 10, metrics = {{metric = "in_flight", value = 4}},
      predictive = {target = 10, model = "arima", quantile = 2, error_window = 1},
      trend = {max_growth = 0.5}, behavior = {scale_up = {tolerance = -1}}}, "s")
    table.sort(problems)
    assert.are.same({
      "s.behavior.scale_up.tolerance: expected number 0-1, got -1",
      "s.predictive.error_window: expected integer 5-10080, got 1",
      "s.predictive.model: expected one of holt_winters, level, got \"arima\"",
      "s.predictive.quantile: expected number 0-1, got 2",
      "s.trend.max_growth: expected number 1-10, got 0.5",
      "s.trend.target: required (requests per second per replica) when no requests_per_second target is tracked",
    }, problems)
  end)
end)

describe("level forecast with a quantile margin", function()
  -- One evaluation a minute; alpha 1: the level is the last complete minute. The forecast made
  -- as minute k begins is for minute k + 1 (delay 60, buffer 0) and equals minute k - 1.
  local cfg = policy({max_replicas = 100, target = {value = 1000}, behavior = {scale_up = {tolerance = 0}},
    predictive = {model = "level", alpha = 1, provision_delay = 60, buffer = 0, target = 100, quantile = 0.8, error_window = 5}})

  it("forecasts after one minute, then adds the measured error quantile", function()
    local s = engine.newPolicyState(cfg)
    local _, e = engine.evaluate(cfg, s, {now = 0, current = 1, ready = 1, requests_per_second = 100})
    assert.are.equal("no complete minute yet", rule(e, "predictive").note)
    local rates = {100, 110, 100, 120, 100, 150, 100}
    for k, r in ipairs(rates) do engine.evaluate(cfg, s, {now = 60 * k, current = 1, ready = 1, requests_per_second = r}) end
    -- errors of minutes 2..6: 10, 0, 10, 0, 30 -> 0.8 quantile 10, on a level of 100
    local d
    d, e = engine.evaluate(cfg, s, {now = 480, current = 1, ready = 1, requests_per_second = 100})
    local r = rule(e, "predictive")
    assert.are.equal(110, r.value)
    assert.are.equal(2, r.desired)
    assert.are.equal(2, d)
    assert.are.equal("predictive", e.winner)
  end)
end)

describe("trend rule", function()
  local cfg = policy({max_replicas = 100, target = {value = 1000}, behavior = {scale_up = {tolerance = 0}},
    trend = {target = 100, horizon = 120, minutes = 2, max_growth = 1.25}})

  it("projects a sustained ramp and never scales in alone", function()
    local s = engine.newPolicyState(cfg)
    for k, r in ipairs({100, 120, 144}) do engine.evaluate(cfg, s, {now = 60 * (k - 1), current = 1, ready = 1, requests_per_second = r}) end
    local d, e = engine.evaluate(cfg, s, {now = 180, current = 1, ready = 1, requests_per_second = 172.8})
    local r = rule(e, "trend")
    assert.are.equal(1.2, r.growth)
    assert.is_true(math.abs(r.value - 248.832) < 1e-9, "projected " .. r.value)
    assert.are.same({3, 3, "trend"}, {r.desired, d, e.winner})
    -- a minute that falls ends the ramp: the projection is the rate itself, and 3 replicas stay
    -- (scale-down stabilization)
    engine.evaluate(cfg, s, {now = 240, current = 3, ready = 3, requests_per_second = 50})
    d, e = engine.evaluate(cfg, s, {now = 300, current = 3, ready = 3, requests_per_second = 50})
    r = rule(e, "trend")
    assert.are.same({1, "no sustained rise", 3}, {r.growth, r.note, d})
  end)
end)
