local cjson = require("cjson.safe")
local config = require("resty.autoscale.config.config")

local function validate(text)
  local doc = assert(cjson.decode(text))
  return config.validateConfig(doc)
end

local GOOD = [[{
  "listen": 8080,
  "admin": {"listen": "127.0.0.1:9180", "token": "0123456789abcdef"},
  "pools": {"api": {"peers": [{"host": "127.0.0.1", "port": 8081, "weight": 1},
                              {"host": "127.0.0.1", "port": 8082}],
                    "balancer": "ewma",
                    "scaling": {"max_replicas": 10, "target": {"metric": "requests_per_second", "value": 50},
                                "actuator": {"type": "webhook", "url": "http://127.0.0.1:9000/scale"}}}},
  "routes": [{"name": "api", "match": {"prefix": "/api"}, "pool": "api"}]
}]]

describe("config validation", function()
  it("accepts a good file and fills in defaults", function()
    local cfg, problems = validate(GOOD)
    assert.are.same({}, problems)
    assert.are.equal(8080, cfg.listen)
    assert.are.same({10, 60}, cfg.metrics.windows)
    local pool = cfg.pools.api
    assert.are.equal(1, pool.peers[2].weight)
    assert.are.equal(1, pool.scaling.min_replicas)
    assert.are.equal(1, pool.scaling.interval)
    assert.are.equal(10, pool.scaling.window)
    assert.are.equal(2000, pool.scaling.actuator.timeout_ms)
    assert.are.same({"api"}, cfg.poolNames)
  end)

  it("state_dir: absent by default (the nginx prefix), an absolute path kept, anything else named", function()
    local cfg = validate(GOOD)
    assert.is_nil(cfg.stateDir)
    local cases = {
      {'"/var/lib/autoscale"', "/var/lib/autoscale", nil},
      {'"state"', nil, 'state_dir: expected an absolute directory path, got "state"'},
      {'7', nil, "state_dir: expected string, got 7"},
    }
    for _, c in ipairs(cases) do
      local got, problems = validate(GOOD:gsub('^{', '{"state_dir": ' .. c[1] .. ','))
      if c[2] then
        assert.are.same({}, problems)
        assert.are.equal(c[2], got.stateDir)
      else
        assert.is_nil(got)
        assert.are.same({c[3]}, problems)
      end
    end
  end)

  it("names the JSON path and the problem", function()
    local text = GOOD:gsub('"port": 8082', '"port": "80a"')
    local cfg, problems = validate(text)
    assert.is_nil(cfg)
    assert.are.same({'pools.api.peers[1].port: expected integer 1-65535, got "80a"'}, problems)
  end)

  it("reports every problem at once", function()
    local text = GOOD:gsub('"ewma"', '"fastest"'):gsub('"pool": "api"', '"pool": "web"'):gsub('"listen": 8080', '"listen": 0')
    local _, problems = validate(text)
    table.sort(problems)
    assert.are.same({
      "listen: expected integer 1-65535, got 0",
      "pools.api.balancer: expected one of round_robin, least_request, ewma, got \"fastest\"",
      'routes[0].pool: unknown pool "web"',
    }, problems)
  end)

  it("rejects unknown fields, so typos are caught", function()
    local _, problems = validate((GOOD:gsub('"balancer"', '"balancr"')))
    assert.are.equal(1, #problems)
    assert.matches("^pools%.api%.balancr: unknown field", problems[1])
  end)

  it("rejects host names for peers and out-of-range addresses", function()
    local _, problems = validate((GOOD:gsub('"host": "127.0.0.1", "port": 8082', '"host": "backend.local", "port": 8082')))
    assert.matches("pools.api.peers%[1%].host: expected an IPv4 or IPv6 address", problems[1])
    _, problems = validate((GOOD:gsub('"host": "127.0.0.1", "port": 8082', '"host": "300.0.0.1", "port": 8082')))
    assert.are.equal(1, #problems)
  end)

  it("rejects duplicate peers, empty pools, min above max and a short token", function()
    local text = GOOD:gsub('"port": 8082', '"port": 8081'):gsub('"max_replicas": 10', '"max_replicas": 10, "min_replicas": 11'):gsub("0123456789abcdef", "short")
    local _, problems = validate(text)
    table.sort(problems)
    assert.are.same({
      "admin.token: expected at least 16 characters, got 5",
      "pools.api.peers[1]: duplicate peer 127.0.0.1:8081",
      "pools.api.scaling.min_replicas: must not exceed max_replicas (10), got 11",
    }, problems)
  end)

  it("requires a route match of exactly one kind and unique names", function()
    local text = GOOD:gsub('"match": {"prefix": "/api"}', '"match": {"prefix": "/api", "exact": "/x"}')
    local _, problems = validate(text)
    assert.are.same({"routes[0].match: expected exactly one of prefix or exact"}, problems)
  end)

  it("rejects a document that is not an object", function()
    local cfg, problems = config.validateConfig({1, 2})
    assert.is_nil(cfg)
    assert.are.same({"(root): expected object, got an array"}, problems)
  end)
end)
