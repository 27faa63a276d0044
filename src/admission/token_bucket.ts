// Token bucket (rate per second, burst) as GCRA, the virtual-scheduling form, over `incr` only.
//
// State: one number per key, the theoretical arrival time (TAT) of the next request when the
// bucket drains at `rate`. A request of `cost` tokens moves TAT by cost/rate; it is admitted when
// the new TAT is at most burst/rate seconds ahead of now. GCRA's one non-additive step,
// TAT = max(TAT, now) (an idle bucket refills only up to `burst`), is done by the key's
// lifetime instead of a compare-and-set: the key expires exactly when TAT is reached, so the next
// `incr` finds it missing and starts from `init = now`. Therefore:
// - `incr` reserves atomically: two workers always see different TATs (no get-then-set race);
// - a refused reservation is taken back with a negative `incr` (it can only make a concurrent
//   request see the bucket fuller than it is: refusals err towards refusing, never admitting);
// - after an admission the key's lifetime is moved to the new TAT with `expire`, then re-read:
//   if a later reservation raised TAT meanwhile, the later expiry wins, so a slow `expire`
//   cannot shorten the lifetime below any admitted TAT.
// The remaining inexactness: a refused reservation seen by that re-read lengthens the lifetime
// by its cost, which can leave a little refill unclaimed after the bucket goes idle (fewer
// admissions, never more).
import { CounterStore } from "./store";

export interface TokenBucket {
  kind: "token_bucket";
  /** Tokens per second. */
  rate: number;
  /** Bucket size: how many requests may pass at once after an idle period. */
  burst: number;
  /** Seconds per token (1 / rate). */
  interval: number;
  /** How far TAT may run ahead of now: burst x interval. */
  tolerance: number;
  dryRun: boolean;
}

/**
 * Float slack in seconds: times are epoch seconds (about 1.7e9, where a double resolves about
 * 2.4e-7 s), so exact multiples of the interval must compare as equal despite rounding.
 */
const EPSILON = 1e-6;
/** Lifetime of a key created by a rollback that raced with expiry: gone almost at once. */
const ROLLBACK_TTL = 0.001;

export function newTokenBucket(rate: number, burst: number, dryRun: boolean): TokenBucket {
  const interval = 1 / rate;
  return { kind: "token_bucket", rate, burst, interval, tolerance: burst * interval, dryRun };
}

/**
 * Decides one request of `cost` tokens for `key` at time `now` (seconds).
 * Returns (delay, reason, remaining, reset):
 * - admitted: delay = 0, reason undefined, or "would_reject" in dry-run when it would have been refused;
 * - refused: delay undefined, reason "rejected", remaining 0, reset = seconds until it would pass (Retry-After);
 * - store failure: delay undefined, reason = the store's error.
 * remaining is whole tokens left after this request; reset is seconds until the bucket is full.
 * With commit false nothing is consumed (a check only).
 */
export function incoming(lim: TokenBucket, store: CounterStore, key: string, now: number, cost: number, commit: boolean): LuaMultiReturn<[number | undefined, string | undefined, number, number]> {
  const step = cost * lim.interval;
  let tat: number;
  if (commit) {
    const [v, err] = store.incr(key, step, now, step);
    if (v === undefined) return $multi(undefined, err, 0, 0);
    tat = v;
  } else {
    const v = store.get(key)[0];
    tat = (v === undefined || v < now ? now : v) + step;
  }
  const ahead = tat - now;
  if (ahead > lim.tolerance + EPSILON) {
    if (commit) store.incr(key, -step, now + step, ROLLBACK_TTL);
    const wait = ahead - lim.tolerance;
    if (lim.dryRun) return $multi(0, "would_reject", 0, ahead - step);
    return $multi(undefined, "rejected", 0, wait);
  }
  if (commit && tat - step > now) {
    // The key existed: its lifetime must now end at the new TAT (see the header comment).
    store.expire(key, ahead);
    const latest = store.get(key)[0];
    if (latest !== undefined && latest > tat) store.expire(key, latest - now);
  }
  const remaining = math.floor((lim.tolerance - ahead + EPSILON) / lim.interval);
  return $multi(0, undefined, remaining, ahead);
}

/** Gives back `cost` tokens taken by an admitted `incoming` (a later limiter refused the request). */
export function uncommit(lim: TokenBucket, store: CounterStore, key: string, now: number, cost: number): LuaMultiReturn<[boolean | undefined, string | undefined]> {
  const step = cost * lim.interval;
  const [v, err] = store.incr(key, -step, now + step, ROLLBACK_TTL);
  if (v === undefined) return $multi(undefined, err);
  return $multi(true, undefined);
}

/** Applies a new rate (adaptive rate) keeping the burst; takes effect from the next request. */
export function retune(lim: TokenBucket, rate: number): void {
  lim.rate = rate;
  lim.interval = 1 / rate;
  lim.tolerance = lim.burst * lim.interval;
}
