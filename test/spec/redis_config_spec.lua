-- The top-level "redis" section (src/config/redis_schema.ts) and the rule that cluster-scope
-- rate limits need it.
local cjson = require("cjson.safe")
local config = require("resty.autoscale.config.config")

local function validate(redis, scope)
  local doc = {
    pools = { api = { peers = { { host = "127.0.0.1", port = 8081 } } } },
    routes = { { name = "api", match = { prefix = "/" }, pool = "api",
                 limits = { rate = { { algorithm = "token_bucket", rate = 10, scope = scope or "cluster" } } } } },
    redis = redis,
  }
  return config.validateConfig(assert(cjson.decode(cjson.encode(doc))))
end

describe("redis config section", function()
  it("fills in defaults", function()
    local cfg, problems = validate({})
    assert.are.same({}, problems)
    assert.are.same({ host = "127.0.0.1", port = 6379, db = 0, timeout_ms = 200, instances = 1 }, cfg.redis)
  end)

  it("keeps a password reference, never a value", function()
    local cfg, problems = validate({ host = "10.0.0.5", port = 6380, password = { env = "REDIS_PASSWORD" }, instances = 3, timeout_ms = 50 })
    assert.are.same({}, problems)
    assert.are.same({ env = "REDIS_PASSWORD" }, cfg.redis.password)
    assert.are.equal(3, cfg.redis.instances)
    local _, inline = validate({ password = "hunter2hunter2" })
    assert.are.same({ 'redis.password: secrets must not be written in the config: use {"env": "NAME"} or {"file": "/path"}' }, inline)
  end)

  local bad = {
    { { port = 0 }, "redis.port: expected integer 1-65535, got 0" },
    { { instances = 0 }, "redis.instances: expected integer 1-10000, got 0" },
    { { timeout_ms = 0.5 }, "redis.timeout_ms: expected integer 1-60000, got 0.5" },
    { { hots = "x" }, "redis.hots: unknown field (expected one of: host, port, password, db, timeout_ms, instances)" },
  }
  for _, case in ipairs(bad) do
    it("refuses " .. case[2], function()
      local cfg, problems = validate(case[1])
      assert.is_nil(cfg)
      assert.are.same({ case[2] }, problems)
    end)
  end

  it("requires the section for cluster-scope rules only", function()
    local cfg, problems = validate(nil, "cluster")
    assert.is_nil(cfg)
    assert.are.same({ 'routes[0].limits.rate[0].scope: scope "cluster" needs the top-level "redis" section' }, problems)
    cfg, problems = validate(nil, "local")
    assert.are.same({}, problems)
    assert.is_nil(cfg.redis)
  end)
end)
