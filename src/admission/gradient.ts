// Gradient concurrency limit (Envoy adaptive concurrency):
//   gradient = clamp(minRTT x (1 + buffer) / sampleRTT, 0.5, 2)   (buffer 0.25 by default)
//   limit'   = gradient x limit + sqrt(limit)                       (headroom that lets it probe)
// sampleRTT is the mean RTT of one sample interval (Envoy takes a percentile; the mean keeps the
// per-request work to two additions). minRTT is measured, and re-measured every minRttInterval
// seconds, by pinning the limit to minLimit for minRttSamples requests (so queues drain and the
// backend's unloaded latency shows) and taking the mean over requests that started after the
// pin (earlier ones were admitted under the old limit); the limit is then restored.
// Sample times come from the samples themselves (startTime + rtt): no clock here.
import { LimitBase, moveLimit } from "./limit_common";

export interface GradientLimit extends LimitBase {
  kind: "gradient";
  buffer: number;
  sampleInterval: number;
  minRttInterval: number;
  minRttSamples: number;
  /** Unloaded latency in seconds; 0 until first measured. */
  minRtt: number;
  /** Mean RTT of the last finished interval (status/metrics). */
  sampleRtt: number;
  windowStart: number;
  windowSum: number;
  windowCount: number;
  windowMaxInflight: number;
  windowDropped: boolean;
  /** True while minRTT is being measured (limit pinned to minLimit). */
  measuring: boolean;
  measureSum: number;
  measureCount: number;
  /** Samples of requests that started before this are left out of the measurement. */
  measureStart: number;
  savedLimit: number;
  nextMinRttAt: number;
}

export interface GradientOptions {
  initialLimit: number;
  minLimit: number;
  maxLimit: number;
  smoothing: number;
  buffer: number;
  sampleInterval: number;
  minRttInterval: number;
  minRttSamples: number;
}

export function newLimit(o: GradientOptions): GradientLimit {
  return {
    kind: "gradient",
    limit: o.initialLimit,
    minLimit: o.minLimit,
    maxLimit: o.maxLimit,
    smoothing: o.smoothing,
    buffer: o.buffer,
    sampleInterval: o.sampleInterval,
    minRttInterval: o.minRttInterval,
    minRttSamples: o.minRttSamples,
    minRtt: 0,
    sampleRtt: 0,
    windowStart: -1,
    windowSum: 0,
    windowCount: 0,
    windowMaxInflight: 0,
    windowDropped: false,
    measuring: false,
    measureSum: 0,
    measureCount: 0,
    measureStart: 0,
    savedLimit: o.initialLimit,
    nextMinRttAt: 0,
  };
}

function startMeasuring(g: GradientLimit, now: number): void {
  g.measuring = true;
  g.measureStart = now;
  g.measureSum = 0;
  g.measureCount = 0;
  g.savedLimit = g.limit;
  g.limit = g.minLimit;
}

/** Feeds one finished request (times in seconds). Returns the current limit. */
export function onSample(g: GradientLimit, startTime: number, rtt: number, inflight: number, didDrop: boolean): number {
  const now = startTime + rtt;
  if (g.measuring) {
    // Requests admitted under the old limit still queue behind each other: not unloaded RTT.
    if (!didDrop && startTime >= g.measureStart) {
      g.measureSum = g.measureSum + rtt;
      g.measureCount = g.measureCount + 1;
    }
    if (g.measureCount >= g.minRttSamples) {
      g.minRtt = g.measureSum / g.measureCount;
      g.measuring = false;
      g.limit = g.savedLimit;
      g.nextMinRttAt = now + g.minRttInterval;
      g.windowStart = now;
      g.windowSum = 0;
      g.windowCount = 0;
      g.windowMaxInflight = 0;
      g.windowDropped = false;
    }
    return g.limit;
  }
  if (g.minRtt === 0 || now >= g.nextMinRttAt) {
    startMeasuring(g, now);
    return g.limit;
  }
  if (g.windowStart < 0) g.windowStart = now;
  g.windowSum = g.windowSum + rtt;
  g.windowCount = g.windowCount + 1;
  if (inflight > g.windowMaxInflight) g.windowMaxInflight = inflight;
  if (didDrop) g.windowDropped = true;
  if (now - g.windowStart < g.sampleInterval) return g.limit;

  const sample = g.windowSum / g.windowCount;
  g.sampleRtt = sample;
  let gradient = g.windowDropped ? 0.5 : (g.minRtt * (1 + g.buffer)) / sample;
  if (gradient < 0.5) gradient = 0.5;
  else if (gradient > 2) gradient = 2;
  // Not growing while the limit is not in use: a quiet route would otherwise inflate it.
  const appLimited = g.windowMaxInflight * 2 < g.limit;
  if (!(gradient >= 1 && appLimited)) moveLimit(g, gradient * g.limit + math.sqrt(g.limit));
  g.windowStart = now;
  g.windowSum = 0;
  g.windowCount = 0;
  g.windowMaxInflight = 0;
  g.windowDropped = false;
  return g.limit;
}
