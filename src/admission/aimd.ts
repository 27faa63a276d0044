// AIMD concurrency limit (Netflix): +1 per sample while the limit is in use and requests are
// healthy; x backoffRatio on a drop or an RTT over the timeout.
import { LimitBase, moveLimit } from "./limit_common";

export interface AimdLimit extends LimitBase {
  kind: "aimd";
  backoffRatio: number;
  /** An RTT above this (seconds) counts as a drop. */
  timeout: number;
}

export interface AimdOptions {
  initialLimit: number;
  minLimit: number;
  maxLimit: number;
  backoffRatio: number;
  timeout: number;
}

export function newLimit(o: AimdOptions): AimdLimit {
  return { kind: "aimd", limit: o.initialLimit, minLimit: o.minLimit, maxLimit: o.maxLimit, smoothing: 1, backoffRatio: o.backoffRatio, timeout: o.timeout };
}

export function onSample(a: AimdLimit, _startTime: number, rtt: number, inflight: number, didDrop: boolean): number {
  if (didDrop || rtt > a.timeout) return moveLimit(a, a.limit * a.backoffRatio);
  if (inflight * 2 >= a.limit) return moveLimit(a, a.limit + 1);
  return a.limit;
}
