// Weights that follow observed load: a peer's share is proportional to its configured weight
// divided by its mean latency over the window, and shrinks with its error ratio. A timer
// recomputes them every second from the metrics windows (the walking-skeleton balancer).

export interface PeerLoad {
  /** Configured weight (0 = no traffic). */
  weight: number;
  requests: number;
  errors: number;
  /** Mean latency in seconds, undefined without requests in the window. */
  meanLatency: number | undefined;
}

/** Weights are scaled so the best peer gets this value. */
export const MAX_WEIGHT = 1000;
/** Every live peer keeps at least this weight, so a slow peer is still measured and can recover. */
export const MIN_WEIGHT = 10;
/** Latencies below this are treated as equal: sub-millisecond noise must not swing weights. */
const LATENCY_FLOOR = 0.001;

/**
 * Computes integer weights for the peers of a pool. Peers without requests in the window are
 * scored with the pool's mean latency, so a new or idle peer gets an average share.
 */
export function latencyWeights(peers: PeerLoad[]): number[] {
  let latencySum = 0;
  let measured = 0;
  for (const p of peers) {
    if (p.meanLatency !== undefined) {
      latencySum += p.meanLatency;
      measured++;
    }
  }
  const fallback = measured > 0 ? latencySum / measured : LATENCY_FLOOR;
  const scores: number[] = [];
  let best = 0;
  for (const p of peers) {
    let score = 0;
    if (p.weight > 0) {
      const latency = math.max(p.meanLatency ?? fallback, LATENCY_FLOOR);
      const success = p.requests > 0 ? 1 - p.errors / p.requests : 1;
      score = (p.weight / latency) * success * success;
    }
    scores.push(score);
    if (score > best) best = score;
  }
  const weights: number[] = [];
  for (let i = 0; i < peers.length; i++) {
    if (peers[i].weight <= 0) weights.push(0);
    else if (best <= 0) weights.push(MIN_WEIGHT);
    else weights.push(math.max(MIN_WEIGHT, math.floor((MAX_WEIGHT * scores[i]) / best + 0.5)));
  }
  return weights;
}
