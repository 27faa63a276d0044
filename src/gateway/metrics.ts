// The metrics capability in the gateway: per-worker counting in the log phase, the 1 s flush
// into the shared dict, and the figures of the status page.
import { Counters, flushCounters, readWindow, WindowFigures } from "../metrics/counters";
import { GatewayState, METRICS_DICT, PeerRuntime, RouteRuntime } from "./state";

/** Counts a finished request for its route. */
export function countRoute(route: RouteRuntime, status: number, latency: number): void {
  const c: Counters = route.counters;
  c.requests += 1;
  c.latency += latency;
  if (status >= 500) c.errors += 1;
}

/** Counts a finished try for the peer that served it; `failed`: connect error, timeout or 5xx. */
export function countPeer(peer: PeerRuntime, latency: number, failed: boolean): void {
  const c = peer.counters;
  c.requests += 1;
  c.latency += latency;
  if (failed) c.errors += 1;
}

let lastFlushError = 0;

/** Moves every worker-local counter into the shared dict's bucket of this second. */
export function flush(s: GatewayState, now: number): void {
  const dict = ngx.shared[METRICS_DICT]!;
  const second = math.floor(now);
  let err: string | undefined;
  for (const r of s.routeList) err = flushCounters(dict, r.series, r.counters, second, s.bucketTtl) ?? err;
  for (const name of s.config.poolNames) {
    for (const p of s.pools.get(name).peers) err = flushCounters(dict, p.series, p.counters, second, s.bucketTtl) ?? err;
  }
  // Say it at most once a minute: a full dict would otherwise flood the error log.
  if (err !== undefined && now - lastFlushError > 60) {
    lastFlushError = now;
    ngx.log(ngx.ERR, "autoscale: cannot store metrics in lua_shared_dict ", METRICS_DICT, " (", err, "): make it larger");
  }
}

/** Every configured window of one series, keyed "10s", "60s", ... */
export function windows(s: GatewayState, series: string, now: number): LuaTable<string, WindowFigures> {
  const dict = ngx.shared[METRICS_DICT]!;
  const out = new LuaTable<string, WindowFigures>();
  for (const span of s.config.metrics.windows) out.set(`${span}s`, readWindow(dict, series, now, span));
  return out;
}

export function routesStatus(s: GatewayState, now: number): LuaTable<string, unknown> {
  const routes = new LuaTable<string, unknown>();
  for (const r of s.routeList) routes.set(r.name, { pool: r.config?.pool, windows: windows(s, r.series, now) });
  return routes;
}
