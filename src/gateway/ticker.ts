// Runs every second in every worker: flushes the worker's counters into the shared dict, then
// recomputes the adaptive weights of its pools from the shortest metrics window (every worker
// reads the same buckets, so all workers arrive at the same weights within a second).
import { latencyWeights, PeerLoad } from "../balancer/latency_weights";
import { flushCounters, readWindow } from "../metrics/counters";
import { GatewayState, METRICS_DICT, PoolRuntime } from "./state";

let lastFlushError = 0;

function flushAll(s: GatewayState, now: number): void {
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

export function adaptWeights(pool: PoolRuntime, span: number, now: number): void {
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

export function tick(s: GatewayState, now: number): void {
  flushAll(s, now);
  const span = s.config.metrics.windows[0];
  for (const name of s.config.poolNames) adaptWeights(s.pools.get(name), span, now);
}
