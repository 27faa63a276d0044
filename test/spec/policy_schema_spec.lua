local schema = require("resty.autoscale.policy.schema")

describe("policy schema", function()
  it("fills in the HPA defaults", function()
    local cfg, problems = schema.checkPolicy({max_replicas = 10, target = {value = 50}}, "pools.api.scaling")
    assert.are.same({}, problems)
    assert.are.equal(1, cfg.min_replicas)
    assert.are.equal(0.1, cfg.tolerance)
    assert.are.equal(0, cfg.behavior.scale_up.stabilization_window)
    assert.are.equal(300, cfg.behavior.scale_down.stabilization_window)
    assert.are.same({{type = "pods", value = 4, period = 15}, {type = "percent", value = 100, period = 15}}, cfg.behavior.scale_up.policies)
    assert.are.same({{type = "percent", value = 100, period = 15}}, cfg.behavior.scale_down.policies)
    assert.are.equal("requests_per_second", cfg.target.metric)
    assert.are.equal("average", cfg.target.kind)
  end)

  it("scale_to_zero: hold_timeout defaults to 30 s, 0 to 3600 accepted, beyond named", function()
    local cases = {
      {nil, 30, nil},
      {0, 0, nil},
      {3600, 3600, nil},
      {-1, nil, "pools.api.scaling.scale_to_zero.hold_timeout: expected number 0-3600, got -1"},
      {"5", nil, 'pools.api.scaling.scale_to_zero.hold_timeout: expected number 0-3600, got "5"'},
    }
    for _, c in ipairs(cases) do
      local cfg, problems = schema.checkPolicy({max_replicas = 2, min_replicas = 0, target = {value = 5},
        scale_to_zero = {idle = 60, hold_timeout = c[1]}}, "pools.api.scaling")
      if c[2] then
        assert.are.same({}, problems)
        assert.are.equal(c[2], cfg.scale_to_zero.hold_timeout)
      else
        assert.are.same({c[3]}, problems)
      end
    end
  end)

  it("names every problem by its path", function()
    local _, problems = schema.checkPolicy({max_replicas = 10, min_replicas = 20, colour = 1,
      metrics = {{metric = "external", value = 1}, {metric = "in_flight", value = 0}},
      behavior = {scale_down = {select_policy = "Max", policies = {{type = "pods", value = 1, period = 4000}}}},
      step = {metric = "error_ratio", threshold = 0.1, steps = {{lower = 0, adjustment = 1}, {lower = 0.5, adjustment = 2}}}},
      "pools.api.scaling")
    table.sort(problems)
    assert.are.same({
      "pools.api.scaling.behavior.scale_down.policies[0].period: expected integer 1-1800, got 4000",
      "pools.api.scaling.behavior.scale_down.select_policy: expected one of max, min, disabled, got \"Max\"",
      "pools.api.scaling.colour: unknown field (expected one of: " .. table.concat(schema.POLICY_KEYS, ", ") .. ")",
      "pools.api.scaling.metrics[0].name: required string is missing",
      "pools.api.scaling.metrics[1].value: expected number 1e-09-1000000000000, got 0",
      "pools.api.scaling.min_replicas: must not exceed max_replicas (10), got 20",
      "pools.api.scaling.step.steps[1]: overlaps pools.api.scaling.step.steps[0]",
    }, problems)
  end)

  it("asks for something to scale on", function()
    local _, problems = schema.checkPolicy({max_replicas = 10}, "s")
    assert.are.same({"s.target: expected a target, metrics, step or composite: something to scale on"}, problems)
  end)
end)
