-- Step scaling (AWS step adjustments, warm-up, cooldown) and scale to zero.
local schema = require("resty.autoscale.policy.schema")
local engine = require("resty.autoscale.policy.engine")
local step = require("resty.autoscale.policy.step")

local function policy(raw)
  local cfg, problems = schema.checkPolicy(raw, "scaling")
  assert.are.same({}, problems)
  return cfg
end

local function eval(cfg, state, now, current, values)
  values = values or {}
  values.now, values.current, values.ready = now, current, values.ready or current
  return engine.evaluate(cfg, state, values)
end

local STEPS = {metric = "p99_latency_ms", threshold = 200, warmup = 60, cooldown = 120, steps = {
  {lower = 0, upper = 100, adjustment = 1}, {lower = 100, adjustment = 3},
  {upper = -100, adjustment = -1}}}

describe("step scaling", function()
  it("picks the step by breach size, lower bound inclusive above the threshold", function()
    local cfg = policy({max_replicas = 50, step = STEPS})
    local cases = {{200, 1}, {299, 1}, {300, 3}, {1000, 3}, {150, 0}, {100, -1}, {101, 0}}
    for _, c in ipairs(cases) do
      local s = step.findStep(cfg.step.steps, c[1] - 200)
      assert.are.equal(c[2], s and s.adjustment or 0, "latency " .. c[1])
    end
  end)

  it("rounds percent changes as AWS does", function()
    local cfg = policy({max_replicas = 50, step = {metric = "error_ratio", threshold = 0.1,
      adjustment_type = "percent_change_in_capacity", min_adjustment_magnitude = 2,
      steps = {{lower = 0, adjustment = 50}, {upper = 0, adjustment = -30}}}})
    assert.are.equal(12, step.applyAdjustment(cfg.step, 8, 50))  -- +4
    assert.are.equal(5, step.applyAdjustment(cfg.step, 3, 50))   -- +1.5 -> 1, raised to magnitude 2
    assert.are.equal(7, step.applyAdjustment(cfg.step, 10, -30)) -- -3
  end)

  it("adds only the difference while a scale-out warms up, and waits with scale-in", function()
    local cfg = policy({max_replicas = 50, step = STEPS})
    local s = engine.newPolicyState(cfg)
    assert.are.equal(5, (eval(cfg, s, 0, 4, {p99_latency_ms = 250})))   -- +1
    assert.are.equal(5, (eval(cfg, s, 10, 5, {p99_latency_ms = 250})))  -- same step in progress
    assert.are.equal(7, (eval(cfg, s, 20, 5, {p99_latency_ms = 400})))  -- 4 + 3, not 5 + 3
    local d, e = eval(cfg, s, 30, 7, {p99_latency_ms = 50})
    assert.are.equal(7, d)
    assert.are.equal("scale-in waits for the scale-out warm-up", e.reason)
    assert.are.equal(6, (eval(cfg, s, 100, 7, {p99_latency_ms = 50})))  -- warm-up over
    d, e = eval(cfg, s, 150, 6, {p99_latency_ms = 50})
    assert.are.equal(6, d)
    assert.are.equal("scale-in cooldown", e.reason)
    assert.are.equal(5, (eval(cfg, s, 221, 6, {p99_latency_ms = 50})))
  end)
end)

describe("scale to zero", function()
  local cfg = policy({min_replicas = 1, max_replicas = 10, target = {value = 100},
    scale_to_zero = {idle = 300, activation = 0}})

  it("goes to zero after the idle time and back to one on the first request", function()
    local s = engine.newPolicyState(cfg)
    assert.are.equal(1, (eval(cfg, s, 0, 1, {requests_per_second = 5})))
    assert.are.equal(1, (eval(cfg, s, 200, 1, {requests_per_second = 0})))
    assert.are.equal(1, (eval(cfg, s, 299, 1, {requests_per_second = 0})))
    local d, e = eval(cfg, s, 300, 1, {requests_per_second = 0})
    assert.are.equal(0, d)
    assert.are.equal("scale_to_zero", e.winner)
    assert.are.equal(0, (eval(cfg, s, 1000, 0, {requests_per_second = 0})))
    d, e = eval(cfg, s, 1001, 0, {requests_per_second = 0.01})
    assert.are.equal(1, d)
    assert.are.equal("activation: traffic at zero replicas", e.reason)
  end)

  it("counts requests held in flight as activity", function()
    local s = engine.newPolicyState(cfg)
    eval(cfg, s, 0, 0, {requests_per_second = 0})
    assert.are.equal(1, (eval(cfg, s, 1, 0, {requests_per_second = 0, in_flight = 1})))
  end)

  it("stays above zero without scale_to_zero", function()
    local plain = policy({min_replicas = 1, max_replicas = 10, target = {value = 100},
      behavior = {scale_down = {stabilization_window = 0}}})
    local s = engine.newPolicyState(plain)
    assert.are.equal(1, (eval(plain, s, 0, 3, {requests_per_second = 0})))
    assert.are.equal(1, (eval(plain, s, 5000, 1, {requests_per_second = 0})))
  end)
end)
