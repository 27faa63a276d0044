// log_by_lua: counts the request for its route and for the upstream peer that served it.
// Per-worker table updates only; the ticker flushes them to the shared dict every second.
import { PeerRuntime, PoolRuntime, RouteRuntime, getState } from "./state";
import { matchRoute } from "../metrics/route_match";

/** $upstream_addr lists every try ("a:1, b:2" or "a:1 : b:2" after an internal redirect): the last one answered. */
function lastPeer(pool: PoolRuntime, addr: string): PeerRuntime | undefined {
  const last = string.match(addr, "([^%s,:]+:%d+)%s*$")[0];
  return last === undefined ? undefined : pool.byAddress.get(last);
}

/** The last number of a list such as "0.010, 0.012" (or the only one). */
function lastNumber(list: string): number | undefined {
  const n = tonumber(list);
  if (n !== undefined) return n;
  return tonumber(string.match(list, "([%d%.]+)%s*$")[0]);
}

/**
 * Counts this request. `routeName` names the route when the location serves exactly one
 * (cheapest); without it the request path is matched against the config's routes.
 */
export function log(routeName?: string): void {
  const s = getState();
  if (s === undefined) return;
  let route: RouteRuntime | undefined;
  if (routeName !== undefined) route = s.routes.get(routeName);
  if (route === undefined) {
    const matched = matchRoute(s.matcher, ngx.var.uri);
    route = matched === undefined ? s.unmatched : s.routes.get(matched.name);
  }
  const status = ngx.status;
  const c = route.counters;
  c.requests += 1;
  c.latency += ngx.now() - ngx.req.start_time();
  if (status >= 500) c.errors += 1;

  const pool = route.pool;
  if (pool === undefined) return;
  const addr = ngx.var.upstream_addr;
  if (addr === undefined) return;
  let peer: PeerRuntime | undefined = pool.byAddress.get(addr);
  if (peer === undefined) {
    peer = lastPeer(pool, addr);
    if (peer === undefined) return;
  }
  const pc = peer.counters;
  pc.requests += 1;
  const rt = ngx.var.upstream_response_time;
  if (rt !== undefined) pc.latency += lastNumber(rt) ?? 0;
  const us = ngx.var.upstream_status;
  const code = us === undefined ? undefined : lastNumber(us);
  // No status at all means the peer never answered (connect error or timeout).
  if (code === undefined || code >= 500) pc.errors += 1;
}
