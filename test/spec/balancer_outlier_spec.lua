local outlier = require("resty.autoscale.balancer.outlier")

local function options(over)
  local o = {}
  for k, v in pairs(outlier.OUTLIER_DEFAULTS) do o[k] = v end
  for k, v in pairs(over or {}) do o[k] = v end
  return o
end

local function keys(n)
  local list = {}
  for i = 1, n do list[i] = "10.0.0." .. i .. ":80" end
  return list
end

local function fail(state, key, times, now)
  local ejected = false
  for _ = 1, times do ejected = outlier.record(state, key, now, true, 0.01) or ejected end
  return ejected
end

describe("outlier ejection limit", function()
  local cases = {
    { n = 1, percent = 10, want = 0 },
    { n = 2, percent = 10, want = 1 },
    { n = 3, percent = 10, want = 1 },
    { n = 20, percent = 10, want = 2 },
    { n = 25, percent = 10, want = 2 },
    { n = 10, percent = 100, want = 9 },
    { n = 10, percent = 0, want = 1 },
  }
  for _, c in ipairs(cases) do
    it(("pool of %d at %d %% ejects at most %d"):format(c.n, c.percent, c.want), function()
      assert.are.equal(c.want, outlier.ejectionLimit(c.n, c.percent))
    end)
  end
end)

describe("consecutive failures", function()
  it("eject on the fifth failure in a row, not before", function()
    local state = outlier.create(keys(10), options(), 0)
    assert.is_false(fail(state, "10.0.0.1:80", 4, 1))
    assert.is_true(outlier.record(state, "10.0.0.1:80", 1, true, 0.01))
    assert.is_true(outlier.isEjected(state, "10.0.0.1:80"))
  end)

  it("a success resets the count", function()
    local state = outlier.create(keys(10), options(), 0)
    fail(state, "10.0.0.1:80", 4, 1)
    outlier.record(state, "10.0.0.1:80", 1, false, 0.01)
    assert.is_false(fail(state, "10.0.0.1:80", 4, 1))
  end)

  it("ejection time grows base x times ejected, capped at max_ejection_time, then decays", function()
    local state = outlier.create(keys(10), options({ base_ejection_time = 30, max_ejection_time = 80, interval = 10 }), 0)
    local key, now = "10.0.0.1:80", 0
    local want = { 30, 60, 80, 80 }
    for round = 1, 4 do
      fail(state, key, 5, now)
      local peer = state.byKey[key]
      assert.are.equal(want[round], peer.ejectedUntil - now, "round " .. round)
      now = peer.ejectedUntil
      assert.is_true(outlier.evaluate(state, now))
      assert.is_false(outlier.isEjected(state, key))
      assert.are.equal(now, peer.returnedAt)
    end
    -- Ten quiet intervals bring the count back to zero.
    for _ = 1, 10 do
      now = now + 10
      outlier.evaluate(state, now)
    end
    assert.are.equal(0, state.byKey[key].timesEjected)
  end)

  it("stay ejected until the time passes", function()
    local state = outlier.create(keys(3), options(), 0)
    fail(state, "10.0.0.1:80", 5, 100)
    assert.is_false(outlier.evaluate(state, 129.9))
    assert.is_true(outlier.isEjected(state, "10.0.0.1:80"))
    assert.is_true(outlier.evaluate(state, 130))
    assert.is_false(outlier.isEjected(state, "10.0.0.1:80"))
  end)

  it("never eject more than max_ejection_percent, and always leave one peer", function()
    local state = outlier.create(keys(3), options(), 0)
    assert.is_true(fail(state, "10.0.0.1:80", 5, 1))
    assert.is_false(fail(state, "10.0.0.2:80", 5, 1))
    assert.are.equal(1, state.ejectedCount)
    local single = outlier.create(keys(1), options({ max_ejection_percent = 100 }), 0)
    assert.is_false(fail(single, "10.0.0.1:80", 50, 1))
  end)

  it("0 disables the rule", function()
    local state = outlier.create(keys(3), options({ consecutive_failures = 0 }), 0)
    assert.is_false(fail(state, "10.0.0.1:80", 100, 1))
  end)

  it("ignore unknown peers and keep state across sync", function()
    local state = outlier.create(keys(3), options(), 0)
    assert.is_false(outlier.record(state, "10.9.9.9:80", 1, true, 0.01))
    fail(state, "10.0.0.1:80", 5, 1)
    outlier.sync(state, { "10.0.0.1:80", "10.0.0.7:80" })
    assert.is_true(outlier.isEjected(state, "10.0.0.1:80"))
    assert.are.equal(1, state.ejectedCount)
    outlier.sync(state, { "10.0.0.7:80" })
    assert.are.equal(0, state.ejectedCount)
  end)
end)

describe("success-rate outliers", function()
  local function run(rates, over)
    local n = #rates
    local o = options(over)
    o.consecutive_failures = 0 -- this rule alone
    local state = outlier.create(keys(n), o, 0)
    for i, rate in ipairs(rates) do
      for r = 1, 200 do
        outlier.record(state, "10.0.0." .. i .. ":80", 5, (r % 100) >= rate, 0.01)
      end
    end
    outlier.evaluate(state, 10)
    local ejected = {}
    for i = 1, n do
      if outlier.isEjected(state, "10.0.0." .. i .. ":80") then ejected[#ejected + 1] = i end
    end
    return ejected
  end

  local cases = {
    { name = "eject the one peer below mean - 1.9 sigma", rates = { 99, 99, 99, 98, 99, 99, 99, 99, 99, 60 }, want = { 10 } },
    { name = "eject nobody when all are alike", rates = { 90, 90, 90, 90, 90 }, want = {} },
    { name = "skip the analysis below the minimum number of hosts", rates = { 99, 99, 99, 10 }, want = {} },
    { name = "respect the ejection cap", rates = { 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 50, 50 },
      want = { 19, 20 }, over = { max_ejection_percent = 10 } },
    { name = "cap at one of ten", rates = { 99, 99, 99, 99, 99, 99, 99, 99, 50, 50 }, want = { 9 } },
    { name = "a factor of 0 disables the rule", rates = { 99, 99, 99, 99, 99, 99, 99, 99, 99, 60 }, want = {}, over = { success_rate_stdev_factor = 0 } },
    { name = "ignore peers with too few requests", rates = { 99, 99, 99, 98, 99, 99, 99, 99, 99, 60 }, want = {}, over = { success_rate_request_volume = 500 } },
  }
  for _, c in ipairs(cases) do
    it(c.name, function()
      assert.are.same(c.want, run(c.rates, c.over))
    end)
  end

  it("reset the counters at the end of each interval", function()
    local state = outlier.create(keys(2), options(), 0)
    outlier.record(state, "10.0.0.1:80", 5, true)
    assert.are.equal(1, state.byKey["10.0.0.1:80"].requests)
    outlier.evaluate(state, 9)
    assert.are.equal(1, state.byKey["10.0.0.1:80"].requests)
    outlier.evaluate(state, 10)
    assert.are.equal(0, state.byKey["10.0.0.1:80"].requests)
    assert.are.equal(20, state.intervalEnd)
  end)
end)

describe("latency outliers", function()
  -- Each peer gets `tries` successful tries of its latency, then one evaluation at t = 1 (before
  -- the interval ends: the latency rule runs on every evaluation).
  local function run(latencies, over, tries)
    local o = options(over)
    o.consecutive_failures = 0
    o.success_rate_stdev_factor = 0 -- this rule alone
    local state = outlier.create(keys(#latencies), o, 0)
    for i, latency in ipairs(latencies) do
      for _ = 1, tries or 50 do outlier.record(state, "10.0.0." .. i .. ":80", 0.5, false, latency) end
    end
    local changed = outlier.evaluate(state, 1)
    local ejected = {}
    for i = 1, #latencies do
      if outlier.isEjected(state, "10.0.0." .. i .. ":80") then ejected[#ejected + 1] = i end
    end
    return ejected, changed, state
  end

  local cases = {
    { name = "eject the peer five times slower than the median", latencies = { 0.01, 0.01, 0.05 }, want = { 3 } },
    { name = "keep a peer twice as slow (under the factor 3)", latencies = { 0.01, 0.01, 0.02 }, want = {} },
    { name = "keep a whole pool that slows down together", latencies = { 0.05, 0.05, 0.05 }, want = {} },
    { name = "judge nobody with fewer than latency_minimum_hosts peers", latencies = { 0.01, 0.05 }, want = {} },
    { name = "two slow peers of five: the cap ejects one", latencies = { 0.01, 0.01, 0.01, 0.05, 0.05 }, want = { 4 } },
    { name = "two slow peers of five: a 40 % cap ejects both", latencies = { 0.01, 0.01, 0.01, 0.05, 0.05 }, want = { 4, 5 }, over = { max_ejection_percent = 40 } },
    { name = "a factor of 0 disables the rule", latencies = { 0.01, 0.01, 0.05 }, want = {}, over = { latency_factor = 0 } },
    { name = "peers with too few tries do not qualify", latencies = { 0.01, 0.01, 0.05 }, want = {}, tries = 19 },
    { name = "the median, not the mean: one very slow peer of five", latencies = { 0.01, 0.011, 0.012, 0.01, 1 }, want = { 5 } },
    { name = "respect the ejection cap (one of ten)", latencies = { 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.05, 0.06 }, want = { 9 } },
  }
  for _, c in ipairs(cases) do
    it(c.name, function()
      local ejected, changed = run(c.latencies, c.over, c.tries)
      assert.are.same(c.want, ejected)
      assert.are.equal(#c.want > 0, changed)
    end)
  end

  it("failed tries do not count towards a peer's latency", function()
    local o = options({ consecutive_failures = 0, success_rate_stdev_factor = 0 })
    local state = outlier.create(keys(3), o, 0)
    for i = 1, 3 do
      for _ = 1, 30 do outlier.record(state, "10.0.0." .. i .. ":80", 0.5, false, 0.01) end
    end
    for _ = 1, 30 do outlier.record(state, "10.0.0.3:80", 0.5, true, 5) end
    assert.is_false(outlier.evaluate(state, 1))
    assert.are.equal(30, state.byKey["10.0.0.3:80"].latencyCount)
  end)

  it("an ejected slow peer comes back with fresh figures, and is ejected again for longer", function()
    local _, _, state = run({ 0.01, 0.01, 0.05 })
    local slow = state.byKey["10.0.0.3:80"]
    assert.are.equal(31, slow.ejectedUntil) -- base_ejection_time 30 s from t = 1
    assert.is_true(outlier.evaluate(state, 31))
    assert.is_false(slow.ejected)
    assert.are.equal(0, slow.latencyCount)
    -- the interval ended at t = 31 too: every peer starts counting again
    for i = 1, 3 do
      for _ = 1, 20 do outlier.record(state, "10.0.0." .. i .. ":80", 31.5, false, i == 3 and 0.05 or 0.01) end
    end
    assert.is_true(outlier.evaluate(state, 32))
    assert.is_true(slow.ejected)
    assert.are.equal(32 + 60, slow.ejectedUntil)
  end)
end)
