-- A deterministic simulation: seeded random numbers, simulated time, no clock and no sleeps.
-- Three peers with 4 workers each serve a Poisson stream of requests; service times are
-- exponential, 10 ms on the fast peers and 50 ms on the slow one (five times slower). The
-- balancer picks on arrival and gets `after` with the response time on completion, as the
-- gateway's balancer and log phases would.
local S = require("balancer_support")
local registry = require("resty.autoscale.balancer.algorithms")
local outlier = require("resty.autoscale.balancer.outlier")
local effective = require("resty.autoscale.balancer.effective")

-- Binary min-heap of events ordered by time.
local function heap_push(h, ev)
  h[#h + 1] = ev
  local i = #h
  while i > 1 do
    local parent = math.floor(i / 2)
    if h[parent].t <= h[i].t then break end
    h[parent], h[i] = h[i], h[parent]
    i = parent
  end
end

local function heap_pop(h)
  local top, n = h[1], #h
  h[1] = h[n]
  h[n] = nil
  n = n - 1
  local i = 1
  while true do
    local l, r, m = 2 * i, 2 * i + 1, i
    if l <= n and h[l].t < h[m].t then m = l end
    if r <= n and h[r].t < h[m].t then m = r end
    if m == i then break end
    h[m], h[i] = h[i], h[m]
    i = m
  end
  return top
end

local function percentile(sorted, q)
  return sorted[math.max(1, math.ceil(#sorted * q))]
end

-- servers: list of { host, mean = seconds, workers = n, fails = bool }. Returns shares by host,
-- p50, p99 and the picks made to each host while ejected.
local function simulate(name, servers, opts)
  opts = opts or {}
  local algo = registry.algorithm(name)
  local random = S.rng(opts.seed or 12345)
  local specs = {}
  for i, s in ipairs(servers) do
    specs[i] = { host = s.host, port = 80, weight = 1 }
    s.busy, s.queue, s.head, s.tail = 0, {}, 1, 0
  end
  local state = algo.create(specs, { tau = 10, bias = 1, failure_penalty = 1, sample_weight = opts.sample_weight })
  local byhost = {}
  for _, s in ipairs(servers) do byhost[s.host] = s end

  local ejection = opts.outlier and outlier.create((function()
    local keys = {}
    for i, s in ipairs(servers) do keys[i] = s.host .. ":80" end
    return keys
  end)(), opts.outlier, 0)
  local function resync(now)
    local statuses, out = {}, {}
    for i, s in ipairs(servers) do
      statuses[i] = { admin = "up", healthy = true, ejected = outlier.isEjected(ejection, s.host .. ":80"), servingSince = 0 }
    end
    effective.multipliers(statuses, now, nil, out)
    for i = 1, #specs do specs[i].multiplier = out[i] end
    algo.sync(state, specs)
  end

  local events, latencies, counts = {}, {}, {}
  local picks_while_ejected, retries_to_same, retries = 0, 0, 0
  local function start(s, req, now)
    s.busy = s.busy + 1
    local service = s.fails and 0.0005 or -s.mean * math.log(1 - random())
    heap_push(events, { t = now + service, kind = "done", server = s, req = req })
  end
  local function send(req, now, exclude)
    local peer = algo.pick(state, now, random, exclude)
    local s = byhost[peer.host]
    if ejection and outlier.isEjected(ejection, peer.key) then picks_while_ejected = picks_while_ejected + 1 end
    counts[peer.host] = (counts[peer.host] or 0) + 1
    req.peer, req.sent = peer, now
    if s.busy < s.workers then
      start(s, req, now)
    else
      s.tail = s.tail + 1
      s.queue[s.tail] = req
    end
  end

  local rate, total = opts.rate or 450, opts.requests or 20000
  local t, next_tick = 0, 1
  for _ = 1, total do
    t = t - math.log(1 - random()) / rate
    heap_push(events, { t = t, kind = "arrive", req = { arrived = t, tries = 0 } })
  end
  while #events > 0 do
    local ev = heap_pop(events)
    local now = ev.t
    if ejection and now >= next_tick then
      if outlier.evaluate(ejection, now) then resync(now) end
      next_tick = next_tick + 1
    end
    if ev.kind == "arrive" then
      send(ev.req, now)
    else
      local s, req = ev.server, ev.req
      s.busy = s.busy - 1
      if s.head <= s.tail then
        start(s, s.queue[s.head], now)
        s.queue[s.head] = nil
        s.head = s.head + 1
      end
      local failed = s.fails == true
      algo.after(state, req.peer, now, now - req.sent, failed)
      if ejection and outlier.record(ejection, req.peer.key, now, failed, now - req.sent) then resync(now) end
      if failed and req.tries < 1 then
        -- proxy_next_upstream: one more try, never to the peer that just failed.
        req.tries = req.tries + 1
        retries = retries + 1
        local failed_peer = req.peer
        send(req, now, failed_peer)
        if req.peer == failed_peer then retries_to_same = retries_to_same + 1 end
      else
        latencies[#latencies + 1] = now - req.arrived
      end
    end
  end
  table.sort(latencies)
  local shares = {}
  local sum = 0
  for _, c in pairs(counts) do sum = sum + c end
  for host, c in pairs(counts) do shares[host] = c / sum end
  return {
    shares = shares, p50 = percentile(latencies, 0.5), p99 = percentile(latencies, 0.99),
    picks_while_ejected = picks_while_ejected, retries = retries, retries_to_same = retries_to_same,
    counts = counts,
  }
end

local function three_peers()
  return {
    { host = "fast-1", mean = 0.010, workers = 4 },
    { host = "fast-2", mean = 0.010, workers = 4 },
    { host = "slow", mean = 0.050, workers = 4 },
  }
end

local function two_fast()
  local t = three_peers()
  t[3] = nil
  return t
end

describe("simulation: three peers, one five times slower, 450 req/s", function()
  local results = {}
  for _, name in ipairs({ "round_robin", "least_request", "ewma" }) do
    results[name] = simulate(name, three_peers())
  end
  local baseline = simulate("ewma", two_fast())
  local pure = simulate("ewma", three_peers(), { sample_weight = 0 })

  setup(function()
    io.write("\n  algorithm       fast-1  fast-2  slow    p50 ms  p99 ms\n")
    for _, name in ipairs({ "round_robin", "least_request", "ewma" }) do
      local r = results[name]
      io.write(("  %-14s  %5.1f%%  %5.1f%%  %5.1f%%  %6.1f  %7.1f\n"):format(name, 100 * r.shares["fast-1"], 100 * r.shares["fast-2"],
        100 * r.shares.slow, 1000 * r.p50, 1000 * r.p99))
    end
    io.write(("  ewma with pure time decay (sample_weight 0, as Finagle): slow %.1f%%, p99 %.1f ms\n"):format(100 * pure.shares.slow, 1000 * pure.p99))
    io.write(("  two fast only (ewma) p50 %.1f ms, p99 %.1f ms\n"):format(1000 * baseline.p50, 1000 * baseline.p99))
  end)

  it("round robin gives each peer a third, and the slow peer's queue ruins p99", function()
    local r = results.round_robin
    for _, host in ipairs({ "fast-1", "fast-2", "slow" }) do
      assert.is_true(math.abs(r.shares[host] - 1 / 3) < 0.005, host)
    end
    assert.is_true(r.p99 > 5 * baseline.p99, ("%.3f vs %.3f"):format(r.p99, baseline.p99))
  end)

  it("peak-EWMA sends the slow peer a small share and keeps p99 within 1.5x of the two fast peers alone", function()
    local r = results.ewma
    assert.is_true(r.shares.slow < 0.05, tostring(r.shares.slow))
    assert.is_true(r.p99 < 1.5 * baseline.p99, ("%.3f vs %.3f"):format(r.p99, baseline.p99))
  end)

  it("the per-sample weight floor beats pure time decay on p99", function()
    assert.is_true(results.ewma.p99 < pure.p99, ("%.3f vs %.3f"):format(results.ewma.p99, pure.p99))
  end)

  it("least-request sends the slow peer less than a third and beats round robin's p99", function()
    local r = results.least_request
    assert.is_true(r.shares.slow < 0.25, tostring(r.shares.slow))
    assert.is_true(r.p99 < results.round_robin.p99 / 3)
  end)
end)

describe("simulation: a peer that refuses every connection", function()
  local function failing_pool()
    local t = three_peers()
    t[3] = { host = "dead", mean = 0.010, workers = 4, fails = true }
    return t
  end
  local OUTLIER = {
    consecutive_failures = 5, interval = 10, base_ejection_time = 30, max_ejection_time = 300, max_ejection_percent = 50,
    success_rate_stdev_factor = 1.9, success_rate_minimum_hosts = 5, success_rate_request_volume = 100,
    latency_factor = 3, latency_minimum_hosts = 3, latency_request_volume = 20,
  }

  for _, name in ipairs({ "round_robin", "least_request", "ewma" }) do
    it(name .. ": is ejected after 5 failures, gets nothing while ejected, and retries go elsewhere", function()
      local r = simulate(name, failing_pool(), { outlier = OUTLIER, requests = 4000, rate = 200 })
      assert.are.equal(0, r.picks_while_ejected)
      assert.is_true(r.retries > 0)
      assert.are.equal(0, r.retries_to_same)
      -- 20 s of traffic, ejections of 30 s then 60 s: the dead peer gets only its probes after
      -- each ejection ends (5 failures each), plus the picks before the first ejection.
      assert.is_true((r.counts.dead or 0) <= 10, tostring(r.counts.dead))
    end)
  end
end)
