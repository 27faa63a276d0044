-- Safety logic around actuators: clamping, backoff with full jitter, the circuit breaker,
-- idempotent sends, the plan the shell acts on, and redaction of secrets.
local guard = require("resty.autoscale.actuators.guard")
local redact = require("resty.autoscale.actuators.redact")

local BREAKER = {failures = 3, open_seconds = 10, max_open_seconds = 35}

describe("clampReplicas", function()
  local cases = {
    {5, 1, 10, 5}, {0, 1, 10, 1}, {-3, 0, 10, 0}, {11, 1, 10, 10}, {2.1, 1, 10, 3},
    {9.5, 1, 10, 10}, {10.2, 1, 10, 10}, {0/0, 2, 10, 2}, {math.huge, 1, 7, 7},
  }
  for _, c in ipairs(cases) do
    it(string.format("%s in [%d, %d] -> %d", tostring(c[1]), c[2], c[3], c[4]), function()
      assert.are.equal(c[4], guard.clampReplicas(c[1], c[2], c[3]))
    end)
  end
end)

describe("backoffDelay (full jitter)", function()
  local retry = {attempts = 5, base_ms = 100, max_ms = 1000}
  it("scales the random draw by min(max, base * 2^(attempt-1))", function()
    local function r(x) return function() return x end end
    assert.are.equal(50, guard.backoffDelay(1, retry, r(0.5)))   -- ceiling 100
    assert.are.equal(100, guard.backoffDelay(2, retry, r(0.5)))  -- ceiling 200
    assert.are.equal(200, guard.backoffDelay(3, retry, r(0.5)))  -- ceiling 400
    assert.are.equal(500, guard.backoffDelay(5, retry, r(0.5)))  -- ceiling 1600 -> 1000
    assert.are.equal(500, guard.backoffDelay(1000, retry, r(0.5)))
    assert.are.equal(0, guard.backoffDelay(3, retry, r(0)))
    assert.are.equal(399, guard.backoffDelay(3, retry, r(0.9999)))
  end)
  it("treats attempt 0 as the first retry", function()
    assert.are.equal(50, guard.backoffDelay(0, retry, function() return 0.5 end))
  end)
end)

describe("CircuitBreaker", function()
  it("opens after N consecutive failures and a success resets the count", function()
    local b = guard.newBreaker(BREAKER)
    b:onFailure(0); b:onFailure(1)
    b:onSuccess()
    b:onFailure(2); b:onFailure(3)
    assert.are.equal("closed", b.state)
    assert.is_true(b:allow(3))
    b:onFailure(4)
    assert.are.equal("open", b.state)
    assert.is_false(b:allow(4))
    assert.is_false(b:allow(13.9))
    assert.are.equal(10, b:retryIn(4))
  end)

  it("half-opens after the open period, lets one probe through, closes on success", function()
    local b = guard.newBreaker(BREAKER)
    for t = 1, 3 do b:onFailure(t) end
    assert.is_true(b:allow(13))
    assert.are.equal("half_open", b.state)
    assert.is_false(b:allow(13.5)) -- the probe is still out
    b:onSuccess()
    assert.are.equal("closed", b.state)
    assert.is_true(b:allow(14))
  end)

  it("re-opens on a failed probe with the open period doubling up to the maximum", function()
    local b = guard.newBreaker(BREAKER)
    for t = 1, 3 do b:onFailure(t) end
    local now, periods = 3, {}
    for _ = 1, 4 do
      periods[#periods + 1] = b.openSeconds
      now = now + b.openSeconds
      assert.is_true(b:allow(now))
      b:onFailure(now)
    end
    assert.are.same({10, 20, 35, 35}, periods)
    b.openedAt = 0
    assert.is_true(b:allow(1000))
    b:onSuccess()
    for t = 1, 3 do b:onFailure(1000 + t) end
    assert.are.equal(10, b.openSeconds) -- a success resets the growth
  end)
end)

describe("SendLedger", function()
  it("sends a new value, holds a repeat until the resend interval, sends a change at once", function()
    local l = guard.newLedger()
    assert.is_true(l:needsSend(3, 0, 60))
    l:record(3, 0)
    assert.is_false(l:needsSend(3, 59, 60))
    assert.is_true(l:needsSend(3, 60, 60))
    assert.is_true(l:needsSend(4, 1, 60))
    assert.is_true(l:needsSend(3, -5, 60)) -- a clock that went back does not block for ever
  end)
end)

describe("planAction", function()
  local function input(requested, extra)
    local i = {requested = requested, min = 1, max = 10, dryRun = false, resendInterval = 60, now = 100}
    for k, v in pairs(extra or {}) do i[k] = v end
    return i
  end

  local cases = {
    {"a new value is sent", 4, {}, nil, "send", 4, false},
    {"above max is clamped then sent", 40, {}, nil, "send", 10, true},
    {"the same value within the interval is unchanged", 4, {}, 4, "unchanged", 4, false},
    {"a clamped repeat is unchanged too", 40, {}, 10, "unchanged", 10, true},
    {"dry run never sends", 5, {dryRun = true}, nil, "dry_run", 5, false},
    {"dry run does not repeat an unchanged value", 5, {dryRun = true}, 5, "unchanged", 5, false},
  }
  for _, c in ipairs(cases) do
    it(c[1], function()
      local ledger = guard.newLedger()
      if c[4] then ledger:record(c[4], 90) end
      local plan = guard.planAction(input(c[2], c[3]), ledger, guard.newBreaker(BREAKER))
      assert.are.same({action = c[5], desired = c[6], clamped = c[7]}, plan)
    end)
  end

  it("an open breaker stops the send", function()
    local b = guard.newBreaker(BREAKER)
    for t = 1, 3 do b:onFailure(95 + t) end
    local plan = guard.planAction(input(4), guard.newLedger(), b)
    assert.are.equal("breaker_open", plan.action)
  end)
end)

describe("redact", function()
  it("removes listed secret values wherever they appear", function()
    assert.are.equal("token [REDACTED] and again [REDACTED].",
      redact.redact("token s3cr3t-value and again s3cr3t-value.", {"s3cr3t-value"}))
    assert.are.equal("a.b*c", redact.redact("a.b*c", {"abc"})) -- plain text, not a pattern
    assert.are.equal("x=ab", redact.redact("x=ab", {"ab"}))    -- too short to be a secret
  end)

  local shapes = {
    {"Authorization: Bearer eyJhbGciOi.J9.abc-_~+/==", "Authorization: Bearer [REDACTED]"},
    {"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=5d672d79c15b",
      "AWS4-HMAC-SHA256 Credential=[REDACTED]/20150830/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=[REDACTED]"},
    {"x-amz-security-token: FwoGZXIvYXdz//abc", "x-amz-security-token: [REDACTED]"},
    {"X-Autoscale-Signature: t=1700000000,v1=deadbeef01", "X-Autoscale-Signature: t=1700000000,v1=[REDACTED]"},
    {'{"access_token":"ya29.abc","expires_in":3599,"client_secret":"x","password":"p"}',
      '{"access_token":"[REDACTED]","expires_in":3599,"client_secret":"[REDACTED]","password":"[REDACTED]"}'},
    {"GET /x?a=1&token=abc123&b=2", "GET /x?a=1&token=[REDACTED]&b=2"},
    {"nothing to hide here", "nothing to hide here"},
  }
  for _, c in ipairs(shapes) do
    it("redacts: " .. c[1]:sub(1, 40), function()
      assert.are.equal(c[2], redact.redact(c[1]))
    end)
  end
end)
