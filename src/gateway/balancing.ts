// The balancing capability in the gateway: the balancer phase, log-phase feedback, and the
// per-second weight update. Weights follow each peer's mean latency and errors over the shortest
// metrics window; every worker reads the same buckets, so all agree within a second.
import { get_last_failure, set_current_peer, set_more_tries } from "ngx.balancer";
import { latencyWeights, PeerLoad } from "../balancer/latency_weights";
import { pickSwrr } from "../balancer/swrr";
import { readWindow } from "../metrics/counters";
import { GatewayState, METRICS_DICT, PoolRuntime, getState } from "./state";
import { peerTryStarted, windows } from "./metrics";
import { currentContext } from "./request_context";

/** balancer_by_lua: picks the peer; a failed try is retried once on another peer. */
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
  else peerTryStarted(s!, currentContext(), peer);
}

function adaptWeights(pool: PoolRuntime, span: number, now: number): void {
  if (pool.config.balancer.algorithm === "round_robin") return;
  const dict = ngx.shared[METRICS_DICT]!;
  const loads: PeerLoad[] = [];
  for (const p of pool.peers) {
    const w = readWindow(dict, p.series, now, span);
    loads.push({ weight: p.configuredWeight, requests: w.requests, errors: w.errors, meanLatency: w.meanLatency });
  }
  const weights = latencyWeights(loads);
  for (let i = 0; i < pool.peers.length; i++) pool.peers[i].balance.weight = weights[i];
}

/** Every second, after the metrics flush. */
export function tick(s: GatewayState, now: number): void {
  const span = s.config.metrics.windows[0];
  for (const name of s.config.poolNames) adaptWeights(s.pools.get(name), span, now);
}

export function poolStatus(s: GatewayState, pool: PoolRuntime, now: number): { algorithm: string; peers: unknown[] } {
  const peers: unknown[] = [];
  for (const p of pool.peers) {
    peers.push({ address: p.address, configured_weight: p.configuredWeight, weight: p.balance.weight, windows: windows(s, p.series, now) });
  }
  return { algorithm: pool.config.balancer.algorithm, peers };
}
