-- The metrics cores: histogram error bound and percentiles, in-flight ring, window buckets and
-- totals merged over workers (fake dict), the cardinality cap, Prometheus text, StatsD lines,
-- and the config section.
local histogram = require("resty.autoscale.metrics.histogram")
local inflight = require("resty.autoscale.metrics.inflight")
local counters = require("resty.autoscale.metrics.counters")
local prometheus = require("resty.autoscale.metrics.prometheus")
local statsd = require("resty.autoscale.metrics.statsd")
local schema = require("resty.autoscale.metrics.schema")
local check = require("resty.autoscale.config.check")

-- A table-backed shared dict with the semantics the store relies on, and a byte budget.
local function fake_dict(capacity)
  local d = { data = {}, used = 0, capacity = capacity or math.huge }
  local function size(k, v) return #k + #tostring(v) + 64 end
  function d:get(k) return self.data[k] end
  function d:set(k, v)
    local old = self.data[k]
    if old ~= nil then self.used = self.used - size(k, old) end
    self.data[k] = v
    if v ~= nil then self.used = self.used + size(k, v) end
    return true, nil, false
  end
  function d:safe_set(k, v)
    local old = self.data[k]
    local delta = size(k, v) - (old ~= nil and size(k, old) or 0)
    if self.used + delta > self.capacity then return nil, "no memory" end
    return self:set(k, v)
  end
  function d:safe_add(k, v)
    if self.data[k] ~= nil then return nil, "exists" end
    return self:safe_set(k, v)
  end
  function d:incr(k, n, init)
    local v = self.data[k]
    if v == nil then
      if init == nil then return nil, "not found" end
      v = init
    end
    self:set(k, v + n)
    return v + n, nil, false
  end
  return d
end

describe("log-linear histogram", function()
  it("reports every latency from 100 us to 1000 s within 5 % (whole microseconds, as measured)", function()
    local worst = 0
    local us = 101
    while us < 1e9 do
      local v = us / 1e6
      local b = histogram.bucketOf(v)
      local est = histogram.bucketValue(b)
      local err = math.abs(est - v) / v
      if err > worst then worst = err end
      local lo, hi = histogram.bucketBounds(b)
      assert.is_true(v > lo - 1e-12 and v <= hi + 1e-12, ("%g not in (%g, %g]"):format(v, lo, hi))
      us = math.floor(us * 1.0037) + 1
    end
    assert.is_true(worst <= 0.05 + 1e-9, "worst relative error " .. worst)
    assert.is_true(worst > 0.045, "the bound is tight, not loose")
  end)

  it("puts round latencies on a bucket's upper bound (closed on the right, like le)", function()
    for _, case in ipairs({ { 0.010, 0.0099, 0.010 }, { 0.25, 0.24, 0.25 }, { 1, 0.99, 1 }, { 0.0101, 0.010, 0.011 }, { 0.00101, 0.001, 0.0011 } }) do
      local lo, hi = histogram.bucketBounds(histogram.bucketOf(case[1]))
      assert.are.near(case[2], lo, 1e-12)
      assert.are.near(case[3], hi, 1e-12)
    end
    assert.are.equal(histogram.FIRST_BUCKET, histogram.bucketOf(0))
    assert.are.equal(histogram.FIRST_BUCKET, histogram.bucketOf(0.0001))
    assert.are.equal(histogram.OVERFLOW_BUCKET, histogram.bucketOf(5000))
    assert.are.equal(632, histogram.BUCKET_COUNT)
  end)

  it("gives nearest-rank percentiles of known samples", function()
    local h = {}
    local function add(v, n) local b = histogram.bucketOf(v) h[b] = (h[b] or 0) + n end
    add(0.010, 50) add(0.050, 40) add(0.200, 9) add(2.0, 1)
    local p = histogram.percentiles(h, 100)
    assert.are.near(0.00995, p.p50, 1e-9)
    assert.are.near(0.0495, p.p90, 1e-9)
    assert.are.near(0.195, p.p99, 1e-9)
    local none = histogram.percentiles({}, 0)
    assert.is_nil(none.p50)
  end)

  it("encodes and decodes sparse counts, and maps buckets onto Prometheus slots exactly", function()
    local h = { [5] = 3, [300] = 1 }
    local into = { [5] = 1 }
    assert.are.equal(4, histogram.decodeInto(into, histogram.encode(h)))
    assert.are.same({ [5] = 4, [300] = 1 }, into)
    -- 10 ms is in the le="0.01" slot (4th bound), 10.1 ms in le="0.025"
    assert.are.equal(4, histogram.prometheusSlot(histogram.bucketOf(0.010)))
    assert.are.equal(5, histogram.prometheusSlot(histogram.bucketOf(0.0101)))
    assert.are.equal(histogram.PROMETHEUS_SLOTS, histogram.prometheusSlot(histogram.bucketOf(61)))
  end)
end)

describe("in-flight ring", function()
  it("counts started minus finished, per start second", function()
    local r = inflight.newInflight()
    inflight.started(r, 100, 5) inflight.started(r, 100, 5) inflight.started(r, 101, 5)
    assert.are.equal(3, inflight.inflight(r, 101))
    inflight.finished(r, 100)
    assert.are.equal(2, inflight.inflight(r, 102))
    inflight.finished(r, 100) inflight.finished(r, 100) -- one too many: never negative
    assert.are.equal(1, inflight.inflight(r, 102))
  end)

  it("forgets a request never seen finishing after `size` seconds", function()
    local r = inflight.newInflight()
    inflight.started(r, 100, 5)
    assert.are.equal(1, inflight.inflight(r, 104))
    assert.are.equal(0, inflight.inflight(r, 105))
    -- its slot is reused by second 105; finishing the old request changes nothing
    inflight.started(r, 105, 5)
    inflight.finished(r, 100)
    assert.are.equal(1, inflight.inflight(r, 105))
  end)
end)

local function count(c, status, latency)
  c.requests = c.requests + 1
  c.latency = c.latency + latency
  if status >= 500 then c.c5 = c.c5 + 1 c.errors = c.errors + 1 else c.c2 = c.c2 + 1 end
  local b = histogram.bucketOf(latency)
  c.hist[b] = (c.hist[b] or 0) + 1
end

describe("window buckets and totals", function()
  it("merges two workers' buckets exactly, and slides", function()
    local d = fake_dict()
    local w0, w1 = counters.newCounters(), counters.newCounters()
    for _ = 1, 30 do count(w0, 200, 0.010) end
    for _ = 1, 10 do count(w1, 503, 0.050) end
    assert.is_nil(counters.flushCounters(d, "route|a", w0, 1000, 65, 0))
    assert.is_nil(counters.flushCounters(d, "route|a", w1, 1000, 65, 1))
    assert.are.equal(0, w0.requests)
    local f = counters.readWindow(d, "route|a", 1001.5, 10, 2, true)
    assert.are.equal(40, f.requests)
    assert.are.equal(10, f.errors)
    assert.are.equal(4, f.rate)
    assert.are.equal(0.25, f.errorRatio)
    assert.are.same({ ["1xx"] = 0, ["2xx"] = 30, ["3xx"] = 0, ["4xx"] = 0, ["5xx"] = 10 }, f.responses)
    assert.are.near(0.00995, f.p50, 1e-9)
    assert.are.near(0.0495, f.p99, 1e-9)
    assert.are.near((30 * 0.010 + 10 * 0.050) / 10, f.concurrency, 1e-9)
    -- the current second is not read yet; after the span it is gone from the window
    assert.are.equal(0, counters.readWindow(d, "route|a", 1000.5, 10, 2).requests)
    assert.are.equal(0, counters.readWindow(d, "route|a", 1011.5, 10, 2).requests)
    local t = counters.readTotals(d, "route|a")
    assert.are.equal(40, t.requests)
    assert.are.equal(10, t.c5)
    assert.are.equal(30, t.slots[4])
    assert.are.equal(10, t.slots[6])
  end)

  it("adds a second flush within the same second to what the worker wrote", function()
    local d = fake_dict()
    local c = counters.newCounters()
    count(c, 200, 0.01) counters.flushCounters(d, "s", c, 50, 65, 0)
    count(c, 200, 0.01) count(c, 200, 0.02) counters.flushCounters(d, "s", c, 50, 65, 0)
    local f = counters.readWindow(d, "s", 51, 1, 1, true)
    assert.are.equal(3, f.requests)
    assert.are.equal(3, counters.readTotals(d, "s").requests)
  end)

  it("sums in-flight gauges over workers", function()
    local d = fake_dict()
    local a, b = counters.newCounters(), counters.newCounters()
    inflight.started(a.inflight, 10, 60) inflight.started(b.inflight, 10, 60) inflight.started(b.inflight, 10, 60)
    counters.flushInflight(d, "s", a, 10, 5, 0)
    counters.flushInflight(d, "s", b, 10, 5, 1)
    assert.are.equal(3, counters.readInflight(d, "s", 2))
  end)
end)

describe("cardinality cap", function()
  it("admits the first max_series series, for every worker alike", function()
    local d = fake_dict()
    assert.are.equal(1, counters.admit(d, "route|a", 2))
    assert.are.equal(1, counters.admit(d, "route|b", 2))
    assert.are.equal(-1, counters.admit(d, "peer|p|x", 2))
    assert.are.equal(1, counters.admit(d, "route|a", 2), "asked again (another worker): same answer")
    assert.are.equal(-1, counters.admit(d, "peer|p|x", 2))
    assert.are.equal(-1, counters.admit(d, "peer|p|y", 2))
    assert.are.equal(2, counters.admittedCount(d), "refused series leave no key behind")
  end)

  it("100,000 runtime peers neither grow the dict past its size nor evict the live routes' data", function()
    local cap, budget = 50, 2000000
    local d = fake_dict(budget)
    local live = counters.newCounters()
    assert.are.equal(1, counters.admit(d, "route|live", cap))
    for _ = 1, 5 do count(live, 200, 0.01) end
    counters.flushCounters(d, "route|live", live, 500, 65, 0)
    local overflow = counters.newCounters()
    local admitted = 0
    for i = 1, 100000 do
      local series = "peer|api|10." .. i .. ":80"
      local c = counters.newCounters()
      count(c, 200, 0.02)
      local verdict = counters.admit(d, series, cap)
      if verdict == 1 then
        admitted = admitted + 1
        counters.flushCounters(d, series, c, 500 + i % 60, 65, 0)
      else
        counters.moveCounts(overflow, c)
      end
    end
    counters.flushCounters(d, "peer|api|_overflow", overflow, 560, 65, 0)
    assert.are.equal(cap - 1, admitted)
    assert.is_true(d.used <= budget)
    assert.are.equal(5, counters.readTotals(d, "route|live").requests)
    assert.are.equal(5, counters.readWindow(d, "route|live", 501, 1, 1).requests)
    assert.are.equal(100000 - admitted, counters.readTotals(d, "peer|api|_overflow").requests)
  end)
end)

local function totals(n)
  return { requests = n, errors = 1, latency = 0.5, c1 = 0, c2 = n - 1, c3 = 0, c4 = 0, c5 = 1, connectFailures = 0, timeouts = 1,
           bytesIn = 100, bytesOut = 2000, slots = { 0, 0, 0, n - 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 } }
end

describe("Prometheus text", function()
  it("renders counters, histograms and gauges with HELP and TYPE", function()
    local w = { ["10s"] = { rate = 1.5, errorRatio = 0.25, p50 = 0.0105, p90 = 0.02, p99 = 0.1 } }
    local text = prometheus.renderPrometheus({
      { kind = "route", labels = 'route="a\\"b"', totals = totals(4), inflight = 2, windows = w },
    }, { "10s" }, { capacity = 1000, free = 500, series = 1, maxSeries = 10 })
    local function has(line) assert.is_truthy(text:find(line, 1, true), "missing: " .. line .. "\n" .. text) end
    has('# TYPE autoscale_route_requests_total counter')
    has('autoscale_route_requests_total{route="a\\"b"} 4')
    has('autoscale_route_responses_total{route="a\\"b",class="5xx"} 1')
    has('# TYPE autoscale_route_latency_seconds histogram')
    has('autoscale_route_latency_seconds_bucket{route="a\\"b",le="0.005"} 0')
    has('autoscale_route_latency_seconds_bucket{route="a\\"b",le="0.01"} 3')
    has('autoscale_route_latency_seconds_bucket{route="a\\"b",le="+Inf"} 4')
    has('autoscale_route_latency_seconds_count{route="a\\"b"} 4')
    has('autoscale_route_latency_seconds_sum{route="a\\"b"} 0.5')
    has('autoscale_route_inflight{route="a\\"b"} 2')
    has('autoscale_route_window_rate{route="a\\"b",window="10s"} 1.5')
    has('autoscale_route_window_latency_seconds{route="a\\"b",window="10s",percentile="50"} 0.0105')
    has('autoscale_metrics_dict_free_bytes 500')
    assert.is_nil(text:find("autoscale_peer_", 1, true))
    assert.are.equal("\n", text:sub(-1))
  end)

  it("escapes label values and formats numbers", function()
    assert.are.equal('a\\\\b\\"c\\nd', prometheus.escapeLabel('a\\b"c\nd'))
    assert.are.equal("0.025", prometheus.formatValue(0.025))
    assert.are.equal("12", prometheus.formatValue(12))
    assert.are.equal("+Inf", prometheus.formatValue(math.huge))
    assert.are.equal("NaN", prometheus.formatValue(0 / 0))
  end)
end)

describe("StatsD lines", function()
  it("sends counter deltas, timers with sample rates and the gauge", function()
    local out = {}
    local before = totals(4)
    local now = totals(10)
    local h = { [histogram.bucketOf(0.010)] = 3, [histogram.bucketOf(0.050)] = 1 }
    statsd.seriesLines(out, "gw.route.api", now, before, h, 2)
    assert.are.same({
      "gw.route.api.requests:6|c",
      "gw.route.api.responses.2xx:6|c",
      "gw.route.api.latency:9.950|ms|@0.333333",
      "gw.route.api.latency:49.500|ms",
      "gw.route.api.inflight:2|g",
    }, out)
  end)

  it("names metric path elements safely and packs lines into packets", function()
    assert.are.equal("127_0_0_1_8080", statsd.statsdSegment("127.0.0.1:8080"))
    assert.are.same({ "aaaa\nbbbb", "cccc" }, statsd.packets({ "aaaa", "bbbb", "cccc" }, 9))
  end)
end)

describe("metrics config section", function()
  local function validate(v)
    local p = require("resty.autoscale.lualib_bundle").__TS__New(check.Problems)
    local m = schema.validateMetrics(p, "metrics", v)
    return m, p.list
  end
  it("fills in defaults", function()
    local m, problems = validate(nil)
    assert.are.same({}, problems)
    assert.are.same({ enabled = true, windows = { 10, 60 }, maxSeries = 1000, inflightMaxAge = 300, bytes = false }, m)
    m = validate({ statsd = { port = 9125 } })
    assert.are.same({ host = "127.0.0.1", port = 9125, prefix = "autoscale", interval = 10 }, m.statsd)
  end)
  for _, case in ipairs({
    { { windows = {} }, "metrics.windows: expected 1 to 4 window spans in seconds, got 0" },
    { { max_series = 0 }, "metrics.max_series: expected integer 1-1000000, got 0" },
    { { inflight_max_age = 1 }, "metrics.inflight_max_age: expected integer 2-86400, got 1" },
    { { statsd = { host = "statsd.local" } }, 'metrics.statsd.host: expected an IPv4 or IPv6 address (no resolver in timers), got "statsd.local"' },
    { { colour = 1 }, "metrics.colour: unknown field (expected one of: enabled, windows, max_series, inflight_max_age, bytes, statsd)" },
  }) do
    it("refuses " .. case[2], function()
      local m, problems = validate(case[1])
      assert.is_nil(m)
      assert.are.equal(case[2], problems[1])
    end)
  end
end)
