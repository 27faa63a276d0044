// Measured forecast errors: the last `size` errors (actual - forecast, one per minute) in a ring,
// and their empirical quantile. A margin taken from it follows how wrong the forecast has
// recently been at its own horizon, instead of a fixed multiple of a typical error: wide on a
// sparse, bursty pool, narrow on a smooth one. Allocates nothing once the ring is full.

export interface ErrorWindow {
  /** Ring of errors, slots 1..size. */
  values: LuaTable<number, number>;
  /** Sorted copy, refilled on each quantile (reused). */
  scratch: number[];
  size: number;
  count: number;
  /** Slot the next error goes to. */
  next: number;
  /** Sum of the kept errors' absolute values. */
  absSum: number;
}

/** Fewer errors than this give no quantile: too little evidence for a margin. */
export const MIN_ERRORS = 5;

export function newErrorWindow(size: number): ErrorWindow {
  return { values: new LuaTable<number, number>(), scratch: [], size, count: 0, next: 1, absSum: 0 };
}

export function pushError(w: ErrorWindow, e: number): void {
  if (w.count === w.size) w.absSum -= math.abs(w.values.get(w.next));
  w.absSum += math.abs(e);
  w.values.set(w.next, e);
  w.next = (w.next % w.size) + 1;
  if (w.count < w.size) w.count += 1;
}

/**
 * The q-quantile (0 < q <= 1) of the kept errors by nearest rank (the smallest error with at
 * least q of the errors at or below it), or undefined with fewer than MIN_ERRORS errors.
 */
export function errorQuantile(w: ErrorWindow, q: number): number | undefined {
  const n = w.count;
  if (n < MIN_ERRORS) return undefined;
  const sorted = w.scratch;
  for (const i of $range(1, n)) sorted[i - 1] = w.values.get(i);
  table.sort(sorted);
  let rank = math.ceil(q * n - 1e-9);
  if (rank < 1) rank = 1;
  if (rank > n) rank = n;
  return sorted[rank - 1];
}

/** The mean absolute error of the kept errors (0 without any). */
export function meanAbsError(w: ErrorWindow): number {
  return w.count > 0 ? w.absSum / w.count : 0;
}

export function clearErrors(w: ErrorWindow): void {
  w.count = 0;
  w.next = 1;
  w.absSum = 0;
}
