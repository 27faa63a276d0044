// log_by_lua: hands the finished request to each capability (metrics unless metrics.enabled is
// false, the balancer's feedback, admission). Per-worker work only: nothing here takes a
// shared-dict lock.
import { GatewayState, PeerRuntime, RouteRuntime, getState } from "./state";
import { resolveRoute } from "./routing";
import { RequestContext, takeContext } from "./request_context";
import { countBalancedTry, countPeer, countRoute, countTries, inflightFinished } from "./metrics";
import { feedback } from "./balancing";
import { finish as finishAdmission } from "./admission";

export function log(routeName?: string): void {
  const s = getState();
  if (s === undefined) return;
  const ctx = takeContext();
  const route = (ctx !== undefined ? ctx.route : undefined) ?? resolveRoute(s, routeName);
  const status = ngx.status;
  const now = ngx.now();
  const counting = s.config.metrics.enabled;
  if (counting) countRoute(s, route, status, now - ngx.req.start_time());
  if (ctx === undefined) {
    if (counting) countUnbalancedTry(s, route);
    return;
  }
  if (counting) inflightFinished(ctx);
  finishAdmission(ctx, status, now);
  if (ctx.pick !== undefined) countBalancedTries(s, ctx, route, status, now, counting);
  else if (counting) countUnbalancedTry(s, route);
}

/**
 * The bundle's balancer made the request's tries: its outcome feeds the balancer, and the pick
 * names the peer without reading $upstream_addr.
 */
function countBalancedTries(s: GatewayState, ctx: RequestContext, route: RouteRuntime, status: number, now: number, counting: boolean): void {
  const rtt = now - ctx.pickedAt!;
  const peer = feedback(ctx, status, now);
  const pool = route.pool;
  if (peer === undefined || pool === undefined || !counting) return;
  // One try whose answer is the client's: the pick already says who, when and how it went, so
  // no $upstream_* variable is read. Retries and nginx's own 502/504/499 take the long way.
  if (ctx.tries === 1 && status >= 100 && status !== 502 && status !== 504 && status !== 499) countBalancedTry(s, peer, route, status, rtt);
  else countPeer(s, peer, pool, route);
}

/** Requests balanced by nginx itself (or not proxied): the peer is $upstream_addr. */
function countUnbalancedTry(s: GatewayState, route: RouteRuntime): void {
  const pool = route.pool;
  if (pool === undefined) return;
  const addr = ngx.var.upstream_addr;
  if (addr === undefined) return;
  const peer: PeerRuntime | undefined = pool.byAddress.get(addr);
  // Several tries ("a:1, b:2"): each is counted for its peer.
  if (peer === undefined) countTries(pool, route, addr);
  else countPeer(s, peer, pool, route);
}
