local cjson = require("cjson.safe")
local check = require("resty.autoscale.config.check")
local schema = require("resty.autoscale.admission.schema")

local function run(fn, text)
  local p = check.Problems.new and check.Problems.new() or nil
  if not p then
    -- tstl class: construct through its prototype
    p = setmetatable({ list = {} }, { __index = check.Problems.prototype })
  end
  local v = fn(p, "x", assert(cjson.decode(text)))
  table.sort(p.list)
  return v, p.list
end

describe("admission schema", function()
  it("accepts route limits and fills in defaults", function()
    local v, problems = run(schema.validateAdmission, [[{
      "priority": "critical",
      "rate": [{"algorithm": "token_bucket", "rate": 10},
               {"algorithm": "sliding_window", "limit": 100, "key": {"from": "header", "name": "X-Api-Key"}, "scope": "cluster", "dry_run": true}],
      "adaptive": {"min_rate": 1, "max_rate": 10}}]])
    assert.are.same({}, problems)
    assert.are.equal("critical", v.priority)
    local tb, sw = v.rate[1], v.rate[2]
    assert.are.same({ "token_bucket", 10, 10, "route", "local", "10;w=1" }, { tb.limiter.kind, tb.limiter.rate, tb.limiter.burst, tb.key.from, tb.scope, tb.policy })
    assert.are.same({ "sliding_window", 100, 60, true, "x-api-key", "cluster", "100;w=60" },
      { sw.limiter.kind, sw.limiter.limit, sw.limiter.window, sw.limiter.dryRun, sw.key.name, sw.scope, sw.policy })
    assert.are.same({ 0.05, 1, 0.7 }, { v.adaptive.errorRatioTarget, v.adaptive.latencyTarget, v.adaptive.decrease })
  end)

  it("names each problem with its path", function()
    local v, problems = run(schema.validateAdmission, [[{
      "priority": "vip",
      "rate": [{"algorithm": "leaky"}, {"algorithm": "token_bucket", "rate": 0, "key": {"from": "header"}},
               {"algorithm": "sliding_window", "limit": 5, "burst": 3}],
      "adaptive": {"min_rate": 5, "max_rate": 1}}]])
    assert.is_nil(v)
    assert.are.same({
      'x.adaptive.min_rate: must not exceed max_rate (1), got 5',
      'x.priority: expected one of critical, normal, best_effort, got "vip"',
      'x.rate[0].algorithm: expected one of token_bucket, sliding_window, got "leaky"',
      'x.rate[1].key.name: required string is missing',
      'x.rate[1].rate: expected number 1e-06-10000000, got 0',
      'x.rate[2].burst: unknown field (expected one of: algorithm, key, scope, dry_run, limit, window)',
    }, problems)
  end)

  it("builds each concurrency algorithm", function()
    for _, c in ipairs({
      { '{"algorithm": "gradient"}', "gradient", 20 },
      { '{"algorithm": "aimd", "initial_limit": 50, "timeout_ms": 200}', "aimd", 50 },
      { '{"algorithm": "vegas", "max_limit": 300, "queue": {"size": 10}}', "vegas", 20 },
    }) do
      local v, problems = run(schema.validatePoolConcurrency, c[1])
      assert.are.same({}, problems)
      assert.are.same({ c[2], c[3] }, { v.limit.kind, v.limit.limit })
    end
    local v = run(schema.validatePoolConcurrency, '{"queue": {"size": 10}, "shedding": {"best_effort": 0.3}}')
    assert.are.same({ 0.3, 0.9, 10, 0.5 }, { v.shedding.bestEffortShare, v.shedding.normalShare, v.shedding.queueSize, v.shedding.queueTimeout })
    local _, problems = run(schema.validatePoolConcurrency, '{"algorithm": "aimd", "buffer": 0.1, "min_limit": 50, "max_limit": 10}')
    assert.are.same({
      "x.buffer: unknown field (expected one of: algorithm, initial_limit, min_limit, max_limit, smoothing, shedding, queue, backoff_ratio, timeout_ms)",
      "x: expected min_limit <= initial_limit <= max_limit, got 50, 20, 10",
    }, problems)
  end)

  it("validates breakers", function()
    local v, problems = run(schema.validateBreaker, '{"error_ratio": 0.25, "consecutive_failures": 0}')
    assert.are.same({}, problems)
    assert.are.same({ 0.25, 20, 10, 0, 30, 3, 3 }, { v.errorRatio, v.minRequests, v.window, v.consecutiveFailures, v.openSeconds, v.halfOpenProbes, v.closeAfter })
    local _, bad = run(schema.validateBreaker, '{"error_ratio": 2, "half_open_probes": 0}')
    assert.are.same({ "x.error_ratio: expected number 0.01-1, got 2", "x.half_open_probes: expected integer 1-1000, got 0" }, bad)
  end)
end)
