-- The documented Kubernetes HPA behaviours, on the compiled engine.
local schema = require("resty.autoscale.policy.schema")
local engine = require("resty.autoscale.policy.engine")
local hpa = require("resty.autoscale.policy.hpa")

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

describe("HPA replica calculation", function()
  -- {kind, value, target, current, ready, tolerance, expected}
  local cases = {
    {"average", 1000, 100, 5, 5, 0.1, 10},   -- ceil(1000 / 100)
    {"average", 540, 100, 5, 5, 0.1, 5},     -- ratio 1.08: within tolerance
    {"average", 560, 100, 5, 5, 0.1, 6},     -- ratio 1.12: outside
    {"average", 460, 100, 5, 5, 0.1, 5},     -- ratio 0.92: within
    {"average", 440, 100, 5, 5, 0.1, 5},     -- ratio 0.88: ceil(4.4) = 5
    {"average", 390, 100, 5, 5, 0.1, 4},
    {"average", 550, 100, 5, 5, 0.1, 5},     -- ratio 1.1 exactly: within (HPA: ratio <= 1 + 0.1)
    {"average", 900, 100, 10, 10, 0.1, 10},  -- ratio 0.9 exactly: within (1 - 0.1 <= ratio)
    {"value", 330, 300, 3, 3, 0.1, 3},       -- 1.1 by value: within
    {"average", 550, 100, 5, 5, 0.0, 6},     -- no tolerance
    {"average", 1200, 100, 10, 10, 0.1, 12}, -- 12.000000000000002 is still 12
    {"value", 300, 200, 4, 4, 0.1, 6},       -- ceil(1.5 x 4 ready)
    {"value", 300, 200, 4, 2, 0.1, 3},       -- HPA multiplies by ready pods
    {"value", 210, 200, 4, 4, 0.1, 4},       -- within tolerance
    {"average", 250, 100, 0, 0, 0.1, 3},     -- from zero: ceil(value / target)
  }
  for i, c in ipairs(cases) do
    it("case " .. i .. ": " .. c[1] .. " " .. c[2] .. "/" .. c[3] .. " at " .. c[4] .. " replicas", function()
      local desired = hpa.replicasForMetric(c[1], c[2], c[3], c[4], c[5], c[6])
      assert.are.equal(c[7], desired)
    end)
  end
end)

describe("HPA semantics in the engine", function()
  it("takes the largest recommendation of several metrics", function()
    local cfg = policy({max_replicas = 50, behavior = {scale_down = {stabilization_window = 0}},
      metrics = {{metric = "requests_per_second", value = 100}, {metric = "in_flight", value = 10},
                 {metric = "p99_latency_ms", value = 200}}})
    local s = engine.newPolicyState(cfg)
    local desired, e = eval(cfg, s, 0, 4, {requests_per_second = 500, in_flight = 80, p99_latency_ms = 100})
    assert.are.equal(8, desired) -- in-flight 80 / 10 beats rate (5) and latency (2)
    assert.are.equal("in_flight", e.winner)
    assert.are.equal(5, e.rules[1].desired)
    assert.are.equal(8, e.rules[2].desired)
    assert.are.equal(2, e.rules[3].desired)
  end)

  it("holds a scale-down for the 300 s stabilization window (largest recommendation wins)", function()
    local cfg = policy({max_replicas = 50, target = {value = 100}})
    local s = engine.newPolicyState(cfg)
    assert.are.equal(10, (eval(cfg, s, 0, 10, {requests_per_second = 1000})))
    assert.are.equal(10, (eval(cfg, s, 100, 10, {requests_per_second = 300})))
    assert.are.equal(10, (eval(cfg, s, 299, 10, {requests_per_second = 300})))
    -- the sample of t=0 (10) leaves the window at t=300: the largest left is 3 (from t=100)
    local desired, e = eval(cfg, s, 300, 10, {requests_per_second = 300})
    assert.are.equal(3, desired)
    assert.are.equal("scale down", e.reason)
  end)

  it("seeds the window with the current replicas, so a first evaluation does not scale in", function()
    local cfg = policy({max_replicas = 50, target = {value = 100}})
    local s = engine.newPolicyState(cfg)
    local desired, e = eval(cfg, s, 0, 10, {requests_per_second = 100})
    assert.are.equal(10, desired)
    assert.are.equal("held by the scale-down stabilization window", e.reason)
  end)

  it("applies a scale-up stabilization window as the smallest recommendation", function()
    local cfg = policy({max_replicas = 50, target = {value = 100},
      behavior = {scale_up = {stabilization_window = 60}}})
    local s = engine.newPolicyState(cfg)
    assert.are.equal(2, (eval(cfg, s, 0, 2, {requests_per_second = 200})))
    assert.are.equal(2, (eval(cfg, s, 30, 2, {requests_per_second = 800})))
    -- the window now holds only 8s; the default rate limit allows 2 + 4 pods
    assert.are.equal(6, (eval(cfg, s, 61, 2, {requests_per_second = 800})))
  end)

  it("limits scale-up to max(4 pods, 100 %) per 15 s by default", function()
    local cfg = policy({max_replicas = 100, target = {value = 1}})
    local s = engine.newPolicyState(cfg)
    assert.are.equal(5, (eval(cfg, s, 0, 1, {requests_per_second = 80})))   -- 1 + 4 pods
    assert.are.equal(5, (eval(cfg, s, 10, 5, {requests_per_second = 80})))  -- same period
    assert.are.equal(10, (eval(cfg, s, 15, 5, {requests_per_second = 80}))) -- 5 + 100 %
    assert.are.equal(20, (eval(cfg, s, 30, 10, {requests_per_second = 80})))
    local d, e = eval(cfg, s, 45, 20, {requests_per_second = 80})
    assert.are.equal(40, d)
    assert.are.equal("limited by scale_up_limit", e.reason)
  end)

  it("selects the policy allowing the least change with select_policy min, and none with disabled", function()
    local cfg = policy({max_replicas = 100, target = {value = 1}, behavior = {scale_up = {select_policy = "min",
      policies = {{type = "pods", value = 2, period = 60}, {type = "percent", value = 50, period = 60}}}}})
    local s = engine.newPolicyState(cfg)
    assert.are.equal(12, (eval(cfg, s, 0, 10, {requests_per_second = 40}))) -- min(10+2, ceil(15))
    cfg = policy({max_replicas = 100, target = {value = 1}, behavior = {scale_up = {select_policy = "disabled"}}})
    s = engine.newPolicyState(cfg)
    assert.are.equal(10, (eval(cfg, s, 0, 10, {requests_per_second = 40})))
  end)

  it("limits scale-down by policies counted from the period's start", function()
    local cfg = policy({max_replicas = 100, target = {value = 1}, behavior = {scale_down = {stabilization_window = 0,
      policies = {{type = "pods", value = 2, period = 60}, {type = "percent", value = 10, period = 60}}}}})
    local s = engine.newPolicyState(cfg)
    -- select max: the policy allowing the biggest change: min(20 - 2, floor(20 x 0.9)) = 18
    assert.are.equal(18, (eval(cfg, s, 0, 20, {requests_per_second = 1})))
    assert.are.equal(18, (eval(cfg, s, 30, 18, {requests_per_second = 1}))) -- period not over
    assert.are.equal(16, (eval(cfg, s, 61, 18, {requests_per_second = 1})))
  end)

  it("keeps min and max replicas", function()
    local cfg = policy({min_replicas = 2, max_replicas = 6, target = {value = 100},
      behavior = {scale_down = {stabilization_window = 0}}})
    local s = engine.newPolicyState(cfg)
    local d, e = eval(cfg, s, 0, 4, {requests_per_second = 5000})
    assert.are.equal(6, d)
    assert.are.equal("limited by max_replicas", e.reason)
    d, e = eval(cfg, s, 100, 6, {requests_per_second = 0})
    assert.are.equal(2, d)
    assert.are.equal("limited by min_replicas", e.reason)
    assert.are.equal(6, (eval(cfg, s, 200, 9, {requests_per_second = 0})))  -- above max: max
    assert.are.equal(2, (eval(cfg, s, 300, 1, {requests_per_second = 5000}))) -- below min: min
  end)

  it("encodes its explanation as one JSON line", function()
    local cjson = require("cjson.safe")
    local cfg = policy({max_replicas = 10, target = {value = 100}})
    local s = engine.newPolicyState(cfg)
    local _, e = eval(cfg, s, 0, 2, {requests_per_second = 450})
    local line = assert(cjson.encode(e))
    assert.is_nil(line:find("\n"))
    local back = cjson.decode(line)
    assert.are.equal(5, back.desired)
    assert.are.equal(450, back.inputs.requests_per_second)
    assert.are.equal("requests_per_second", back.rules[1].metric)
  end)

  it("weighs requests by route cost", function()
    local cfg = policy({max_replicas = 50, target = {value = 100}, route_costs = {search = 5}})
    local s = engine.newPolicyState(cfg)
    local d = eval(cfg, s, 0, 1, {route_rates = {search = 40, home = 100}})
    assert.are.equal(3, d) -- 40 x 5 + 100 x 1 = 300
  end)

  it("scales on a weighted composite score", function()
    local cfg = policy({max_replicas = 50, composite = {target = 1, terms = {
      {metric = "p99_latency_ms", value = 200, weight = 3}, {metric = "requests_per_second", value = 100, weight = 1}}}})
    local s = engine.newPolicyState(cfg)
    -- latency 2x its target (weight 3), rate on target: score (3 x 2 + 1 x 1) / 4 = 1.75
    local d, e = eval(cfg, s, 0, 4, {p99_latency_ms = 400, requests_per_second = 400})
    assert.are.equal(7, d)
    assert.are.equal("composite", e.winner)
  end)
end)
