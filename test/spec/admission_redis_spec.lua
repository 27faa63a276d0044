-- The cluster-wide scripts against a real redis-server (port 6391, started and stopped here),
-- with several redis-cli processes calling them at the same time.
local scripts = require("resty.autoscale.admission.redis_scripts")
local fallback = require("resty.autoscale.admission.fallback")
local tb = require("resty.autoscale.admission.token_bucket")
local sw = require("resty.autoscale.admission.sliding_window")

local PORT = 6391
local CLI = "redis-cli -p " .. PORT

local function sh(cmd)
  local f = assert(io.popen(cmd .. " 2>&1"))
  local out = f:read("*a")
  f:close()
  return out
end

local function tmpfile(text)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

local function load(script)
  local path = tmpfile(script)
  local sha = sh(CLI .. ' SCRIPT LOAD "$(cat ' .. path .. ')"'):match("^(%x+)")
  os.remove(path)
  assert(sha and #sha == 40, "SCRIPT LOAD failed")
  return sha
end

-- Runs `workers` redis-cli processes at once, each sending `calls` EVALSHA commands over its own
-- connection; returns the replies as a list of {admitted, remaining, ms}.
local function hammer(sha, key, args, workers, calls)
  local outs, cmds = {}, {}
  for w = 1, workers do
    outs[w] = os.tmpname()
    cmds[w] = string.format("(for i in $(seq 1 %d); do echo 'EVALSHA %s 1 %s %s'; done | %s > %s) &",
      calls, sha, key, args, CLI, outs[w])
  end
  sh(table.concat(cmds, " ") .. " wait")
  local replies = {}
  for w = 1, workers do
    local f = assert(io.open(outs[w]))
    local lines = {}
    for line in f:lines() do lines[#lines + 1] = line end
    f:close()
    os.remove(outs[w])
    assert(#lines == 3 * calls, "worker " .. w .. " got " .. #lines .. " lines")
    for i = 1, #lines, 3 do
      replies[#replies + 1] = { tonumber(lines[i]), tonumber(lines[i + 1]), tonumber(lines[i + 2]) }
    end
  end
  return replies
end

local function admitted(replies)
  local n = 0
  for _, r in ipairs(replies) do n = n + r[1] end
  return n
end

describe("redis scripts", function()
  setup(function()
    sh("redis-server --port " .. PORT .. " --save '' --appendonly no --daemonize yes")
    for _ = 1, 50 do
      if sh(CLI .. " PING"):match("PONG") then return end
      sh("sleep 0.1")
    end
    error("redis-server did not start on port " .. PORT)
  end)

  teardown(function()
    sh(CLI .. " SHUTDOWN NOSAVE")
  end)

  before_each(function()
    sh(CLI .. " FLUSHALL")
  end)

  it("token bucket: concurrent callers get exactly the burst", function()
    local sha = load(scripts.TOKEN_BUCKET_SCRIPT)
    -- 0.001 tokens per second (1e6 ms per token): no refill during the test; burst 50
    local replies = hammer(sha, "{tb}:route", "1000000 50000000 1", 4, 40)
    assert.are.equal(160, #replies)
    assert.are.equal(50, admitted(replies))
    -- the remaining counts handed out are exactly 49..0, each once
    local seen = {}
    for _, r in ipairs(replies) do
      if r[1] == 1 then
        assert.is_nil(seen[r[2]])
        seen[r[2]] = true
      end
    end
    for k = 0, 49 do assert.is_true(seen[k], "remaining " .. k) end
  end)

  it("token bucket: refusals carry the wait until the next token", function()
    local sha = load(scripts.TOKEN_BUCKET_SCRIPT)
    local out = sh(CLI .. " EVALSHA " .. sha .. " 1 one 60000 60000 1")
    assert.are.same({ "1", "0", "60000" }, { out:match("(%d+)\n(%d+)\n(%d+)") })
    out = sh(CLI .. " EVALSHA " .. sha .. " 1 one 60000 60000 1")
    local ok, rem, wait = out:match("(%d+)\n(%d+)\n(%d+)")
    assert.are.same({ "0", "0" }, { ok, rem })
    assert.is_true(tonumber(wait) > 59000 and tonumber(wait) <= 60000)
  end)

  it("sliding window: concurrent callers get exactly the limit", function()
    local sha = load(scripts.SLIDING_WINDOW_SCRIPT)
    -- 50 per hour: the previous window's weight cannot move by a whole request during the test
    local replies = hammer(sha, "{sw}:route", "50 3600000 1", 4, 40)
    assert.are.equal(160, #replies)
    assert.are.equal(50, admitted(replies))
    for _, r in ipairs(replies) do
      if r[1] == 0 then assert.is_true(r[3] > 0) end
    end
  end)

  it("sliding window: keys expire after two windows", function()
    local sha = load(scripts.SLIDING_WINDOW_SCRIPT)
    sh(CLI .. " EVALSHA " .. sha .. " 1 exp 10 1000 1")
    local keys = sh(CLI .. " KEYS 'exp:*'"):match("(exp:%d+)")
    local ttl = tonumber(sh(CLI .. " PTTL " .. keys))
    assert.is_true(ttl > 1000 and ttl <= 2000)
  end)
end)

describe("local fallback", function()
  it("divides limits by the instance count, never below one request", function()
    local cases = {
      { tb.newTokenBucket(100, 40, false), 4, { "token_bucket", 25, 10 } },
      { tb.newTokenBucket(3, 2, false), 4, { "token_bucket", 0.75, 1 } },
      { sw.newSlidingWindow(100, 60, false), 3, { "sliding_window", 33, 60 } },
      { sw.newSlidingWindow(2, 60, false), 5, { "sliding_window", 1, 60 } },
      { sw.newSlidingWindow(10, 60, false), 0, { "sliding_window", 10, 60 } },
    }
    for _, c in ipairs(cases) do
      local l = fallback.localShare(c[1], c[2])
      if l.kind == "token_bucket" then
        assert.are.same(c[3], { l.kind, l.rate, l.burst })
      else
        assert.are.same(c[3], { l.kind, l.limit, l.window })
      end
    end
  end)

  it("backs off Redis after failures and lets one probe through per second", function()
    local h = fallback.newRedisHealth()
    assert.is_true(fallback.useRedis(h, 100))
    assert.is_true(fallback.onRedisFailure(h, 100, 1, 30)) -- mode changed: log it
    assert.are.equal("local", h.mode)
    assert.is_false(fallback.useRedis(h, 100.5))
    assert.is_true(fallback.useRedis(h, 101))    -- the probe
    assert.is_false(fallback.useRedis(h, 101.2)) -- the others stay local
    assert.is_false(fallback.onRedisFailure(h, 101.3, 1, 30))
    assert.are.equal(103.3, h.retryAt)           -- 2 s after the second failure
    for _ = 1, 10 do fallback.onRedisFailure(h, 200, 1, 30) end
    assert.are.equal(230, h.retryAt)             -- capped
    assert.is_true(fallback.onRedisSuccess(h))
    assert.are.same({ "cluster", 0, 0 }, { h.mode, h.failures, h.retryAt })
  end)
end)
