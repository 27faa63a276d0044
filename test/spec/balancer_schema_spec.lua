local schema = require("resty.autoscale.balancer.schema")
local check = require("resty.autoscale.config.check")
local cjson = require("cjson.safe")

local function validate(raw)
  local p = require("resty.autoscale.lualib_bundle").__TS__New(check.Problems)
  local opts = schema.validateBalancer(p, "pools.api.balancer", raw)
  return opts, p.list
end

describe("balancer options", function()
  it("absent means ewma with defaults, outlier detection on, no slow start or health checks", function()
    local o, problems = validate(nil)
    assert.are.same({}, problems)
    assert.are.equal("ewma", o.algorithm)
    assert.are.equal(10, o.tau)
    assert.are.equal(1, o.failure_penalty)
    assert.are.equal(0.05, o.sample_weight)
    assert.are.equal(1, o.bias)
    assert.are.equal(2, o.tries)
    assert.are.same({ 502, 503, 504 }, o.failure_statuses)
    assert.are.equal(5, o.outlier.consecutive_failures)
    assert.are.equal(30, o.outlier.base_ejection_time)
    assert.are.equal(10, o.outlier.max_ejection_percent)
    assert.are.equal(1.9, o.outlier.success_rate_stdev_factor)
    assert.are.equal(3, o.outlier.latency_factor)
    assert.are.equal(3, o.outlier.latency_minimum_hosts)
    assert.are.equal(20, o.outlier.latency_request_volume)
    assert.is_nil(o.slow_start)
    assert.is_nil(o.health_check)
  end)

  it("takes a bare algorithm name", function()
    for _, name in ipairs({ "round_robin", "least_request", "ewma" }) do
      assert.are.equal(name, validate(name).algorithm)
    end
  end)

  it("fills in the defaults of slow_start and health_check", function()
    local o, problems = validate(cjson.decode('{"algorithm": "least_request", "bias": 2, "slow_start": {}, "health_check": {"path": "/healthz"}}'))
    assert.are.same({}, problems)
    assert.are.equal(2, o.bias)
    assert.are.same({ window = 30, aggression = 1, min_weight = 0.1 }, o.slow_start)
    assert.are.same({ path = "/healthz", interval = 5, unhealthy_interval = 5, timeout = 1, expected_statuses = { 200 }, rise = 2, fall = 3 }, o.health_check)
  end)

  it("switches outlier detection off with enabled: false", function()
    local o, problems = validate(cjson.decode('{"outlier": {"enabled": false}}'))
    assert.are.same({}, problems)
    assert.is_nil(o.outlier)
  end)

  local bad = {
    { raw = '"fastest"', want = 'pools.api.balancer: expected one of round_robin, least_request, ewma, got "fastest"' },
    { raw = '{"algorithm": "p2c"}', want = 'pools.api.balancer.algorithm: expected one of round_robin, least_request, ewma, got "p2c"' },
    { raw = '{"tau": 0}', want = "pools.api.balancer.tau: expected number 0.01-3600, got 0" },
    { raw = '{"sample_weight": 2}', want = "pools.api.balancer.sample_weight: expected number 0-1, got 2" },
    { raw = '{"bias": -1}', want = "pools.api.balancer.bias: expected number 0-10, got -1" },
    { raw = '{"tries": 0}', want = "pools.api.balancer.tries: expected integer 1-10, got 0" },
    { raw = '{"failure_statuses": [200]}', want = "pools.api.balancer.failure_statuses[0]: expected integer 400-599, got 200" },
    { raw = '{"failure_statuses": []}', want = "pools.api.balancer.failure_statuses: expected at least one status, got an empty array" },
    { raw = '{"slow_start": {"window": -5}}', want = "pools.api.balancer.slow_start.window: expected number 0-3600, got -5" },
    { raw = '{"slow_start": {"min_weight": 0}}', want = "pools.api.balancer.slow_start.min_weight: expected number 0.001-1, got 0" },
    { raw = '{"slow_start": true}', want = "pools.api.balancer.slow_start: expected object, got true" },
    { raw = '{"outlier": {"consecutive_failures": 2.5}}', want = "pools.api.balancer.outlier.consecutive_failures: expected integer 0-1000, got 2.5" },
    { raw = '{"outlier": {"max_ejection_percent": 150}}', want = "pools.api.balancer.outlier.max_ejection_percent: expected number 0-100, got 150" },
    { raw = '{"outlier": {"latency_factor": 0.5}}', want = "pools.api.balancer.outlier.latency_factor: expected 0 (off) or a factor above 1, got 0.5" },
    { raw = '{"outlier": {"latency_minimum_hosts": 2}}', want = "pools.api.balancer.outlier.latency_minimum_hosts: expected integer 3-10000, got 2" },
    { raw = '{"outlier": {"base_ejection_time": "30s"}}', want = 'pools.api.balancer.outlier.base_ejection_time: expected number 0.1-86400, got "30s"' },
    { raw = '{"health_check": {"path": "health"}}', want = 'pools.api.balancer.health_check.path: expected a path starting with / (no spaces), got "health"' },
    { raw = '{"health_check": {"interval": 1, "timeout": 2}}', want = "pools.api.balancer.health_check.timeout: must not exceed interval (1), got 2" },
    { raw = '{"health_check": {"expected_statuses": [99]}}', want = "pools.api.balancer.health_check.expected_statuses[0]: expected integer 100-599, got 99" },
    { raw = '{"health_check": {"rise": 0}}', want = "pools.api.balancer.health_check.rise: expected integer 1-100, got 0" },
    { raw = '{"lb": "ewma"}', pattern = "^pools%.api%.balancer%.lb: unknown field" },
    { raw = '{"outlier": {"interval_s": 3}}', pattern = "^pools%.api%.balancer%.outlier%.interval_s: unknown field" },
  }
  for _, c in ipairs(bad) do
    it("refuses " .. c.raw, function()
      local o, problems = validate(cjson.decode(c.raw))
      assert.is_nil(o)
      assert.are.equal(1, #problems)
      if c.want then assert.are.equal(c.want, problems[1]) else assert.matches(c.pattern, problems[1]) end
    end)
  end

  it("reports every problem at once", function()
    local _, problems = validate(cjson.decode('{"tau": -1, "outlier": {"max_ejection_percent": -1}, "health_check": {"fall": 0}}'))
    assert.are.equal(3, #problems)
  end)
end)
