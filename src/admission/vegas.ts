// Vegas concurrency limit (Netflix, after TCP Vegas): estimate the queue at the backend as
// limit x (1 - rttNoLoad / rtt) and keep it between alpha = 3 log10(limit) and
// beta = 6 log10(limit): grow fast while there is (almost) no queue, by log10(limit) while it is
// small, shrink by log10(limit) when it is long or on a drop. rttNoLoad is the smallest RTT
// seen, forgotten every probeMultiplier x limit samples so it follows backend changes.
import { LimitBase, moveLimit } from "./limit_common";

export interface VegasLimit extends LimitBase {
  kind: "vegas";
  rttNoLoad: number;
  probeMultiplier: number;
  samplesUntilProbe: number;
}

export interface VegasOptions {
  initialLimit: number;
  minLimit: number;
  maxLimit: number;
  smoothing: number;
  probeMultiplier: number;
}

const LN10 = math.log(10);

function log10(x: number): number {
  return x > 1 ? math.log(x) / LN10 : 0;
}

export function newLimit(o: VegasOptions): VegasLimit {
  return {
    kind: "vegas",
    limit: o.initialLimit,
    minLimit: o.minLimit,
    maxLimit: o.maxLimit,
    smoothing: o.smoothing,
    rttNoLoad: 0,
    probeMultiplier: o.probeMultiplier,
    samplesUntilProbe: o.probeMultiplier * o.initialLimit,
  };
}

export function onSample(v: VegasLimit, _startTime: number, rtt: number, inflight: number, didDrop: boolean): number {
  v.samplesUntilProbe = v.samplesUntilProbe - 1;
  if (v.samplesUntilProbe <= 0) {
    v.samplesUntilProbe = v.probeMultiplier * v.limit;
    v.rttNoLoad = rtt;
    return v.limit;
  }
  if (v.rttNoLoad === 0 || rtt < v.rttNoLoad) {
    v.rttNoLoad = rtt;
    return v.limit;
  }
  const step = math.max(1, log10(v.limit));
  if (didDrop) return moveLimit(v, v.limit - step);
  if (inflight * 2 < v.limit) return v.limit;
  const queue = math.ceil(v.limit * (1 - v.rttNoLoad / rtt));
  const alpha = 3 * step;
  const beta = 6 * step;
  if (queue <= step) return moveLimit(v, v.limit + beta);
  if (queue < alpha) return moveLimit(v, v.limit + step);
  if (queue > beta) return moveLimit(v, v.limit - step);
  return v.limit;
}
