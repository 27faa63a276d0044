local S = require("balancer_support")
local ewma = require("resty.autoscale.balancer.algorithms.peak_ewma")

local function near(want, got, eps)
  assert.is_true(math.abs(want - got) < (eps or 1e-9), ("want %.9g, got %.9g"):format(want, got))
end

describe("peak-EWMA cost", function()
  local function fresh(opts)
    local state = ewma.create(S.peers(1, 1), opts or { tau = 10, failure_penalty = 1, sample_weight = 0 })
    return state, state.peers[1]
  end

  it("takes the first sample as it is", function()
    local state, p = fresh()
    ewma.after(state, p, 100, 0.2, false)
    near(0.2, p.cost)
    assert.are.equal(100, p.stamp)
  end)

  it("replaces the cost at once with a slower sample (the peak)", function()
    local state, p = fresh()
    ewma.after(state, p, 100, 0.1, false)
    ewma.after(state, p, 100.001, 0.5, false)
    near(0.5, p.cost)
  end)

  it("blends a faster sample with w = exp(-dt / tau)", function()
    local state, p = fresh()
    ewma.after(state, p, 100, 0.5, false)
    ewma.after(state, p, 105, 0.1, false)
    local w = math.exp(-5 / 10)
    near(0.5 * w + 0.1 * (1 - w), p.cost)
  end)

  it("moves the cost at least sample_weight toward each sample", function()
    local state, p = fresh({ tau = 10, sample_weight = 0.05 })
    ewma.after(state, p, 100, 0.5, false)
    ewma.after(state, p, 100.001, 0.1, false)
    near(0.5 * 0.95 + 0.1 * 0.05, p.cost)
    local pure, q = fresh({ tau = 10, sample_weight = 0 })
    ewma.after(pure, q, 100, 0.5, false)
    ewma.after(pure, q, 100.001, 0.1, false)
    local w = math.exp(-0.001 / 10)
    near(0.5 * w + 0.1 * (1 - w), q.cost)
  end)

  it("reads the cost decayed toward zero since the last sample, without storing it", function()
    local state, p = fresh()
    ewma.after(state, p, 100, 0.4, false)
    near(0.4 * math.exp(-1), ewma.currentCost(state, p, 110))
    near(0.4, p.cost)
  end)

  it("multiplies the cost by in-flight + 1 and divides by the effective weight", function()
    local state, p = fresh()
    ewma.after(state, p, 100, 0.4, false)
    p.inflight = 3
    near(1.6, ewma.load(state, p, 100))
    p.multiplier = 0.5
    near(3.2, ewma.load(state, p, 100))
  end)

  local penalty_cases = {
    { name = "a fast failure counts as failure_penalty", cost = 0.01, rtt = 0.001, want = 1 },
    { name = "a failure of a slow peer doubles its cost", cost = 3, rtt = 0.5, want = 6 },
    { name = "a failure slower than the penalty counts as its own time", cost = 0.01, rtt = 2.5, want = 2.5 },
    { name = "the doubling stops at 16 x failure_penalty", cost = 12, rtt = 0.1, want = 16 },
  }
  for _, c in ipairs(penalty_cases) do
    it(c.name, function()
      local state, p = fresh()
      ewma.after(state, p, 100, c.cost, false)
      near(c.want, ewma.penaltySample(state, p, 100, c.rtt))
      ewma.after(state, p, 100, c.rtt, true)
      near(c.want, p.cost)
    end)
  end

  it("counts failures, so a peer that fails fast is not a black hole", function()
    local state = ewma.create(S.peers(1, 1), { tau = 10, failure_penalty = 1 })
    local random = S.rng(3)
    local now, failing = 0, 0
    for _ = 1, 2000 do
      now = now + 0.001
      local p = ewma.pick(state, now, random)
      if p.host == "10.0.0.1" then
        failing = failing + 1
        ewma.after(state, p, now, 0.0005, true) -- refused in half a millisecond
      else
        ewma.after(state, p, now, 0.02, false)
      end
    end
    assert.is_true(failing < 40, tostring(failing))
  end)

  it("counts in-flight requests: a stalled peer with a low cost stops getting picks", function()
    local state = ewma.create(S.peers(1, 1), { tau = 10 })
    for _, p in ipairs(state.peers) do ewma.after(state, p, 1, 0.01, false) end
    local random = S.rng(8)
    local to_first = 0
    for _ = 1, 200 do
      local p = ewma.pick(state, 1, random)
      if p.host == "10.0.0.1" then
        to_first = to_first + 1 -- never completes
      else
        ewma.after(state, p, 1, 0.01, false)
      end
    end
    -- Peer 1 holds k requests once its load (k + 1) x cost beats peer 2's (1 x cost).
    assert.is_true(to_first <= 2, tostring(to_first))
  end)

  it("seeds a new peer with the pool's average cost at the latest sample time", function()
    local state = ewma.create(S.peers(1, 1), { tau = 10 })
    ewma.after(state, state.peers[1], 10, 0.2, false)
    ewma.after(state, state.peers[2], 20, 0.4, false)
    ewma.sync(state, S.peers(1, 1, 1))
    local new = state.peers[3]
    near((0.2 * math.exp(-1) + 0.4) / 2, new.cost)
    assert.are.equal(20, new.stamp)
  end)

  it("leaves a new peer at zero cost when nobody has a sample yet", function()
    local state = ewma.create(S.peers(1), { tau = 10 })
    ewma.sync(state, S.peers(1, 1))
    assert.are.equal(0, state.peers[2].cost)
  end)
end)
