-- What every algorithm of the family must do, checked for all three with the same table.
local S = require("balancer_support")
local ALGOS = {
  round_robin = require("resty.autoscale.balancer.algorithms.round_robin"),
  least_request = require("resty.autoscale.balancer.algorithms.least_request"),
  ewma = require("resty.autoscale.balancer.algorithms.peak_ewma"),
}
local registry = require("resty.autoscale.balancer.algorithms")

for name, algo in pairs(ALGOS) do
  describe("balancer " .. name, function()
    it("is what the registry returns for its name", function()
      assert.are.equal(algo, registry.algorithm(name))
    end)

    it("returns nil for an empty pool and for a pool with only zero weights", function()
      assert.is_nil(algo.pick(algo.create({}), 0, S.rng(1)))
      assert.is_nil(algo.pick(algo.create(S.peers(0, 0)), 0, S.rng(1)))
    end)

    it("never picks a peer whose weight or multiplier is 0", function()
      local peers = S.peers(1, 0, 1)
      peers[3].multiplier = 0
      local state = algo.create(peers)
      local counts = S.counts(algo, state, 300, S.rng(7))
      assert.are.same({ ["10.0.0.1"] = 300 }, counts)
    end)

    it("never picks the excluded peer (the previous try) when another is eligible", function()
      for size = 2, 5 do
        local state = algo.create(S.peers(1, 1, 1, 1, 1))
        local peers = {}
        for i = 1, size do peers[i] = { host = "10.0.0." .. i, port = 80, weight = 1 } end
        algo.sync(state, peers)
        local random = S.rng(size)
        for _ = 1, 500 do
          local first = algo.pick(state, 0, random)
          local second = algo.pick(state, 0, random, first)
          assert.are_not.equal(first, second)
          algo.after(state, first, 0, 0.01, true)
          algo.after(state, second, 0, 0.01, false)
        end
      end
    end)

    it("retries the excluded peer when it is the only one left", function()
      local state = algo.create(S.peers(1, 0))
      local first = algo.pick(state, 0, S.rng(3))
      assert.are.equal(first, algo.pick(state, 0, S.rng(3), first))
    end)

    it("keeps learned state of remaining peers across sync and drops removed ones", function()
      local state = algo.create(S.peers(1, 1, 1))
      local p = algo.pick(state, 1, S.rng(5))
      local record = state.byKey[p.key]
      algo.sync(state, { { host = p.host, port = p.port, weight = 3 }, { host = "10.0.0.9", port = 80, weight = 1 } })
      assert.are.equal(record, state.byKey[p.key])
      assert.are.equal(1, record.inflight)
      assert.are.equal(3, record.weight)
      assert.are.equal(2, #state.peers)
      assert.is_nil(state.byKey[(p.host == "10.0.0.1" and "10.0.0.2" or "10.0.0.1") .. ":80"])
    end)

    it("counts in-flight requests: pick adds one, after takes it back, never below 0", function()
      local state = algo.create(S.peers(1))
      local p = algo.pick(state, 0, S.rng(1))
      algo.pick(state, 0, S.rng(1))
      assert.are.equal(2, p.inflight)
      algo.after(state, p, 0, 0.01, false)
      algo.after(state, p, 0, 0.01, false)
      algo.after(state, p, 0, 0.01, false)
      assert.are.equal(0, p.inflight)
    end)

    it("tolerates after() for a peer removed by sync meanwhile", function()
      local state = algo.create(S.peers(1, 1))
      local p = algo.pick(state, 0, S.rng(1))
      algo.sync(state, S.peers(1))
      algo.after(state, p, 1, 0.01, true)
      assert.is_not_nil(algo.pick(state, 1, S.rng(1)))
    end)

    it("follows weights: 3:1 gives about three quarters to the heavy peer", function()
      local state = algo.create(S.peers(3, 1))
      local counts = S.counts(algo, state, 4000, S.rng(11))
      -- least-request and EWMA with no queueing and equal costs see only the weight.
      assert.is_true(counts["10.0.0.1"] > 2600, tostring(counts["10.0.0.1"]))
    end)
  end)
end

describe("smooth weighted round robin", function()
  local rr = ALGOS.round_robin

  local function sequence(state, n, exclude)
    local out = {}
    for i = 1, n do
      local p = rr.pick(state, 0, nil, exclude)
      out[i] = p.host:sub(-1)
      rr.after(state, p, 0, 0, false)
    end
    return table.concat(out)
  end

  local cases = {
    { weights = { 5, 1, 1 }, want = "1121311" },
    { weights = { 1, 1, 1 }, want = "123123" },
    { weights = { 2, 1 }, want = "121121" },
    { weights = { 0, 1 }, want = "2222" },
  }
  for _, c in ipairs(cases) do
    it("interleaves weights " .. table.concat(c.weights, ":") .. " as nginx does", function()
      assert.are.equal(c.want, sequence(rr.create(S.peers(unpack(c.weights))), #c.want))
    end)
  end

  it("follows a weight change at once", function()
    local state = rr.create(S.peers(1, 1))
    assert.are.equal("12", sequence(state, 2))
    rr.sync(state, S.peers(0, 1))
    assert.are.equal("2222", sequence(state, 4))
    rr.sync(state, S.peers(3, 1))
    -- scores (0,0) then (3,1)(-1,1)(2,2): a tie goes to the first peer
    assert.are.equal("1121", sequence(state, 4))
  end)

  it("uses weight x multiplier (slow start at 0.5 halves a peer's share)", function()
    local peers = S.peers(2, 2)
    peers[2].multiplier = 0.5
    local state = rr.create(peers)
    assert.are.equal("121121", sequence(state, 6))
  end)
end)

describe("least-request", function()
  local lr = ALGOS.least_request

  it("scores weight / (active + 1)^bias", function()
    local cases = {
      { weight = 1, inflight = 0, bias = 1, want = 1 },
      { weight = 4, inflight = 3, bias = 1, want = 1 },
      { weight = 4, inflight = 1, bias = 2, want = 1 },
      { weight = 4, inflight = 7, bias = 0, want = 4 },
      { weight = 9, inflight = 8, bias = 0.5, want = 3 },
    }
    for _, c in ipairs(cases) do
      local got = lr.score({ weight = c.weight, multiplier = 1, inflight = c.inflight }, c.bias)
      assert.is_true(math.abs(got - c.want) < 1e-9)
    end
  end)

  it("of two candidates takes the one with fewer requests in flight", function()
    local state = lr.create(S.peers(1, 1))
    local busy = state.peers[1]
    busy.inflight = 5
    for _ = 1, 50 do
      local p = lr.pick(state, 0, S.rng(9))
      assert.are.equal("10.0.0.2", p.host)
      lr.after(state, p, 0, 0.01, false)
    end
  end)

  it("spreads concurrent requests evenly over equal peers", function()
    local state = lr.create(S.peers(1, 1, 1, 1))
    local random = S.rng(21)
    for _ = 1, 400 do lr.pick(state, 0, random) end
    for _, p in ipairs(state.peers) do
      assert.is_true(p.inflight >= 90 and p.inflight <= 110, tostring(p.inflight))
    end
  end)
end)
