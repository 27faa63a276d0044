// The metrics capability in the gateway: per-worker counting in the access and log phases, the
// 1 s flush into the shared dict (with the cardinality cap and the StatsD push), and the figures
// of the status page and of GET /metrics.
import { Counters, CounterDict, Totals, WindowFigures, admit, admittedCount, flushCounters, flushInflight, moveCounts, newCounters, peerSeries, readInflight, readTotals, readWindow, routeSeries, setWorkerCount } from "../metrics/counters";
import { Histogram, bucketOf } from "../metrics/histogram";
import { finished, started } from "../metrics/inflight";
import { SeriesFigures, escapeLabel, renderPrometheus } from "../metrics/prometheus";
import { packets, seriesLines, statsdSegment } from "../metrics/statsd";
import { GatewayState, METRICS_DICT, PeerRuntime, PoolRuntime, RouteRuntime, getState } from "./state";
import { RequestContext } from "./request_context";

/** Name under which routes and peers above metrics.max_series are counted. */
export const OVERFLOW = "_overflow";
/** Seconds an in-flight gauge outlives the worker that wrote it. */
const INFLIGHT_TTL = 5;

setWorkerCount(ngx.worker.count());

// ---- Per request (hot path: no string building, no dict access) -------------------------------

/** access phase: counts the request as in flight; returns its start second for the context. */
export function inflightStarted(s: GatewayState, route: RouteRuntime): number {
  const second = math.floor(ngx.req.start_time());
  started(route.counters.inflight, second, s.config.metrics.inflightMaxAge);
  return second;
}

/** log phase: the request counted in flight by the access phase has finished (its peer's try too). */
export function inflightFinished(ctx: RequestContext): void {
  const second = ctx.startSecond;
  if (second !== undefined) finished(ctx.route.counters.inflight, second);
  const peer = ctx.peer;
  if (peer !== undefined) {
    finished(peer.counters.inflight, ctx.peerSecond!);
    ctx.peer = undefined;
  }
}

/**
 * balancer phase: a try of `peer` starts (the pool balancer's pick). The previous try of this
 * request, if any, is over.
 */
export function peerTryStarted(ctx: RequestContext, peer: PeerRuntime | undefined): void {
  const prev = ctx.peer;
  if (prev !== undefined) finished(prev.counters.inflight, ctx.peerSecond!);
  ctx.peer = peer;
  if (peer === undefined) return;
  const second = math.floor(ngx.now());
  started(peer.counters.inflight, second, getState()!.config.metrics.inflightMaxAge);
  ctx.peerSecond = second;
}

function countClass(c: Counters, status: number): void {
  if (status >= 500 || status < 100) {
    c.c5 += 1;
    c.errors += 1;
  } else if (status >= 400) {
    c.c4 += 1;
  } else if (status >= 300) {
    c.c3 += 1;
  } else if (status >= 200) {
    c.c2 += 1;
  } else {
    c.c1 += 1;
  }
}

/** log phase: counts a finished request for its route. */
export function countRoute(s: GatewayState, route: RouteRuntime, status: number, latency: number): void {
  const c: Counters = route.counters;
  c.requests += 1;
  c.latency += latency;
  countClass(c, status);
  const b = bucketOf(latency);
  const h = c.hist;
  h.set(b, (h.get(b) ?? 0) + 1);
  if (s.config.metrics.bytes) {
    c.bytesIn += tonumber(ngx.var.request_length) ?? 0;
    c.bytesOut += tonumber(ngx.var.bytes_sent) ?? 0;
  }
}

/** The last number of a list such as "0.010, 0.012" (or the only one). */
function lastNumber(list: string): number | undefined {
  const n = tonumber(list);
  if (n !== undefined) return n;
  return tonumber(string.match(list, "([%d%.]+)%s*$")[0]);
}

/** The last entry of a list ("a, b" or "a : b") is "-": that try got no connection or no header. */
function lastIsDash(list: string | undefined): boolean {
  return list !== undefined && string.match(list, "%-%s*$")[0] !== undefined;
}

function countTry(peer: PeerRuntime, route: RouteRuntime, status: number | undefined, latency: number, connectFailed: boolean, timedOut: boolean): void {
  const c = peer.counters;
  c.requests += 1;
  c.latency += latency;
  if (connectFailed) {
    c.connectFailures += 1;
    route.counters.connectFailures += 1;
  } else if (timedOut) {
    c.timeouts += 1;
    route.counters.timeouts += 1;
  }
  if (status === undefined) {
    c.c5 += 1;
    c.errors += 1;
  } else {
    countClass(c, status);
    if (status < 500 && (connectFailed || timedOut)) c.errors += 1;
  }
  const b = bucketOf(latency);
  const h = c.hist;
  h.set(b, (h.get(b) ?? 0) + 1);
}

/**
 * log phase: counts the last try of a proxied request for the peer that served it (`peer`),
 * with its status, latency, connect failure or timeout, and bytes. Returns whether the try
 * failed (connect error, timeout or 5xx), for other capabilities.
 */
export function countPeer(s: GatewayState, peer: PeerRuntime, pool: PoolRuntime, route: RouteRuntime): boolean {
  const us = ngx.var.upstream_status;
  const code = us === undefined ? undefined : tonumber(us);
  if (code === undefined && us !== undefined && string.find(us, "[,:]")[0] !== undefined) {
    // Several tries ("502, 200"): each is counted for its peer (rare path).
    countTries(pool, route, ngx.var.upstream_addr ?? "");
    const last = lastNumber(us);
    return last === undefined || last >= 500;
  }
  const rt = ngx.var.upstream_response_time;
  const latency = rt === undefined ? 0 : lastNumber(rt) ?? 0;
  // 502 without a connect time: no connection; 504 without a header time: timed out.
  let connectFailed = false;
  let timedOut = false;
  if (code === undefined || code === 502 || code === 504) {
    connectFailed = lastIsDash(ngx.var.upstream_connect_time);
    if (!connectFailed && code !== 502) timedOut = lastIsDash(ngx.var.upstream_header_time);
  }
  countTry(peer, route, code, latency, connectFailed, timedOut);
  if (s.config.metrics.bytes) countPeerBytes(peer.counters);
  return code === undefined || code >= 500 || connectFailed || timedOut;
}

function countPeerBytes(c: Counters): void {
  c.bytesIn += tonumber(ngx.var.upstream_bytes_sent) ?? 0;
  c.bytesOut += tonumber(ngx.var.upstream_bytes_received) ?? 0;
}

/**
 * log phase: counts the only try of a request the bundle's balancer made, when the client's
 * status is the peer's answer: its latency is the balancer's (pick to end), no $upstream_* list
 * to parse.
 */
export function countBalancedTry(s: GatewayState, peer: PeerRuntime, route: RouteRuntime, status: number, latency: number): void {
  countTry(peer, route, status, latency, false, false);
  if (s.config.metrics.bytes) countPeerBytes(peer.counters);
}

function listItems(list: string | undefined): string[] {
  const out: string[] = [];
  if (list === undefined) return out;
  for (const [item] of string.gmatch(list, "[^,:%s][^,]-%f[,%z]")) {
    const [trimmed] = string.gsub(item, "%s+$", "");
    out.push(trimmed);
  }
  return out;
}

/**
 * log phase, rare path: $upstream_addr lists several tries ("a:1, b:2", "a:1 : b:2" after an
 * internal redirect). Counts every try for its peer; returns the peer of the last try.
 */
export function countTries(pool: PoolRuntime, route: RouteRuntime, addrList: string): PeerRuntime | undefined {
  const addrs: string[] = [];
  for (const [a] of string.gmatch(addrList, "([^%s,]+:%d+)")) addrs.push(a);
  const [statuses] = string.gsub(ngx.var.upstream_status ?? "", ":", ",");
  const [times] = string.gsub(ngx.var.upstream_response_time ?? "", ":", ",");
  const [connects] = string.gsub(ngx.var.upstream_connect_time ?? "", ":", ",");
  const [headers] = string.gsub(ngx.var.upstream_header_time ?? "", ":", ",");
  const st = listItems(statuses);
  const rt = listItems(times);
  const ct = listItems(connects);
  const ht = listItems(headers);
  let last: PeerRuntime | undefined;
  for (let i = 0; i < addrs.length; i++) {
    const peer = pool.byAddress.get(addrs[i]);
    if (peer === undefined) continue;
    const code = tonumber(st[i]);
    const connectFailed = (code === undefined || code === 502 || code === 504) && ct[i] === "-";
    const timedOut = !connectFailed && (code === undefined || code === 504) && ht[i] === "-";
    countTry(peer, route, code, tonumber(rt[i]) ?? 0, connectFailed, timedOut);
    last = peer;
  }
  return last;
}

// ---- Flush (1 s timer, every worker) ------------------------------------------------------------

let lastFlushError = 0;
let primed = false;
const overflowRoute: RouteRuntime = { name: OVERFLOW, config: undefined, pool: undefined, counters: newCounters(), series: routeSeries(OVERFLOW) };
const overflowPeers = new LuaTable<string, Counters>();
let nextStatsd = 0;
let statsdBefore = new LuaTable<string, Totals>();

function overflowPeerCounters(pool: string): Counters {
  let c = overflowPeers.get(pool);
  if (c === undefined) {
    c = newCounters();
    c.admitted = 1;
    overflowPeers.set(pool, c);
  }
  return c;
}

/** Whether a series has its own keys; asks the dict (once per worker) while undecided. */
function admitted(dict: CounterDict, s: GatewayState, series: string, c: Counters): boolean {
  if (c.admitted === 0) c.admitted = admit(dict, series, s.config.metrics.maxSeries);
  return c.admitted === 1;
}

/** The configured routes and peers ask first, in config order, so runtime peers cannot take their place. */
function prime(dict: CounterDict, s: GatewayState): void {
  s.unmatched.counters.admitted = 1;
  overflowRoute.counters.admitted = 1;
  for (const r of s.routeList) if (r !== s.unmatched) admitted(dict, s, r.series, r.counters);
  for (const name of s.config.poolNames) {
    for (const p of s.pools.get(name).peers) admitted(dict, s, p.series, p.counters);
  }
  primed = true;
}

function flushOne(dict: CounterDict, s: GatewayState, series: string, c: Counters, overflow: Counters, second: number, worker: number): string | undefined {
  const err = flushInflight(dict, series, c, second, INFLIGHT_TTL, worker);
  if (c.requests === 0) return err;
  if (admitted(dict, s, series, c)) return flushCounters(dict, series, c, second, s.bucketTtl, worker) ?? err;
  if (c.admitted === -1) moveCounts(overflow, c);
  return err;
}

/** Moves every worker-local counter into the shared dict (window bucket of this second, totals). */
export function flush(s: GatewayState, now: number): void {
  const dict = ngx.shared[METRICS_DICT]!;
  const worker = ngx.worker.id() ?? 0;
  const second = math.floor(now);
  if (!primed) prime(dict, s);
  let err: string | undefined;
  for (const r of s.routeList) err = flushOne(dict, s, r.series, r.counters, overflowRoute.counters, second, worker) ?? err;
  err = flushCounters(dict, overflowRoute.series, overflowRoute.counters, second, s.bucketTtl, worker) ?? err;
  for (const name of s.config.poolNames) {
    const overflow = overflowPeerCounters(name);
    for (const p of s.pools.get(name).peers) {
      err = flushOne(dict, s, p.series, p.counters, overflow, second, worker) ?? err;
    }
    err = flushCounters(dict, peerSeries(name, OVERFLOW), overflow, second, s.bucketTtl, worker) ?? err;
  }
  // Say it at most once a minute: a full dict would otherwise flood the error log.
  if (err !== undefined && now - lastFlushError > 60) {
    lastFlushError = now;
    ngx.log(ngx.ERR, "autoscale: cannot store metrics in lua_shared_dict ", METRICS_DICT, " (", err, "): make it larger or lower metrics.max_series");
  }
  const statsd = s.config.metrics.statsd;
  if (statsd !== undefined && worker === 0 && now >= nextStatsd) {
    if (nextStatsd > 0) pushStatsd(s, now);
    nextStatsd = second + statsd.interval;
  }
}

// ---- Readers (admin server, timers) -------------------------------------------------------------

function workers(): number {
  return ngx.worker.count();
}

/** Every configured window of one series, keyed "10s", "60s", ..., with latency percentiles. */
export function windows(s: GatewayState, series: string, now: number): LuaTable<string, WindowFigures> {
  const dict = ngx.shared[METRICS_DICT]!;
  const out = new LuaTable<string, WindowFigures>();
  for (const span of s.config.metrics.windows) out.set(`${span}s`, readWindow(dict, series, now, span, workers(), true));
  return out;
}

function totalsJson(t: Totals): unknown {
  return {
    requests: t.requests,
    errors: t.errors,
    latencySum: t.latency,
    responses: { "1xx": t.c1, "2xx": t.c2, "3xx": t.c3, "4xx": t.c4, "5xx": t.c5 },
    connectFailures: t.connectFailures,
    timeouts: t.timeouts,
    bytesIn: t.bytesIn,
    bytesOut: t.bytesOut,
  };
}

function seriesStatus(s: GatewayState, series: string, now: number): { inflight: number; totals: unknown; windows: LuaTable<string, WindowFigures> } {
  const dict = ngx.shared[METRICS_DICT]!;
  return { inflight: readInflight(dict, series, workers()), totals: totalsJson(readTotals(dict, series)), windows: windows(s, series, now) };
}

export function routesStatus(s: GatewayState, now: number): LuaTable<string, unknown> {
  const routes = new LuaTable<string, unknown>();
  for (const r of s.routeList) {
    // Routes above metrics.max_series are counted (and shown) under _overflow only.
    if (r.counters.admitted === -1) continue;
    const st = seriesStatus(s, r.series, now);
    routes.set(r.name, { pool: r.config?.pool, inflight: st.inflight, totals: st.totals, windows: st.windows });
  }
  const over = seriesStatus(s, overflowRoute.series, now);
  routes.set(OVERFLOW, { inflight: over.inflight, totals: over.totals, windows: over.windows });
  return routes;
}

/** pool → address → figures (the `_overflow` entry holds the peers above metrics.max_series). */
export function peersStatus(s: GatewayState, now: number): LuaTable<string, unknown> {
  const pools = new LuaTable<string, unknown>();
  for (const name of s.config.poolNames) {
    const peers = new LuaTable<string, unknown>();
    for (const p of s.pools.get(name).peers) {
      if (p.counters.admitted !== -1) peers.set(p.address, seriesStatus(s, p.series, now));
    }
    peers.set(OVERFLOW, seriesStatus(s, peerSeries(name, OVERFLOW), now));
    pools.set(name, peers);
  }
  return pools;
}

/** Dict usage and the cardinality cap. */
export function dictStatus(s: GatewayState): { capacity: number; free: number; series: number; maxSeries: number } {
  const dict = ngx.shared[METRICS_DICT]!;
  return { capacity: dict.capacity(), free: dict.free_space(), series: admittedCount(dict), maxSeries: s.config.metrics.maxSeries };
}

function seriesFigures(s: GatewayState, kind: "route" | "peer", labels: string, series: string, now: number): SeriesFigures {
  const dict = ngx.shared[METRICS_DICT]!;
  return { kind, labels, totals: readTotals(dict, series), inflight: readInflight(dict, series, workers()), windows: windows(s, series, now) };
}

/** The Prometheus text exposition of every route and peer. */
export function prometheusText(s: GatewayState, now: number): string {
  const list: SeriesFigures[] = [];
  for (const r of s.routeList) {
    if (r.counters.admitted !== -1) list.push(seriesFigures(s, "route", `route="${escapeLabel(r.name)}"`, r.series, now));
  }
  list.push(seriesFigures(s, "route", `route="${OVERFLOW}"`, overflowRoute.series, now));
  for (const name of s.config.poolNames) {
    const pool = escapeLabel(name);
    for (const p of s.pools.get(name).peers) {
      if (p.counters.admitted !== -1) list.push(seriesFigures(s, "peer", `pool="${pool}",peer="${escapeLabel(p.address)}"`, p.series, now));
    }
    list.push(seriesFigures(s, "peer", `pool="${pool}",peer="${OVERFLOW}"`, peerSeries(name, OVERFLOW), now));
  }
  const names: string[] = [];
  for (const span of s.config.metrics.windows) names.push(`${span}s`);
  return renderPrometheus(list, names, dictStatus(s));
}

// ---- StatsD (worker 0, every metrics.statsd.interval seconds, from the flush timer) -------------

/** The last second whose latencies went out as StatsD timers. */
let statsdTimersThrough = -1;

/**
 * Timers cover the seconds from the one after the previous push through two seconds ago: each
 * worker flushes a second's buckets within the second after it, so by then every worker's are in
 * the dict, and no second is sent twice or skipped (reading the last second only lost the
 * latencies of workers that flush later in the second than worker 0 pushes).
 */
function statsdTimerSeconds(now: number, interval: number, retained: number): LuaMultiReturn<[number, number]> {
  const through = math.floor(now) - 2;
  let from = statsdTimersThrough < 0 ? through - interval + 1 : statsdTimersThrough + 1;
  if (from < through - retained + 1) from = through - retained + 1;
  return $multi(through, through - from + 1);
}

function statsdSeries(lines: string[], name: string, series: string, through: number, span: number, seen: LuaTable<string, Totals>): void {
  const dict = ngx.shared[METRICS_DICT]!;
  const totals = readTotals(dict, series);
  const hist: Histogram = new LuaTable();
  // readWindow reads the `span` whole seconds before `now`'s second.
  if (span > 0) readWindow(dict, series, through + 1, span, workers(), false, hist);
  seriesLines(lines, name, totals, statsdBefore.get(series), hist, readInflight(dict, series, workers()));
  seen.set(series, totals);
}

/** Sends what changed since the previous push (counters), the latencies of the seconds since the previous push (timers, two seconds behind) and in-flight gauges. */
export function pushStatsd(s: GatewayState, now: number): void {
  const conf = s.config.metrics.statsd;
  if (conf === undefined) return;
  const lines: string[] = [];
  const seen = new LuaTable<string, Totals>();
  const [through, span] = statsdTimerSeconds(now, conf.interval, s.bucketTtl - 3);
  for (const r of s.routeList) if (r.counters.admitted !== -1) statsdSeries(lines, `${conf.prefix}.route.${statsdSegment(r.name)}`, r.series, through, span, seen);
  for (const name of s.config.poolNames) {
    for (const p of s.pools.get(name).peers) if (p.counters.admitted !== -1) statsdSeries(lines, `${conf.prefix}.peer.${statsdSegment(name)}.${statsdSegment(p.address)}`, p.series, through, span, seen);
  }
  statsdBefore = seen;
  if (span > 0) statsdTimersThrough = through;
  const sock = ngx.socket.udp();
  const [ok, err] = sock.setpeername(conf.host, conf.port);
  if (!ok) {
    ngx.log(ngx.WARN, "autoscale: statsd ", conf.host, ":", conf.port, ": ", err);
    return;
  }
  for (const packet of packets(lines, 1400)) sock.send(packet);
  sock.close();
}
