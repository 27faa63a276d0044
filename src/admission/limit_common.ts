// Shared pieces of the concurrency-limit family (Netflix Limit habit: one onSample, one value).

/** Fields every concurrency limit has; `limit` is the current value (fractional; compare in-flight against it). */
export interface LimitBase {
  limit: number;
  minLimit: number;
  maxLimit: number;
  /** 0 < smoothing <= 1: the share of a new estimate that moves the limit (1 = take it as is). */
  smoothing: number;
}

export function clampLimit(l: LimitBase, value: number): number {
  if (value < l.minLimit) return l.minLimit;
  if (value > l.maxLimit) return l.maxLimit;
  return value;
}

/** Moves the limit towards `target` by the smoothing share, within bounds. */
export function moveLimit(l: LimitBase, target: number): number {
  l.limit = clampLimit(l, l.limit + l.smoothing * (clampLimit(l, target) - l.limit));
  return l.limit;
}
