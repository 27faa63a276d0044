-- Pure parts of the control loop: worker lease, leader lease state, control modes, cluster
-- snapshots and sums, drain victims, and the cluster section's validation.
local lease = require("resty.autoscale.control.lease")
local cluster = require("resty.autoscale.control.cluster")
local drain = require("resty.autoscale.control.drain")
local schema = require("resty.autoscale.control.schema")
local check = require("resty.autoscale.config.check")

-- A shared dict stand-in with expiry driven by a fake clock.
local function fake_dict(clock)
  local data, expires = {}, {}
  local d = {}
  local function live(k)
    if expires[k] and expires[k] <= clock.now then data[k], expires[k] = nil, nil end
    return data[k]
  end
  function d:add(k, v, ttl)
    if live(k) ~= nil then return false, "exists", false end
    data[k], expires[k] = v, ttl and clock.now + ttl or nil
    return true, nil, false
  end
  function d:get(k) return live(k), 0 end
  function d:set(k, v, ttl)
    data[k], expires[k] = v, ttl and clock.now + ttl or nil
    return true, nil, false
  end
  return d
end

describe("worker lease", function()
  it("one worker holds it, renews it, and another takes over after it stops renewing", function()
    local clock = { now = 0 }
    local d = fake_dict(clock)
    assert.is_true(lease.claimWorkerLease(d, "k", 101, 0.75))
    assert.is_false(lease.claimWorkerLease(d, "k", 102, 0.75))
    clock.now = 0.5
    assert.is_true(lease.claimWorkerLease(d, "k", 101, 0.75)) -- renewed until 1.25
    clock.now = 1.0
    assert.is_false(lease.claimWorkerLease(d, "k", 102, 0.75))
    clock.now = 1.25 -- 101 died after its last renewal at 0.5
    assert.is_true(lease.claimWorkerLease(d, "k", 102, 0.75))
    assert.is_false(lease.claimWorkerLease(d, "k", 101, 0.75))
  end)
end)

describe("leader lease state", function()
  it("acts only within LEASE_USE of the lease after a successful reply", function()
    local s = lease.newLeaderState()
    assert.is_false(lease.isLeader(s, 0))
    lease.onAcquireReply(s, 2, "gw-a@17", 100, 5000)
    assert.are.equal("gw-a@17", s.token)
    assert.is_true(lease.isLeader(s, 103.9))
    assert.is_false(lease.isLeader(s, 104)) -- 100 + 5 s x 0.8
    -- no answer from Redis: validity is not extended
    lease.onAcquireReply(s, nil, nil, 103, 5000)
    assert.is_false(lease.isLeader(s, 104.5))
    lease.onAcquireReply(s, 1, "gw-a@17", 104.5, 5000)
    assert.is_true(lease.isLeader(s, 108))
    -- another instance holds it
    lease.onAcquireReply(s, 0, "gw-b@18", 109, 5000)
    assert.is_nil(s.token)
    assert.are.equal("gw-b@18", s.holder)
    assert.is_false(lease.isLeader(s, 109))
  end)

  it("reads instance and epoch from a token", function()
    assert.are.equal("host:1234", lease.tokenInstance("host:1234@1795825457120"))
    assert.are.equal(1795825457120, lease.tokenEpoch("host:1234@1795825457120"))
    assert.is_nil(lease.tokenEpoch("garbage"))
  end)
end)

describe("control modes", function()
  local cases = {
    -- clustered, redisUp, leader, fallback, wasLeader -> mode, acting
    { false, false, false, "hold", false, "single", true },
    { true, true, true, "hold", false, "leader", true },
    { true, true, false, "hold", true, "standby", false },
    { true, false, true, "hold", true, "degraded", false },
    { true, false, false, "local", true, "degraded", true },
    { true, false, false, "local", false, "degraded", false },
  }
  for i, c in ipairs(cases) do
    it("case " .. i .. ": " .. c[6] .. (c[7] and " acts" or " holds"), function()
      local mode, acting, reason = lease.controlMode({ clustered = c[1], redisUp = c[2], leader = c[3], fallback = c[4], wasLeader = c[5] })
      assert.are.equal(c[6], mode)
      assert.are.equal(c[7], acting)
      assert.is_string(reason)
    end)
  end
end)

describe("next lease try", function()
  it("a standby tries again when the holder's lease ends, if that is sooner than the interval", function()
    assert.are.equal(100.5, lease.nextLeaseTry(100, 0.5, 1, nil)) -- renewed: one interval
    assert.are.equal(100.5, lease.nextLeaseTry(100, 0.5, 2, nil)) -- acquired
    assert.are.equal(100.5, lease.nextLeaseTry(100, 0.5, 0, 2500)) -- held for long: one interval
    assert.are.equal(100.2, lease.nextLeaseTry(100, 0.5, 0, 200)) -- ends in 0.2 s
    assert.are.equal(100, lease.nextLeaseTry(100, 0.5, 0, 0))
    assert.are.equal(100.5, lease.nextLeaseTry(100, 0.5, 0, -1)) -- no expiry reported
    assert.are.equal(100.5, lease.nextLeaseTry(100, 0.5, nil, nil)) -- no answer
  end)
end)

describe("fencing before each try of an action", function()
  -- clustered, mode, acting -> check
  local cases = {
    { false, "single", true, "none" },
    { true, "leader", true, "lease" },
    -- demoted between the decision and a retry: the lease is not even asked for
    { true, "standby", false, "stop" },
    { true, "degraded", false, "stop" },
    -- fallback local: the former leader decides alone, nothing to fence with
    { true, "degraded", true, "none" },
  }
  for i, c in ipairs(cases) do
    it("case " .. i .. ": " .. c[2] .. " -> " .. c[4], function()
      assert.are.equal(c[4], lease.fenceCheck(c[1], c[2], c[3]))
    end)
  end
end)

describe("cluster snapshots", function()
  it("round-trip, with missing optional values", function()
    local text = cluster.encodeSnapshot({ time = 1000.25, rate = 12.5, requests = 125, errors = 3, p99Ms = 40 })
    assert.are.equal("1000.250|12.5|125|3||40", text)
    local s = cluster.decodeSnapshot(text)
    assert.are.same({ time = 1000.25, rate = 12.5, requests = 125, errors = 3, p99Ms = 40 }, s)
    assert.is_nil(cluster.decodeSnapshot("nonsense"))
  end)

  it("sums live instances, keeps the worst p99, and drops stale or unreadable ones", function()
    local entries = {
      a = cluster.encodeSnapshot({ time = 100, rate = 10, requests = 100, errors = 1, inFlight = 3, p99Ms = 30 }),
      b = cluster.encodeSnapshot({ time = 99, rate = 20, requests = 200, errors = 9, p99Ms = 80 }),
      c = cluster.encodeSnapshot({ time = 90, rate = 500, requests = 5000, errors = 0 }),
      d = "broken",
    }
    local f = cluster.aggregate(entries, 100.5, 5)
    assert.are.equal(2, f.live)
    assert.are.equal(30, f.rate)
    assert.are.equal(300, f.requests)
    assert.are.equal(10, f.errors)
    assert.are.equal(10 / 300, f.errorRatio)
    assert.are.equal(3, f.inFlight)
    assert.are.equal(80, f.p99Ms)
    assert.are.same({ "c", "d" }, f.stale)
  end)
end)

describe("drain victims", function()
  local function peers(...)
    local out = {}
    for i, st in ipairs({ ... }) do out[i] = { address = "10.0.0." .. i .. ":80", state = st } end
    return out
  end
  it("drains the newest up peers for a scale-in", function()
    assert.are.same({ "10.0.0.3:80", "10.0.0.2:80" }, drain.drainVictims(peers("up", "up", "up"), 3, 1))
    assert.are.same({ "10.0.0.4:80" }, drain.drainVictims(peers("up", "up", "down", "up"), 3, 2))
  end)
  it("never drains the last serving peer", function()
    assert.are.same({ "10.0.0.2:80" }, drain.drainVictims(peers("up", "up"), 2, 0))
  end)
  it("does nothing when the peers are not the replicas, or for a scale-out", function()
    assert.are.same({}, drain.drainVictims(peers("up", "up"), 5, 3))
    assert.are.same({}, drain.drainVictims(peers("up", "up", "up"), 3, 4))
  end)
end)

describe("cluster section", function()
  local function validate(raw)
    local p = setmetatable({ list = {} }, { __index = check.Problems.prototype })
    local cfg = schema.validateCluster(p, "cluster", raw)
    return cfg, p.list
  end
  it("fills in defaults", function()
    local cfg, problems = validate({})
    assert.are.same({}, problems)
    assert.are.same({ lease_ms = 5000, interval = 1, stale_after = 5, fallback = "hold", key_prefix = "autoscale" }, cfg)
  end)
  it("names each problem", function()
    local cfg, problems = validate({ lease_ms = 1500, fallback = "panic", instance_id = "a b" })
    assert.is_nil(cfg)
    table.sort(problems)
    assert.are.same({
      'cluster.fallback: expected one of hold, local, got "panic"',
      "cluster.instance_id: expected letters, digits, '_', '.', '-' or ':', got \"a b\"",
      "cluster.lease_ms: must be at least twice the interval (2000 ms), got 1500",
    }, problems)
  end)
end)

describe("EndpointSlice discovery", function()
  local discovery = require("resty.autoscale.control.discovery")
  local cjson = require("cjson.safe")
  local doc = cjson.decode([[{"kind":"EndpointSliceList","items":[
    {"addressType":"IPv4","ports":[{"name":"metrics","port":9100},{"name":"http","port":8080}],
     "endpoints":[{"addresses":["10.0.0.2"],"conditions":{"ready":true}},{"addresses":["10.0.0.1"]},
                  {"addresses":["10.0.0.3"],"conditions":{"ready":false}},{"addresses":["10.0.0.4"],"conditions":{"ready":true,"terminating":true}}]},
    {"addressType":"IPv6","ports":[{"name":"http","port":8080}],"endpoints":[{"addresses":["fd00::5"]}]},
    {"addressType":"FQDN","ports":[{"name":"http","port":8080}],"endpoints":[{"addresses":["a.example"]}]}]}]])
  it("lists ready endpoints on the named port", function()
    assert.are.same({ "10.0.0.1:8080", "10.0.0.2:8080", "[fd00::5]:8080" }, (discovery.slicePeers(doc, "http")))
    assert.are.same({ "10.0.0.1:9100", "10.0.0.2:9100", "[fd00::5]:8080" }, (discovery.slicePeers(doc, nil)))
    assert.are.same({ nil, "the answer is not an EndpointSliceList" }, { discovery.slicePeers({ kind = "Status" }, nil) })
  end)
  it("plans additions, drains and returns", function()
    local plan = discovery.planDiscovery({ { address = "a:1", state = "up" }, { address = "b:1", state = "draining" }, { address = "c:1", state = "up" } }, { "b:1", "d:1" })
    assert.are.same({ add = { "d:1" }, drain = { "a:1", "c:1" }, up = { "b:1" } }, plan)
  end)
  it("keeps the peers when the Service lists none", function()
    assert.are.same({ add = {}, drain = {}, up = {} }, discovery.planDiscovery({ { address = "a:1", state = "up" } }, {}))
  end)
  it("builds the list URL with the label selector", function()
    assert.are.equal("https://k8s:6443/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dapi",
      discovery.sliceListUrl("https://k8s:6443/", "shop", "api"))
  end)
end)
