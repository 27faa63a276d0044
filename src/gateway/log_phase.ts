// log_by_lua: hands the finished request to each capability. Per-worker work only: nothing here
// takes a shared-dict lock.
import { PeerRuntime, getState } from "./state";
import { resolveRoute } from "./routing";
import { currentContext } from "./request_context";
import { countBalancedTry, countPeer, countRoute, countTries, inflightFinished } from "./metrics";
import { feedback } from "./balancing";
import { finish as finishAdmission } from "./admission";

export function log(routeName?: string): void {
  const s = getState();
  if (s === undefined) return;
  const ctx = currentContext();
  const route = (ctx !== undefined ? ctx.route : undefined) ?? resolveRoute(s, routeName);
  const status = ngx.status;
  const now = ngx.now();
  countRoute(s, route, status, now - ngx.req.start_time());
  if (ctx !== undefined) {
    inflightFinished(ctx);
    finishAdmission(ctx);
  }

  // The balancer's pick: its outcome feeds the balancer, and it names the peer without
  // reading $upstream_addr (the fallback below, for requests balanced elsewhere).
  const pool = route.pool;
  if (pool === undefined) return;
  if (ctx !== undefined && ctx.pick !== undefined) {
    const rtt = now - ctx.pickedAt!;
    const peer = feedback(ctx, status, now);
    if (peer === undefined) return;
    // One try whose answer is the client's: the pick already says who, when and how it went, so
    // no $upstream_* variable is read. Retries and nginx's own 502/504/499 take the long way.
    if (ctx.tries === 1 && status >= 100 && status !== 502 && status !== 504 && status !== 499) countBalancedTry(s, peer, route, status, rtt);
    else countPeer(s, peer, pool, route);
    return;
  }
  const addr = ngx.var.upstream_addr;
  if (addr === undefined) return;
  const peer: PeerRuntime | undefined = pool.byAddress.get(addr);
  // Several tries ("a:1, b:2"): each is counted for its peer.
  if (peer === undefined) countTries(pool, route, addr);
  else countPeer(s, peer, pool, route);
}
