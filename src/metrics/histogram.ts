// Log-linear latency histogram: two significant decimal digits per decade.
//
// A latency is taken in whole microseconds. Values up to 100 us share bucket 1. Above, each
// decade (10^k, 10^(k+1)] is cut into 90 equal buckets (sub * 10^(k-1), (sub+1) * 10^(k-1)],
// sub = 10..99, for k = 2..8 (100 us to 1000 s); longer values share the overflow bucket.
// A bucket is reported as its midpoint: the width of a bucket is at most a tenth of its lower
// bound, so the relative error of a reported value is at most 5 % for any value above 100 us.
// Buckets are closed on the right, as Prometheus' `le`: every round latency (10 ms, 0.25 s, 1 s)
// is an upper bound, and the Prometheus buckets below are unions of whole buckets.
// Pure: no ngx.

/** Bucket of values from 0 to 100 us. */
export const FIRST_BUCKET = 1;
/** Bucket of values above 1000 s. */
export const OVERFLOW_BUCKET = 2 + 7 * 90;
export const BUCKET_COUNT = OVERFLOW_BUCKET;

/** 10^i for i = 0..10, exact doubles. */
const POW10: number[] = [];
for (const i of $range(0, 10)) POW10[i] = 10 ** i;

/**
 * The bucket of a latency in seconds. Hot path: no allocation and no loop (a loop inside the
 * log phase's call tree stops LuaJIT from compiling the phase as one trace: it runs interpreted).
 */
export function bucketOf(seconds: number): number {
  const us = math.floor(seconds * 1e6 + 0.5);
  if (us <= 100) return FIRST_BUCKET;
  // k: the decade (10^k, 10^(k+1)] the value falls in.
  let k: number;
  if (us <= 1e3) k = 2;
  else if (us <= 1e4) k = 3;
  else if (us <= 1e5) k = 4;
  else if (us <= 1e6) k = 5;
  else if (us <= 1e7) k = 6;
  else if (us <= 1e8) k = 7;
  else if (us <= 1e9) k = 8;
  else return OVERFLOW_BUCKET;
  const sub = math.ceil(us / POW10[k - 1]) - 1;
  return 2 + (k - 2) * 90 + (sub - 10);
}

/** Lower (exclusive) and upper (inclusive) bound of a bucket, in seconds. */
export function bucketBounds(b: number): LuaMultiReturn<[number, number]> {
  if (b <= FIRST_BUCKET) return $multi(0, 100e-6);
  if (b >= OVERFLOW_BUCKET) return $multi(1000, math.huge);
  const k = math.floor((b - 2) / 90) + 2;
  const sub = (b - 2) % 90 + 10;
  const unit = POW10[k - 1];
  return $multi((sub * unit) / 1e6, ((sub + 1) * unit) / 1e6);
}

/** The value a bucket stands for: its midpoint (50 us for the first, 1000 s for the overflow). */
export function bucketValue(b: number): number {
  if (b >= OVERFLOW_BUCKET) return 1000;
  const [lo, hi] = bucketBounds(b);
  return (lo + hi) / 2;
}

/** Sparse counts: bucket → count (buckets without samples are absent). */
export type Histogram = LuaTable<number, number>;

/** Adds `from` into `into`. */
export function mergeInto(into: Histogram, from: Histogram): void {
  for (const [b, n] of from) into.set(b, (into.get(b) ?? 0) + n);
}

export interface Percentiles {
  p50: number | undefined;
  p90: number | undefined;
  p99: number | undefined;
}

/**
 * Nearest-rank percentiles (the value below which q of the samples lie) of a histogram holding
 * `total` samples; undefined without samples.
 */
export function percentiles(h: Histogram, total: number): Percentiles {
  if (total <= 0) return { p50: undefined, p90: undefined, p99: undefined };
  const r50 = math.max(1, math.ceil(total * 0.5 - 1e-9));
  const r90 = math.max(1, math.ceil(total * 0.9 - 1e-9));
  const r99 = math.max(1, math.ceil(total * 0.99 - 1e-9));
  let p50: number | undefined;
  let p90: number | undefined;
  let p99: number | undefined;
  let seen = 0;
  for (const b of $range(FIRST_BUCKET, OVERFLOW_BUCKET)) {
    const n = h.get(b);
    if (n !== undefined && n > 0) {
      seen += n;
      if (p50 === undefined && seen >= r50) p50 = bucketValue(b);
      if (p90 === undefined && seen >= r90) p90 = bucketValue(b);
      if (seen >= r99) {
        p99 = bucketValue(b);
        break;
      }
    }
  }
  return { p50, p90, p99 };
}

/** "b:n,b:n" (no trailing comma), for a shared-dict value. */
export function encode(h: Histogram): string {
  const parts: string[] = [];
  for (const [b, n] of h) {
    if (n > 0) parts.push(`${b}:${n}`);
  }
  return table.concat(parts, ",");
}

/** Adds an encoded histogram into `into`; returns the number of samples it held. */
export function decodeInto(into: Histogram, text: string): number {
  let total = 0;
  for (const [bs, ns] of string.gmatch(text, "(%d+):(%d+)")) {
    const b = tonumber(bs)!;
    const n = tonumber(ns)!;
    into.set(b, (into.get(b) ?? 0) + n);
    total += n;
  }
  return total;
}

/**
 * Upper bounds (seconds) of the Prometheus buckets: Prometheus' defaults plus 1 ms, 2.5 ms, 30 s
 * and 60 s. Each is a bucket bound above, so its cumulative count is exact.
 */
export const PROMETHEUS_BOUNDS: number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Prometheus bucket slots: 1..#bounds, then #bounds + 1 for +Inf. */
export const PROMETHEUS_SLOTS = PROMETHEUS_BOUNDS.length + 1;

const slotOfBucket: number[] = [];
for (const b of $range(FIRST_BUCKET, OVERFLOW_BUCKET)) {
  const [, hi] = bucketBounds(b);
  let slot = PROMETHEUS_SLOTS;
  for (const i of $range(1, PROMETHEUS_BOUNDS.length)) {
    // Both are decimal numbers of few digits: compare in whole microseconds.
    if (math.floor(hi * 1e6 + 0.5) <= math.floor(PROMETHEUS_BOUNDS[i - 1] * 1e6 + 0.5)) {
      slot = i;
      break;
    }
  }
  slotOfBucket[b - 1] = slot;
}

/** The Prometheus slot (1-based, PROMETHEUS_SLOTS for +Inf) that holds a bucket. */
export function prometheusSlot(b: number): number {
  return slotOfBucket[b - 1];
}
