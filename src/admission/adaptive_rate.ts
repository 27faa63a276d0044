// Adaptive rate: a route's allowed rate follows its backend's health. Each evaluation (the
// shell calls it from a timer, e.g. every second, with the window's error ratio and latency):
// under stress (error ratio or latency over target) the rate is multiplied by `decrease`, at most
// once per cooldown so one bad second is not punished repeatedly; when healthy it recovers by
// `increasePerSecond` x elapsed seconds (additive, gradual). Always within [minRate, maxRate].

export interface AdaptiveRate {
  rate: number;
  minRate: number;
  maxRate: number;
  errorRatioTarget: number;
  /** Seconds. */
  latencyTarget: number;
  decrease: number;
  increasePerSecond: number;
  cooldown: number;
  lastDecreaseAt: number;
  lastUpdate: number;
  /** Whether the last evaluation saw stress (status). */
  stressed: boolean;
}

export interface AdaptiveRateOptions {
  minRate: number;
  maxRate: number;
  errorRatioTarget: number;
  latencyTarget: number;
  decrease: number;
  increasePerSecond: number;
  cooldown: number;
}

/** Starts at maxRate: a healthy backend is not throttled. */
export function newAdaptiveRate(o: AdaptiveRateOptions, now: number): AdaptiveRate {
  return { rate: o.maxRate, minRate: o.minRate, maxRate: o.maxRate, errorRatioTarget: o.errorRatioTarget, latencyTarget: o.latencyTarget, decrease: o.decrease, increasePerSecond: o.increasePerSecond, cooldown: o.cooldown, lastDecreaseAt: -math.huge, lastUpdate: now, stressed: false };
}

/** One evaluation; returns the new allowed rate (requests per second). */
export function next(s: AdaptiveRate, errorRatio: number, latency: number, now: number): number {
  const elapsed = now > s.lastUpdate ? now - s.lastUpdate : 0;
  s.lastUpdate = now;
  s.stressed = errorRatio > s.errorRatioTarget || latency > s.latencyTarget;
  if (s.stressed) {
    if (now - s.lastDecreaseAt >= s.cooldown) {
      s.rate = math.max(s.minRate, s.rate * s.decrease);
      s.lastDecreaseAt = now;
    }
  } else {
    s.rate = math.min(s.maxRate, s.rate + s.increasePerSecond * elapsed);
  }
  return s.rate;
}
