// Slow start (Envoy's curve): a new or recovered peer gets a growing share of its weight,
// factor = max(min_weight, (t / window)^(1 / aggression)) for 0 <= t < window, then 1.
// aggression 1 is a straight ramp; above 1 the share rises fast early, below 1 it stays low
// longer. min_weight keeps the peer from being starved at t = 0 (it must get some traffic to
// warm up at all).

export interface SlowStartOptions {
  /** Seconds over which the share ramps up; 0 disables slow start. */
  window: number;
  aggression: number;
  /** The smallest factor, in (0, 1]. */
  min_weight: number;
}

export const SLOW_START_DEFAULTS: SlowStartOptions = { window: 30, aggression: 1, min_weight: 0.1 };

/** The weight multiplier `elapsed` seconds after the peer started serving. */
export function factor(elapsed: number, options: SlowStartOptions): number {
  const window = options.window;
  if (window <= 0 || elapsed >= window) return 1;
  if (elapsed <= 0) return options.min_weight;
  let f = elapsed / window;
  if (options.aggression !== 1) f = math.pow(f, 1 / options.aggression);
  return f < options.min_weight ? options.min_weight : f;
}

/** True while the peer is still ramping (the shell keeps re-syncing the algorithm until then). */
export function ramping(elapsed: number, options: SlowStartOptions): boolean {
  return options.window > 0 && elapsed < options.window;
}
