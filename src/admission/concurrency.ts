// The concurrency-limit family behind one interface (Netflix Limit): onSample(state, startTime,
// rtt, inflight, didDrop) and the current `state.limit`. The pool's limiter and the shedding
// policy use only these; the algorithms are interchangeable by configuration.
import * as gradient from "./gradient";
import * as aimd from "./aimd";
import * as vegas from "./vegas";

export type ConcurrencyLimit = gradient.GradientLimit | aimd.AimdLimit | vegas.VegasLimit;

/** Feeds one finished request: start time and RTT in seconds, in-flight when it started, and whether it was dropped/failed by overload. */
export function onSample(l: ConcurrencyLimit, startTime: number, rtt: number, inflight: number, didDrop: boolean): number {
  if (l.kind === "gradient") return gradient.onSample(l, startTime, rtt, inflight, didDrop);
  if (l.kind === "aimd") return aimd.onSample(l, startTime, rtt, inflight, didDrop);
  return vegas.onSample(l, startTime, rtt, inflight, didDrop);
}

/** Whole requests allowed in flight now. */
export function currentLimit(l: ConcurrencyLimit): number {
  return math.floor(l.limit);
}

/** The unloaded RTT estimate in seconds (status and metrics); 0 for AIMD, which has none. */
export function minRtt(l: ConcurrencyLimit): number {
  if (l.kind === "gradient") return l.minRtt;
  if (l.kind === "vegas") return l.rttNoLoad;
  return 0;
}
