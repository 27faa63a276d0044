// log_by_lua: hands the finished request to each capability. Per-worker work only: nothing here
// takes a shared-dict lock.
import { PeerRuntime, PoolRuntime, getState } from "./state";
import { resolveRoute } from "./routing";
import { currentContext } from "./request_context";
import { countPeer, countRoute } from "./metrics";
import { feedback } from "./balancing";
import { finish as finishAdmission } from "./admission";

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

export function log(routeName?: string): void {
  const s = getState();
  if (s === undefined) return;
  const ctx = currentContext();
  const route = (ctx !== undefined ? ctx.route : undefined) ?? resolveRoute(s, routeName);
  const status = ngx.status;
  const now = ngx.now();
  countRoute(route, status, now - ngx.req.start_time());
  if (ctx !== undefined) finishAdmission(ctx);

  // The balancer's pick: its outcome feeds the balancer, and it names the peer without
  // reading and parsing $upstream_* (the fallback below, for requests balanced elsewhere).
  const picked = ctx === undefined ? undefined : feedback(ctx, status, now);
  if (picked !== undefined) return countPeer(picked, now - ctx!.pickedAt!, status >= 500);
  const pool = route.pool;
  if (pool === undefined) return;
  const addr = ngx.var.upstream_addr;
  if (addr === undefined) return;
  let peer: PeerRuntime | undefined = pool.byAddress.get(addr);
  if (peer === undefined) {
    peer = lastPeer(pool, addr);
    if (peer === undefined) return;
  }
  const rt = ngx.var.upstream_response_time;
  const us = ngx.var.upstream_status;
  const code = us === undefined ? undefined : lastNumber(us);
  // No status at all means the peer never answered (connect error or timeout).
  countPeer(peer, rt === undefined ? 0 : lastNumber(rt) ?? 0, code === undefined || code >= 500);
}
