// log_by_lua: hands the finished request to each capability. Per-worker work only: nothing here
// takes a shared-dict lock.
import { PeerRuntime, getState } from "./state";
import { resolveRoute } from "./routing";
import { currentContext } from "./request_context";
import { countPeer, countRoute, countTries, inflightFinished } from "./metrics";
import { finish as finishAdmission } from "./admission";

export function log(routeName?: string): void {
  const s = getState();
  if (s === undefined) return;
  const ctx = currentContext();
  const route = ctx !== undefined ? ctx.route : resolveRoute(s, routeName);
  if (ctx !== undefined) inflightFinished(ctx);
  countRoute(s, route, ngx.status, ngx.now() - ngx.req.start_time());
  if (ctx !== undefined) finishAdmission(ctx);

  const pool = route.pool;
  if (pool === undefined) return;
  const addr = ngx.var.upstream_addr;
  if (addr === undefined) return;
  const peer: PeerRuntime | undefined = pool.byAddress.get(addr);
  if (peer !== undefined) {
    countPeer(s, peer, route);
  } else {
    // Several tries ("a:1, b:2"): each is counted for its peer.
    countTries(pool, route, addr);
  }
}
