local health = require("resty.autoscale.balancer.health")

local OPTS = { path = "/health", interval = 5, unhealthy_interval = 1, timeout = 1, expected_statuses = { 200, 204 }, rise = 2, fall = 3 }

-- Feeds a string of probe results: "+" expected status, "x" wrong status (500), "t" timeout.
local function feed(state, results, start)
  local transitions, now = {}, start or 0
  for c in results:gmatch(".") do
    now = now + 1
    local status = (c == "+" and 200) or (c == "x" and 500) or nil
    if health.onProbe(state, OPTS, status, now) then
      transitions[#transitions + 1] = (state.healthy and "up@" or "down@") .. now
    end
  end
  return transitions
end

describe("active health state machine (rise 2, fall 3)", function()
  local cases = {
    { start = true, results = "xx+xx", want = {}, healthy = true },
    { start = true, results = "xxx", want = { "down@3" }, healthy = false },
    { start = true, results = "xtx", want = { "down@3" }, healthy = false },
    { start = true, results = "xxx+x++", want = { "down@3", "up@7" }, healthy = true },
    { start = false, results = "+", want = {}, healthy = false },
    { start = false, results = "++", want = { "up@2" }, healthy = true },
    { start = false, results = "+x+", want = {}, healthy = false },
    { start = false, results = "++xxx", want = { "up@2", "down@5" }, healthy = false },
  }
  for _, c in ipairs(cases) do
    it(("%s then %q"):format(c.start and "healthy" or "unhealthy", c.results), function()
      local state = health.create(c.start, 0)
      assert.are.same(c.want, feed(state, c.results))
      assert.are.equal(c.healthy, state.healthy)
    end)
  end

  it("records when the verdict changed", function()
    local state = health.create(true, 0)
    feed(state, "xxx", 10)
    assert.are.equal(13, state.since)
  end)

  it("accepts only the expected statuses", function()
    assert.is_true(health.isExpected(OPTS, 204))
    assert.is_false(health.isExpected(OPTS, 302))
    assert.is_false(health.isExpected(OPTS, nil))
  end)
end)

describe("probe schedule", function()
  it("uses interval when healthy and unhealthy_interval when not, with +-10 % jitter", function()
    local up, down = health.create(true, 0), health.create(false, 0)
    local cases = {
      { state = up, random = 0, want = 4.5 },
      { state = up, random = 0.5, want = 5 },
      { state = up, random = 0.999999, want = 5.499999 },
      { state = down, random = 0.5, want = 1 },
      { state = down, random = 0, want = 0.9 },
    }
    for _, c in ipairs(cases) do
      assert.is_true(math.abs(health.probeDelay(c.state, OPTS, c.random) - c.want) < 1e-5)
    end
  end)

  it("is due once the scheduled time comes", function()
    local state = health.create(true, 100)
    assert.is_true(health.due(state, 100))
    assert.are.equal(105, health.scheduleNext(state, OPTS, 100, 0.5))
    assert.is_false(health.due(state, 104.9))
    assert.is_true(health.due(state, 105))
  end)
end)
