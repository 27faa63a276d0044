// balancer_by_lua: picks the peer of a pool with smooth weighted round robin over weights the
// ticker adapts every second. A failed try is retried once on another peer.
import { get_last_failure, set_current_peer, set_more_tries } from "ngx.balancer";
import { pickSwrr } from "../balancer/swrr";
import { getState } from "./state";

export function balance(poolName: string): void {
  const s = getState();
  const pool = s === undefined ? undefined : s.pools.get(poolName);
  if (pool === undefined) {
    ngx.log(ngx.ERR, "autoscale: balancer for unknown pool ", poolName, " (not in the config)");
    return;
  }
  const [failure] = get_last_failure();
  if (failure === undefined && pool.balancePeers.length > 1) set_more_tries(1);
  const peer = pickSwrr(pool.balancePeers);
  if (peer === undefined) {
    ngx.log(ngx.ERR, "autoscale: pool ", poolName, " has no peer with a weight above 0");
    return;
  }
  const [ok, err] = set_current_peer(peer.host, peer.port);
  if (!ok) ngx.log(ngx.ERR, "autoscale: cannot set peer ", peer.host, ":", peer.port, ": ", err);
}
