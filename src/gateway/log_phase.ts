// log_by_lua: hands the finished request to each capability. Per-worker work only: nothing here
// takes a shared-dict lock.
import { PeerRuntime, getState } from "./state";
import { resolveRoute } from "./routing";
import { currentContext } from "./request_context";
import { countPeer, countRoute, countTries, inflightFinished } from "./metrics";
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
  let peer: PeerRuntime | undefined = ctx === undefined ? undefined : feedback(ctx, status, now);
  if (pool === undefined) return;
  if (peer === undefined) {
    const addr = ngx.var.upstream_addr;
    if (addr === undefined) return;
    peer = pool.byAddress.get(addr);
    if (peer === undefined) {
      // Several tries ("a:1, b:2"): each is counted for its peer.
      countTries(pool, route, addr);
      return;
    }
  }
  countPeer(s, peer, pool, route);
}
