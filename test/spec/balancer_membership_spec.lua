local membership = require("resty.autoscale.balancer.membership")
local codec = require("resty.autoscale.balancer.peer_list_codec")
local cjson = require("cjson.safe")

local function pools()
  local t = {}
  t.api = membership.fromConfig("api", { { host = "10.0.0.1", port = 8080, weight = 1 }, { host = "::1", port = 8081, weight = 2 } }, 100)
  return t
end

local function apply(op, now)
  local p = pools()
  local before = codec.encode(p.api)
  local new, problems = membership.apply(p, op, now or 200)
  -- Nothing changes in place, whatever the outcome.
  assert.are.equal(before, codec.encode(p.api))
  return new, problems
end

describe("a peer added to a probed pool", function()
  it("waits for its first passing verdict, and its slow start begins then", function()
    local p = pools()
    local new = membership.apply(p, { op = "add", pool = "api", host = "10.0.0.3", port = 80 }, 200, true)
    local added = new.peers[3]
    assert.are.same({ "10.0.0.3", false, 200 }, { added.host, added.healthy, added.since })
    local healthy = membership.setHealth(new, "10.0.0.3", 80, true, 207)
    assert.are.same({ true, 207 }, { healthy.peers[3].healthy, healthy.peers[3].since })
    -- without active checks it serves (ramping) at once
    local plain = membership.apply(pools(), { op = "add", pool = "api", host = "10.0.0.3", port = 80 }, 200)
    assert.are.same({ true, 200 }, { plain.peers[3].healthy, plain.peers[3].since })
  end)
end)

describe("membership operations", function()
  it("adds a peer (weight 1 by default), up and healthy since now, version bumped", function()
    local new, problems = apply({ op = "add", pool = "api", host = "10.0.0.3", port = 80 })
    assert.are.same({}, problems)
    assert.are.equal(2, new.version)
    assert.are.same({ host = "10.0.0.3", port = 80, weight = 1, state = "up", healthy = true, since = 200 }, new.peers[3])
  end)

  local cases = {
    { op = { op = "remove", pool = "api", host = "10.0.0.1", port = 8080 }, check = function(new) assert.are.equal(1, #new.peers); assert.are.equal("::1", new.peers[1].host) end },
    { op = { op = "set_weight", pool = "api", host = "::1", port = 8081, weight = 0 }, check = function(new) assert.are.equal(0, new.peers[2].weight) end },
    { op = { op = "drain", pool = "api", host = "::1", port = 8081 }, check = function(new) assert.are.equal("draining", new.peers[2].state) end },
    { op = { op = "down", pool = "api", host = "::1", port = 8081 }, check = function(new) assert.are.equal("down", new.peers[2].state) end },
    { op = { op = "up", pool = "api", host = "::1", port = 8081 }, check = function(new) assert.are.equal("up", new.peers[2].state); assert.are.equal(100, new.peers[2].since) end },
  }
  for _, c in ipairs(cases) do
    it(c.op.op .. " changes only the named peer", function()
      local new, problems = apply(c.op)
      assert.are.same({}, problems)
      assert.are.equal(2, new.version)
      c.check(new)
    end)
  end

  it("restarts slow start when a peer comes back up", function()
    local p = pools()
    local down = membership.apply(p, { op = "down", pool = "api", host = "10.0.0.1", port = 8080 }, 150)
    local up = membership.apply({ api = down }, { op = "up", pool = "api", host = "10.0.0.1", port = 8080 }, 160)
    assert.are.equal(160, up.peers[1].since)
    assert.are.equal(3, up.version)
  end)

  local bad = {
    { name = "unknown pool", op = { op = "add", pool = "web", host = "10.0.0.3", port = 80 }, want = { 'pool: unknown pool "web"' } },
    { name = "host name", op = { op = "add", pool = "api", host = "db.local", port = 80 },
      want = { 'host: expected an IPv4 or IPv6 address (host names are not resolved in the balancer), got "db.local"' } },
    { name = "bad IPv4", op = { op = "add", pool = "api", host = "10.0.0.256", port = 80 },
      want = { 'host: expected an IPv4 or IPv6 address (host names are not resolved in the balancer), got "10.0.0.256"' } },
    { name = "port 0", op = { op = "add", pool = "api", host = "10.0.0.3", port = 0 }, want = { "port: expected integer 1-65535, got 0" } },
    { name = "port as text", op = { op = "add", pool = "api", host = "10.0.0.3", port = "80" }, want = { 'port: expected integer 1-65535, got "80"' } },
    { name = "negative weight", op = { op = "set_weight", pool = "api", host = "::1", port = 8081, weight = -1 }, want = { "weight: expected integer 0-1000, got -1" } },
    { name = "missing weight", op = { op = "set_weight", pool = "api", host = "::1", port = 8081 }, want = { "weight: required integer 0-1000 is missing" } },
    { name = "weight on drain", op = { op = "drain", pool = "api", host = "::1", port = 8081, weight = 2 }, want = { 'weight: not allowed with op "drain"' } },
    { name = "unknown op", op = { op = "restart", pool = "api", host = "::1", port = 8081 },
      want = { 'op: expected one of add, remove, set_weight, drain, up, down, got "restart"' } },
    { name = "duplicate add", op = { op = "add", pool = "api", host = "10.0.0.1", port = 8080 }, want = { 'host: peer 10.0.0.1:8080 is already in pool "api"' } },
    { name = "missing peer", op = { op = "remove", pool = "api", host = "10.0.0.9", port = 8080 }, want = { 'host: no peer 10.0.0.9:8080 in pool "api"' } },
    { name = "not an object", op = { 1, 2 }, want = { "body: expected object, got an array" } },
  }
  for _, c in ipairs(bad) do
    it("refuses " .. c.name .. " with a message naming the field", function()
      local new, problems = apply(c.op)
      assert.is_nil(new)
      assert.are.same(c.want, problems)
    end)
  end

  it("reports every problem at once, and unknown fields", function()
    local _, problems = apply({ op = "add", pool = "api", host = "x", port = 70000, wieght = 2 })
    table.sort(problems)
    assert.are.equal(3, #problems)
    assert.matches("^host: expected an IPv4", problems[1])
    assert.are.equal("port: expected integer 1-65535, got 70000", problems[2])
    assert.matches("^wieght: unknown field", problems[3])
  end)

  it("refuses malformed JSON and an empty body", function()
    assert.are.same({ "body: expected a JSON object, got malformed JSON" }, select(2, membership.applyBody(pools(), "{op:", 1)))
    assert.are.same({ "body: expected a JSON object, got nothing" }, select(2, membership.applyBody(pools(), "", 1)))
    local new = membership.applyBody(pools(), cjson.encode({ op = "drain", pool = "api", host = "10.0.0.1", port = 8080 }), 1)
    assert.are.equal("draining", new.peers[1].state)
  end)

  it("takes the health checker's verdict, bumping the version only on a change", function()
    local p = pools()
    assert.is_nil(membership.setHealth(p.api, "10.0.0.1", 8080, true, 5))
    local sick = membership.setHealth(p.api, "10.0.0.1", 8080, false, 5)
    assert.are.equal(2, sick.version)
    assert.is_false(sick.peers[1].healthy)
    local well = membership.setHealth(sick, "10.0.0.1", 8080, true, 9)
    assert.are.equal(9, well.peers[1].since)
  end)

  it("reports a draining peer drained once nothing is in flight", function()
    local peer = { state = "draining" }
    assert.is_false(membership.drained(peer, 2))
    assert.is_true(membership.drained(peer, 0))
    assert.is_false(membership.drained({ state = "up" }, 0))
  end)
end)

describe("peer list codec", function()
  local function sample()
    local p = pools().api
    p.version = 42
    p.peers[2].state = "draining"
    p.peers[2].healthy = false
    p.peers[2].since = 123.25
    return p
  end

  it("round-trips peers, states and the version", function()
    local text = codec.encode(sample())
    local back, err = codec.decode(text)
    assert.is_nil(err)
    assert.are.same(sample(), back)
    assert.are.equal(42, codec.peekVersion(text))
  end)

  it("is compact and readable", function()
    local text = codec.encode(sample())
    assert.matches("^asp1 api 42 2\n10%.0%.0%.1 8080 1 u 1 100%.000\n::1 8081 2 r 0 123%.250\n#%x+$", text)
  end)

  it("round-trips an empty pool", function()
    local p = { name = "api", version = 3, peers = {} }
    assert.are.same(p, (codec.decode(codec.encode(p))))
  end)

  local good = codec.encode(sample())
  local corrupt = {
    { name = "not a string", input = 42, want = "peer list: expected a string" },
    { name = "truncated", input = good:sub(1, -3), want = "peer list: missing checksum line" },
    { name = "a flipped byte", input = good:gsub("8081", "8082"), want = "peer list: checksum mismatch" },
    { name = "empty", input = "", want = "peer list: missing checksum line" },
  }
  local function sealed(body)
    return body .. ("#%08x"):format(codec.adler32(body))
  end
  local forged = {
    { name = "a bad header", body = "asp9 api 1 0\n", want = "peer list: bad header" },
    { name = "a wrong count", body = "asp1 api 1 2\n10.0.0.1 80 1 u 1 0\n", want = "peer list: expected 2 peers, got 1" },
    { name = "a bad state", body = "asp1 api 1 1\n10.0.0.1 80 1 z 1 0\n", want = "peer list: bad peer on line 2" },
    { name = "a host name", body = "asp1 api 1 1\nexample 80 1 u 1 0\n", want = "peer list: bad peer on line 2" },
    { name = "port 0", body = "asp1 api 1 1\n10.0.0.1 0 1 u 1 0\n", want = "peer list: bad peer on line 2" },
    { name = "a weight above 1000", body = "asp1 api 1 1\n10.0.0.1 80 1001 u 1 0\n", want = "peer list: bad peer on line 2" },
  }
  for _, c in ipairs(corrupt) do
    it("refuses " .. c.name, function()
      local v, err = codec.decode(c.input)
      assert.is_nil(v)
      assert.are.equal(c.want, err)
    end)
  end
  for _, c in ipairs(forged) do
    it("refuses (with a valid checksum) " .. c.name, function()
      local v, err = codec.decode(sealed(c.body))
      assert.is_nil(v)
      assert.are.equal(c.want, err)
    end)
  end

  it("computes Adler-32 (the value every implementation gives for 'Wikipedia')", function()
    assert.are.equal(0x11E60398, codec.adler32("Wikipedia"))
  end)
end)
