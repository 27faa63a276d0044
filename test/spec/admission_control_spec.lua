-- Adaptive concurrency limits, priority shedding, circuit breaker, adaptive rate, consumer keys.
local concurrency = require("resty.autoscale.admission.concurrency")
local gradient = require("resty.autoscale.admission.gradient")
local aimd = require("resty.autoscale.admission.aimd")
local vegas = require("resty.autoscale.admission.vegas")
local shedding = require("resty.autoscale.admission.shedding")
local breaker = require("resty.autoscale.admission.breaker")
local adaptive = require("resty.autoscale.admission.adaptive_rate")
local keys = require("resty.autoscale.admission.keys")

-- A backend with `capacity` parallel servers and service time `service`: with n requests in
-- flight each takes service x max(1, n / capacity) (processor sharing). Clients always have
-- more work than the limit lets through, so in-flight = the limit.
local function drive(limit, backend, from, seconds, perTick)
  local t = from
  local dt = 0.01
  while t < from + seconds do
    local inflight = math.max(1, math.floor(limit.limit))
    local rtt = backend.service * math.max(1, inflight / backend.capacity)
    for _ = 1, perTick do concurrency.onSample(limit, t, rtt, inflight, false) end
    t = t + dt
  end
  return t
end

describe("gradient limit", function()
  local function fresh()
    return gradient.newLimit({ initialLimit = 20, minLimit = 5, maxLimit = 1000, smoothing = 1, buffer = 0.25,
      sampleInterval = 0.1, minRttInterval = 30, minRttSamples = 20 })
  end

  it("measures minRTT first with the limit pinned to minLimit, then restores it", function()
    local g = fresh()
    concurrency.onSample(g, 0, 0.05, 1, false)
    assert.are.same({ true, 5 }, { g.measuring, g.limit })
    concurrency.onSample(g, 0.01, 0.09, 20, false) -- started before the pin: not counted
    for i = 1, 20 do concurrency.onSample(g, 0.05 + i * 0.01, 0.04, 5, false) end
    assert.are.same({ false, 20 }, { g.measuring, g.limit })
    assert.is_true(math.abs(concurrency.minRtt(g) - 0.04) < 1e-12)
  end)

  it("converges to 1.25 x capacity + sqrt(limit) under a queueing backend, and follows it down", function()
    local g = fresh()
    local backend = { capacity = 100, service = 0.05 }
    local t = drive(g, backend, 0, 20, 3)
    -- fixed point of L = 125 + sqrt(L): 136.7
    assert.is_true(g.limit > 134 and g.limit < 139, "limit " .. g.limit)
    assert.is_true(math.abs(g.minRtt - 0.05) < 1e-9)
    -- the backend loses half its capacity: the limit follows to 62.5 + sqrt(L) = 70.5
    backend.capacity = 50
    drive(g, backend, t, 5, 3)
    assert.is_true(g.limit > 68 and g.limit < 73, "limit " .. g.limit)
    -- admitted requests' latency stays under 1.5x unloaded at the fixed point
    assert.is_true(backend.service * g.limit / backend.capacity < 1.5 * backend.service)
  end)

  it("re-measures minRTT every minRttInterval", function()
    local g = fresh()
    local t = drive(g, { capacity = 100, service = 0.05 }, 0, 29.9, 3)
    assert.is_false(g.measuring)
    -- the backend got faster; the next measurement picks it up
    drive(g, { capacity = 100, service = 0.02 }, t, 1, 3)
    assert.is_true(math.abs(g.minRtt - 0.02) < 1e-9, "minRtt " .. g.minRtt)
  end)

  it("halves on drops and does not grow while unused", function()
    local g = fresh()
    g.minRtt, g.nextMinRttAt, g.limit = 0.05, 1000, 100
    concurrency.onSample(g, 0, 0.05, 100, true)
    concurrency.onSample(g, 0.1, 0.05, 100, false)
    assert.are.equal(50 + 10, g.limit) -- 0.5 x 100 + sqrt(100)
    concurrency.onSample(g, 0.2, 0.05, 10, false)
    concurrency.onSample(g, 0.3, 0.05, 10, false)
    assert.are.equal(60, g.limit)
  end)
end)

describe("AIMD limit", function()
  it("adds one per healthy sample in use and backs off on drops and timeouts", function()
    local a = aimd.newLimit({ initialLimit = 10, minLimit = 2, maxLimit = 12, backoffRatio = 0.5, timeout = 1 })
    local steps = {
      -- rtt, inflight, drop, expected limit
      { 0.1, 10, false, 11 }, { 0.1, 11, false, 12 }, { 0.1, 12, false, 12 }, -- max bound
      { 0.1, 3, false, 12 },                                                   -- unused: no growth
      { 0.1, 12, true, 6 }, { 2.0, 6, false, 3 }, { 0.1, 3, true, 2 },         -- drop, timeout, min bound
    }
    for i, s in ipairs(steps) do
      assert.are.equal(s[4], concurrency.onSample(a, 0, s[1], s[2], s[3]), "step " .. i)
    end
  end)
end)

describe("Vegas limit", function()
  it("keeps the estimated queue between alpha and beta", function()
    local v = vegas.newLimit({ initialLimit = 20, minLimit = 5, maxLimit = 1000, smoothing = 1, probeMultiplier = 100000 })
    concurrency.onSample(v, 0, 0.05, 1, false) -- first sample sets rttNoLoad
    drive(v, { capacity = 100, service = 0.05 }, 0, 20, 1)
    -- queue = L - 100 must lie within [3 log10 L, 6 log10 L], i.e. L in about [106, 113]
    assert.is_true(v.limit >= 105 and v.limit <= 114, "limit " .. v.limit)
    assert.are.equal(0.05, concurrency.minRtt(v))
    local before = v.limit
    concurrency.onSample(v, 30, 0.06, 100, true)
    assert.is_true(v.limit < before)
  end)
end)

describe("priority shedding", function()
  local policy = shedding.newShedPolicy(0.5, 0.9, 10, 0.5)

  it("sheds best_effort first and critical last as in-flight rises", function()
    local firstRefused = {}
    for _, prio in ipairs({ "best_effort", "normal", "critical" }) do
      for inflight = 0, 100 do
        if shedding.decide(policy, prio, inflight, 100, 10) ~= "admit" then
          firstRefused[prio] = inflight
          break
        end
      end
    end
    assert.are.same({ best_effort = 50, normal = 90, critical = 100 }, firstRefused)
  end)

  it("queues critical and normal when there is room, never best_effort", function()
    local cases = {
      { "critical", 100, 0, "queue" }, { "critical", 100, 10, "shed" }, { "critical", 99, 10, "admit" },
      { "normal", 95, 3, "queue" }, { "best_effort", 60, 0, "shed" }, { "best_effort", 49, 0, "admit" },
    }
    for _, c in ipairs(cases) do
      assert.are.equal(c[4], shedding.decide(policy, c[1], c[2], 100, c[3]), table.concat({ c[1], c[2], c[3] }, " "))
    end
  end)

  it("drains the queue in priority order and expires waits", function()
    assert.is_false(shedding.mayLeaveQueue(policy, "normal", 10, 100, 1)) -- a critical one waits
    assert.is_true(shedding.mayLeaveQueue(policy, "normal", 10, 100, 0))
    assert.is_false(shedding.mayLeaveQueue(policy, "critical", 100, 100, 0))
    assert.is_false(shedding.queueExpired(policy, 10, 10.49))
    assert.is_true(shedding.queueExpired(policy, 10, 10.5))
  end)

  it("keeps critical whole under three times the capacity", function()
    -- limit 100, each request holds its slot 10 ticks (capacity 10 per tick); 30 arrive per
    -- tick, interleaved: 3 critical, 12 normal, 15 best_effort
    local offered = { critical = 0, normal = 0, best_effort = 0 }
    local served = { critical = 0, normal = 0, best_effort = 0 }
    local finishing, inflight = {}, 0
    for tick = 1, 300 do
      inflight = inflight - (finishing[tick] or 0)
      for i = 0, 29 do
        local k = i % 10
        local prio = k == 0 and "critical" or (k <= 4 and "normal" or "best_effort")
        local counted = tick > 50 -- after warm-up
        if counted then offered[prio] = offered[prio] + 1 end
        if shedding.decide(policy, prio, inflight, 100, 10) == "admit" then
          inflight = inflight + 1
          finishing[tick + 10] = (finishing[tick + 10] or 0) + 1
          if counted then served[prio] = served[prio] + 1 end
        end
      end
    end
    assert.are.equal(offered.critical, served.critical)
    assert.is_true(served.normal > served.best_effort)
    -- the share kept for critical idles when critical demand is low: at least 90 % is used
    local total = served.critical + served.normal + served.best_effort
    assert.is_true(total >= 0.9 * 2500 and total <= 2500, "served " .. total)
  end)
end)

describe("circuit breaker", function()
  local opts = { errorRatio = 0.5, minRequests = 4, window = 10, consecutiveFailures = 3,
    openSeconds = 5, halfOpenProbes = 2, closeAfter = 2 }

  local function run(b, steps)
    for i, s in ipairs(steps) do
      local now, what, want = s[1], s[2], s[3]
      local got
      if what == "allow" then
        local ok, probe = breaker.allow(b, opts, now)
        got = (ok and (probe and "probe" or "pass") or "refused")
      else
        got = breaker.onResult(b, opts, now, what == "ok", s[4] == "probe")
      end
      assert.are.equal(want, got, "step " .. i)
    end
  end

  it("opens on the error ratio over the minimum volume, not below it", function()
    local b = breaker.newBreaker(0)
    run(b, {
      { 1, "fail", "closed" }, { 1, "ok", "closed" }, { 1, "fail", "closed" }, -- 2/3 but only 3 requests
      { 2, "ok", "closed" },                                                  -- 2/4 = 0.5 with the success: still counted at the next failure
      { 2, "fail", "open" },                                                  -- 3/5 >= 0.5 over >= 4
      { 3, "allow", "refused" },
    })
    assert.are.equal(1, b.timesOpened)
    assert.are.equal(4, breaker.retryAfter(b, opts, 3))
  end)

  it("opens on consecutive failures and forgets an old window", function()
    local b = breaker.newBreaker(0)
    run(b, {
      { 1, "ok", "closed" }, { 1, "ok", "closed" }, { 1, "ok", "closed" }, { 1, "ok", "closed" }, { 1, "ok", "closed" },
      { 2, "fail", "closed" }, { 2, "fail", "closed" }, { 2, "fail", "open" },
    })
    local c = breaker.newBreaker(0)
    run(c, { { 1, "fail", "closed" }, { 1, "fail", "closed" }, { 1, "ok", "closed" }, { 1, "ok", "closed" },
      { 11, "fail", "closed" } }) -- new window: 1 request is under the minimum volume
  end)

  it("half-opens after openSeconds, limits probes, closes after successes", function()
    local b = breaker.newBreaker(0)
    run(b, {
      { 0, "fail", "closed" }, { 0, "fail", "closed" }, { 0, "fail", "open" },
      { 4.9, "allow", "refused" },
      { 5, "allow", "probe" }, { 5, "allow", "probe" }, { 5, "allow", "refused" }, -- two probes at a time
      { 5.1, "ok", "half_open", "probe" },
      { 5.1, "fail", "half_open" },              -- a late result of a request from before: ignored
      { 5.2, "allow", "probe" },
      { 5.3, "ok", "closed", "probe" },          -- second success closes
      { 5.4, "allow", "pass" },
    })
  end)

  it("re-opens on a probe failure", function()
    local b = breaker.newBreaker(0)
    run(b, {
      { 0, "fail", "closed" }, { 0, "fail", "closed" }, { 0, "fail", "open" },
      { 6, "allow", "probe" }, { 6.1, "fail", "open", "probe" },
      { 10, "allow", "refused" }, { 11.1, "allow", "probe" },
    })
    assert.are.equal(2, b.timesOpened)
  end)
end)

describe("adaptive rate", function()
  it("decreases multiplicatively under stress and recovers additively", function()
    local s = adaptive.newAdaptiveRate({ minRate = 10, maxRate = 100, errorRatioTarget = 0.05, latencyTarget = 0.5,
      decrease = 0.5, increasePerSecond = 5, cooldown = 2 }, 0)
    local steps = {
      -- now, error ratio, latency, expected rate
      { 1, 0.01, 0.1, 100 },  -- healthy at max
      { 2, 0.20, 0.1, 50 },   -- errors over target
      { 3, 0.01, 0.9, 50 },   -- latency over target, within the cooldown
      { 4, 0.01, 0.9, 25 },
      { 6, 0.30, 0.1, 12.5 },
      { 8, 0.30, 0.1, 10 },   -- floor
      { 9, 0.00, 0.1, 15 },   -- +5 per second
      { 12, 0.00, 0.1, 30 },
      { 100, 0.00, 0.1, 100 }, -- ceiling
    }
    for i, st in ipairs(steps) do
      assert.are.equal(st[4], adaptive.next(s, st[2], st[3], st[1]), "step " .. i)
    end
  end)
end)

describe("consumer keys", function()
  it("reads headers, arguments and addresses with bounds", function()
    local long = string.rep("a", keys.MAX_KEY_LENGTH + 1)
    local cases = {
      { keys.fromHeader, "alice", "alice" }, { keys.fromHeader, { "bob", "eve" }, "bob" },
      { keys.fromHeader, nil, nil, "missing" }, { keys.fromHeader, "", nil, "missing" },
      { keys.fromHeader, long, nil, "too long" },
      { keys.fromArg, true, nil, "missing" }, { keys.fromArg, "k1", "k1" },
      { keys.fromAddress, "10.0.0.1", "10.0.0.1" },
    }
    for i, c in ipairs(cases) do
      local v, err = c[1](c[2])
      assert.are.same({ c[3], c[4] }, { v, err }, "case " .. i)
    end
  end)

  -- spec-side base64url encoder, to round-trip the module's decoder
  local A = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
  local function b64url(s)
    local out, bits, acc = {}, 0, 0
    for i = 1, #s do
      acc = acc * 256 + s:byte(i)
      bits = bits + 8
      while bits >= 6 do
        bits = bits - 6
        local v = math.floor(acc / 2 ^ bits) % 64
        out[#out + 1] = A:sub(v + 1, v + 1)
        acc = acc % 2 ^ bits
      end
    end
    if bits > 0 then
      local v = (acc * 2 ^ (6 - bits)) % 64
      out[#out + 1] = A:sub(v + 1, v + 1)
    end
    return table.concat(out)
  end

  it("decodes base64url of every length", function()
    math.randomseed(7)
    for len = 0, 40 do
      local bytes = {}
      for i = 1, len do bytes[i] = string.char(math.random(0, 255)) end
      local s = table.concat(bytes)
      assert.are.equal(s, keys.decodeBase64Url(b64url(s)))
    end
    assert.is_nil(keys.decodeBase64Url("ab$d"))
    assert.is_nil(keys.decodeBase64Url("abcde"))
  end)

  it("reads a JWT claim without checking the signature", function()
    local function jwt(payload) return "Bearer " .. b64url('{"alg":"HS256"}') .. "." .. b64url(payload) .. ".c2ln" end
    local cases = {
      { jwt('{"sub":"alice","tier":3}'), "sub", "alice" },
      { jwt('{"sub":"alice","tier":3}'), "tier", "3" },
      { "bearer  " .. b64url('{}') .. "." .. b64url('{"sub":"x"}') .. ".", "sub", "x" }, -- alg none, lower case
      { jwt('{"sub":"alice"}'), "org", nil, "claim missing" },
      { jwt('{"sub":{"id":1}}'), "sub", nil, "claim missing" },
      { jwt('[1,2]'), "sub", nil, "claim missing" },
      { jwt('not json'), "sub", nil, "payload is not a JSON object" },
      { "Basic dXNlcjpwYXNz", "sub", nil, "not a bearer JWT" },
      { "Bearer abc", "sub", nil, "not a bearer JWT" },
      { "Bearer a.b$c.d", "sub", nil, "not a bearer JWT" },
      { "Bearer " .. string.rep("a", keys.MAX_TOKEN_LENGTH) .. ".b.c", "sub", nil, "token too long" },
      { nil, "sub", nil, "missing" },
    }
    for i, c in ipairs(cases) do
      local v, err = keys.fromJwtClaim(c[1], c[2])
      assert.are.same({ c[3], c[4] }, { v, err }, "case " .. i)
    end
  end)
end)
