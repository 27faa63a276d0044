local slow = require("resty.autoscale.balancer.slow_start")
local effective = require("resty.autoscale.balancer.effective")

local function near(want, got)
  assert.is_true(math.abs(want - got) < 1e-9, ("want %.9g, got %.9g"):format(want, got))
end

describe("slow start factor = max(min_weight, (t / window)^(1 / aggression))", function()
  local cases = {
    { t = 0, window = 30, aggression = 1, min = 0.1, want = 0.1 },
    { t = 1.5, window = 30, aggression = 1, min = 0.1, want = 0.1 },
    { t = 15, window = 30, aggression = 1, min = 0.1, want = 0.5 },
    { t = 27, window = 30, aggression = 1, min = 0.1, want = 0.9 },
    { t = 30, window = 30, aggression = 1, min = 0.1, want = 1 },
    { t = 300, window = 30, aggression = 1, min = 0.1, want = 1 },
    { t = 7.5, window = 30, aggression = 2, min = 0.1, want = 0.5 },
    { t = 15, window = 30, aggression = 0.5, min = 0.1, want = 0.25 },
    { t = 3, window = 30, aggression = 0.5, min = 0.1, want = 0.1 },
    { t = 5, window = 0, aggression = 1, min = 0.1, want = 1 },
    { t = -1, window = 30, aggression = 1, min = 0.2, want = 0.2 },
  }
  for _, c in ipairs(cases) do
    it(("t=%s window=%s aggression=%s min=%s -> %s"):format(c.t, c.window, c.aggression, c.min, c.want), function()
      near(c.want, slow.factor(c.t, { window = c.window, aggression = c.aggression, min_weight = c.min }))
    end)
  end

  it("says when a peer is still ramping", function()
    local o = { window = 30, aggression = 1, min_weight = 0.1 }
    assert.is_true(slow.ramping(29.9, o))
    assert.is_false(slow.ramping(30, o))
    assert.is_false(slow.ramping(1, { window = 0, aggression = 1, min_weight = 0.1 }))
  end)
end)

describe("effective multiplier", function()
  local ss = { window = 20, aggression = 1, min_weight = 0.1 }
  local function status(admin, healthy, ejected, since)
    return { admin = admin, healthy = healthy, ejected = ejected, servingSince = since or 0 }
  end

  local cases = {
    { name = "up, healthy, not ejected, ramp done", s = status("up", true, false, 0), want = 1 },
    { name = "up and half way through slow start", s = status("up", true, false, 90), want = 0.5 },
    { name = "draining", s = status("draining", true, false, 0), want = 0 },
    { name = "down", s = status("down", true, false, 0), want = 0 },
    { name = "unhealthy", s = status("up", false, false, 0), want = 0 },
    { name = "ejected", s = status("up", true, true, 0), want = 0 },
  }
  for _, c in ipairs(cases) do
    it(c.name, function()
      local out = {}
      effective.multipliers({ c.s, status("up", true, false, 0) }, 100, ss, out)
      near(c.want, out[1])
    end)
  end

  it("ignores health when every peer left up is unhealthy or ejected (panic)", function()
    local out = {}
    local panic = effective.multipliers({ status("up", false, false), status("up", true, true), status("down", true, false) }, 100, nil, out)
    assert.is_true(panic)
    assert.are.same({ 1, 1, 0 }, out)
  end)

  it("is no panic when the operator took every peer down", function()
    local out = {}
    assert.is_false(effective.multipliers({ status("down", true, false), status("draining", true, false) }, 100, nil, out))
    assert.are.same({ 0, 0 }, out)
  end)
end)

describe("slow start through each algorithm", function()
  local S = require("balancer_support")
  for _, name in ipairs({ "round_robin", "least_request", "ewma" }) do
    it(name .. " gives a new peer a share that follows the curve", function()
      local algo = require("resty.autoscale.balancer.algorithms")
      algo = algo.algorithm(name)
      local opts = { window = 10, aggression = 1, min_weight = 0.1 }
      local peers = S.peers(1, 1)
      local state = algo.create(peers, { tau = 10 })
      local random = S.rng(31)
      local shares = {}
      for second = 0, 10 do
        peers[2].multiplier = slow.factor(second, opts)
        algo.sync(state, peers)
        local counts = S.closed_loop(algo, state, 2000, random, second, 40)
        shares[second] = (counts["10.0.0.2"] or 0) / 2000
      end
      -- Expected share of the new peer: m / (1 + m). Round robin is exact; the P2C ones get
      -- there by balancing in-flight requests in proportion to effective weight.
      for _, second in ipairs({ 0, 5, 10 }) do
        local m = slow.factor(second, opts)
        local want = m / (1 + m)
        assert.is_true(math.abs(shares[second] - want) < 0.06, ("%s s: share %.3f, want %.3f"):format(second, shares[second], want))
      end
      for second = 1, 10 do
        assert.is_true(shares[second] >= shares[second - 1] - 0.03, "share must not fall while ramping")
      end
    end)
  end
end)
