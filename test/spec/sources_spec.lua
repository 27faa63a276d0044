-- Metric sources, pure parts: Prometheus answers, JSON paths, Redis list replies, staleness,
-- and the sources section's validation.
local prometheus = require("resty.autoscale.sources.prometheus")
local json_url = require("resty.autoscale.sources.json_url")
local redis_list = require("resty.autoscale.sources.redis_list")
local source = require("resty.autoscale.sources.source")
local schema = require("resty.autoscale.sources.schema")
local check = require("resty.autoscale.config.check")
local cjson = require("cjson.safe")

describe("prometheus instant query", function()
  local cases = {
    { '{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000.1,"42"]}]}}', 42, nil },
    { '{"status":"success","data":{"resultType":"scalar","result":[1700000000.1,"3.5"]}}', 3.5, nil },
    { '{"status":"success","data":{"resultType":"vector","result":[]}}', nil, "query returned no series" },
    { '{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"1"]},{"value":[1,"2"]}]}}', nil, "query returned 2 series: aggregate it to one (e.g. sum(...))" },
    { '{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"NaN"]}]}}', nil, "sample is not a finite number" },
    { '{"status":"success","data":{"resultType":"matrix","result":[]}}', nil, "unsupported result type matrix (use an instant vector or scalar)" },
    { '{"status":"error","errorType":"bad_data","error":"parse error at char 4"}', nil, "HTTP 400: query failed: parse error at char 4", 400 },
  }
  for i, c in ipairs(cases) do
    it("case " .. i, function()
      local v, err = prometheus.parseQueryResponse(c[4] or 200, c[1])
      assert.are.equal(c[2], v)
      assert.are.equal(c[3], err)
    end)
  end
  it("says when the answer is not JSON", function()
    local v, err = prometheus.parseQueryResponse(502, "<html>bad gateway</html>")
    assert.is_nil(v)
    assert.matches("^HTTP 502: response is not JSON", err)
  end)
  it("escapes the query in the URL", function()
    assert.are.equal("http://p:9090/api/v1/query?query=sum%28rate%28x%5B1m%5D%29%29", prometheus.queryUrl({ url = "http://p:9090/", query = "sum(rate(x[1m]))" }))
  end)
  it("fetches through the io it is given, with the bearer token", function()
    local seen
    local io = {
      http = function(req) seen = req return { status = 200, body = '{"status":"success","data":{"resultType":"scalar","result":[1,"7"]}}' } end,
      secret = function(ref) return "tok-" .. ref.env end,
    }
    local v, err = prometheus.fetch({ url = "http://p:9090", query = "up", timeout_ms = 300, token = { env = "T" } }, io)
    assert.are.equal(7, v)
    assert.is_nil(err)
    assert.are.equal("Bearer tok-T", seen.headers.Authorization)
    assert.are.equal(300, seen.timeoutMs)
  end)
end)

describe("json url", function()
  local doc = cjson.decode('{"queue":{"depth":12,"text":"7.5","name":"x"},"items":[{"value":1},{"value":2}]}')
  local cases = {
    { "queue.depth", 12, nil },
    { "queue.text", 7.5, nil },
    { "items.1.value", 2, nil },
    { "items.2.value", nil, "no value at items.2.value: items.2 is missing" },
    { "queue.name", nil, "value at queue.name is not a number" },
    { "queue.depth.x", nil, "no value at queue.depth.x: queue.depth is not an object or array" },
  }
  for _, c in ipairs(cases) do
    it(c[1], function()
      local v, err = json_url.valueAt(doc, c[1])
      assert.are.equal(c[2], v)
      assert.are.equal(c[3], err)
    end)
  end
  it("refuses non-2xx answers and bad JSON", function()
    assert.are.same({ nil, "HTTP 503" }, { json_url.parseResponse(503, "{}", "a") })
    local v, err = json_url.parseResponse(200, "{oops", "a")
    assert.is_nil(v)
    assert.matches("^response is not JSON", err)
  end)
end)

describe("redis list", function()
  it("is the LLEN reply", function()
    local args
    local io = { redis = function(a, t) args = a return 25, nil end }
    assert.are.equal(25, (redis_list.fetch({ key = "jobs", timeout_ms = 100 }, io)))
    assert.are.same({ "LLEN", "jobs" }, args)
  end)
  it("passes Redis errors on", function()
    local io = { redis = function() return nil, "redis: WRONGTYPE Operation against a key holding the wrong kind of value" end }
    assert.are.same({ nil, "redis: WRONGTYPE Operation against a key holding the wrong kind of value" }, { redis_list.fetch({ key = "jobs", timeout_ms = 100 }, io) })
  end)
end)

describe("staleness", function()
  it("says why a value is missing, and ages a value out after max_age", function()
    local e = source.newSourceEntry()
    assert.are.same({ nil, "not fetched yet" }, { source.reading(e, 100, 10) })
    source.recordFetch(e, nil, "connect to 127.0.0.1:9 failed: connection refused", 100)
    assert.are.same({ nil, "no value yet: connect to 127.0.0.1:9 failed: connection refused" }, { source.reading(e, 100, 10) })
    source.recordFetch(e, 5, nil, 101)
    assert.are.same({ 5 }, { source.reading(e, 111, 10) })
    source.recordFetch(e, nil, "HTTP 500", 112)
    assert.are.same({ 5 }, { source.reading(e, 111, 10) }) -- a failure keeps the last good value
    assert.are.same({ nil, "stale: last value is 11.5 s old (max_age 10 s); last error: HTTP 500" }, { source.reading(e, 112.5, 10) })
  end)
  it("is due after its interval", function()
    local e = source.newSourceEntry()
    assert.is_true(source.fetchDue(e, 0, 5))
    source.recordFetch(e, 1, nil, 10)
    assert.is_false(source.fetchDue(e, 14, 5))
    assert.is_true(source.fetchDue(e, 15, 5))
  end)
end)

describe("sources section", function()
  local function validate(raw, hasRedis)
    local p = setmetatable({ list = {} }, { __index = check.Problems.prototype })
    local cfg = schema.validateSources(p, "sources", raw, hasRedis)
    table.sort(p.list)
    return cfg, p.list
  end
  it("fills in defaults for each type", function()
    local cfg, problems = validate({
      q = { type = "redis_list", key = "jobs" },
      p = { type = "prometheus", url = "http://prom:9090", query = "sum(x)", interval = 2 },
      j = { type = "json_url", url = "https://api/x", path = "a.b", token = { file = "/run/t" } },
    }, true)
    assert.are.same({}, problems)
    assert.are.same({ name = "q", type = "redis_list", key = "jobs", timeout_ms = 1000, interval = 5, max_age = 30 }, cfg.q)
    assert.are.equal(2, cfg.p.interval)
    assert.are.same({ file = "/run/t" }, cfg.j.token)
  end)
  it("names each problem", function()
    local cfg, problems = validate({
      q = { type = "redis_list", key = "jobs" },
      p = { type = "prometheus", url = "ftp://x", query = "up", path = "a" },
      j = { type = "json_url", url = "http://x", token = "inline-secret" },
      z = { type = "kafka" },
    }, false)
    assert.is_nil(cfg)
    assert.are.same({
      'sources.j.path: required string is missing',
      'sources.j.token: secrets must not be written in the config: use {"env": "NAME"} or {"file": "/path"}',
      'sources.p.path: unknown field (expected one of: type, timeout_ms, interval, max_age, url, query, token)',
      'sources.p.url: expected an http:// or https:// URL, got "ftp://x"',
      'sources.q: a redis_list source needs the top-level "redis" section',
      'sources.z.type: expected one of prometheus, redis_list, json_url, got "kafka"',
    }, problems)
  end)
end)
