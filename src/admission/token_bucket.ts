// Token bucket (rate per second, burst) as GCRA, the virtual-scheduling form, over `incr` only.
//
// State: one number per key, the theoretical arrival time (TAT) of the next request when the
// bucket drains at `rate`. A request of `cost` tokens moves TAT by cost/rate; it is admitted when
// the new TAT is at most burst/rate seconds ahead of now. GCRA's one non-additive step,
// TAT = max(TAT, now) (an idle bucket refills only up to `burst`), is done by the key's
// lifetime instead of a compare-and-set: the key expires when TAT is reached, so the next
// `incr` finds it missing and starts from `init = now`.
//
// nginx keeps lifetimes in whole milliseconds of its clock, which is also ngx.now()'s (and 0
// would mean "never expires"), so a key's life ends at the first millisecond at or after its TAT
// (times here are rounded to the millisecond like ngx.now()). Then a key that exists has its TAT
// ahead of now, and a TAT equal to now was made by this `incr`. Therefore:
// - `incr` reserves atomically: two workers always see different TATs (no get-then-set race);
// - the lifetime is moved only when TAT crosses into a later millisecond: for rates above
//   1000/s most requests cost one `incr`; then `expire`, and a re-read: if a later reservation
//   raised TAT meanwhile, the later expiry wins, so a slow `expire` cannot shorten the lifetime
//   below any admitted TAT;
// - a refused reservation is taken back with a negative `incr` (it can only make a concurrent
//   request see the bucket fuller than it is: refusals err towards refusing, never admitting).
//   Taking back can leave a key alive up to a millisecond past its TAT: a request that finds TAT
//   behind now moves it up to now with a second `incr` (the bucket was full; two doing that at
//   once reserve at most a millisecond of tokens too many, refusing, never admitting, more).
// The remaining inexactness: an idle bucket refills up to a millisecond late, and a refused
// reservation seen by the re-read lengthens the lifetime by its cost (fewer admissions, never
// more).
import { CounterStore } from "./store";

export interface TokenBucket {
  kind: "token_bucket";
  /** Tokens per second. */
  rate: number;
  /** Bucket size: how many requests may pass at once after an idle period. */
  burst: number;
  /** Seconds per token (1 / rate). */
  interval: number;
  /** How far TAT may run ahead of now: burst x interval, at least a millisecond. */
  tolerance: number;
  dryRun: boolean;
}

/**
 * Float slack in seconds: times are epoch seconds (about 1.7e9, where a double resolves about
 * 2.4e-7 s, and each `incr` of a TAT rounds by up to half that), so exact multiples of the
 * interval must compare as equal despite rounding.
 */
const EPSILON = 1e-5;
/**
 * The least tolerance: ngx.now() moves in milliseconds, so requests in one millisecond all
 * arrive at once, and a bucket must hold a millisecond of its rate to pass its rate.
 */
const MIN_TOLERANCE = 0.001;
/** Lifetime of a key created by a rollback that raced with expiry: gone almost at once. */
const ROLLBACK_TTL = 0.001;

/** The millisecond of nginx's clock at or before `t` (ngx.now() is already on one). */
function millisecondOf(t: number): number {
  return math.floor(t * 1000 + 0.5);
}

/** The first millisecond at or after `t` (a microsecond of float slack counts as on it). */
function millisecondAfter(t: number): number {
  return math.ceil(t * 1000 - 0.001);
}

/**
 * The lifetime, from the millisecond `nowMs`, that ends a key at the first millisecond at or
 * after `tat`: whole milliseconds, at least one (0 would mean forever). The half millisecond
 * keeps nginx's truncation of seconds x 1000 from losing one to float rounding.
 */
function lifetimeTo(tat: number, nowMs: number): number {
  const ms = millisecondAfter(tat) - nowMs;
  return (ms < 1 ? 1.5 : ms + 0.5) / 1000;
}

export function newTokenBucket(rate: number, burst: number, dryRun: boolean): TokenBucket {
  const interval = 1 / rate;
  return { kind: "token_bucket", rate, burst, interval, tolerance: math.max(burst * interval, MIN_TOLERANCE), dryRun };
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
  const nowMs = millisecondOf(now);
  now = nowMs / 1000;
  let tat: number;
  let extend = false;
  if (commit) {
    const [v, err] = store.incr(key, step, now, lifetimeTo(now + step, nowMs));
    if (v === undefined) return $multi(undefined, err, 0, 0);
    tat = v;
    const prev = tat - step;
    const lag = now - prev;
    if (lag > EPSILON) {
      // A taken-back reservation left the key alive past its TAT: the bucket is full, TAT
      // restarts at now. If the key expired in between, `init` gives the same result.
      const [v2, err2] = store.incr(key, lag, now + step - lag, lifetimeTo(now + step, nowMs));
      if (v2 === undefined) return $multi(undefined, err2, 0, 0);
      tat = v2;
      extend = true;
    } else {
      // Made by this incr (TAT was now) or existing (ahead): the life ends at TAT's millisecond.
      extend = lag < -EPSILON && millisecondAfter(tat) > millisecondAfter(prev);
    }
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
  if (extend) {
    store.expire(key, lifetimeTo(tat, nowMs));
    const latest = store.get(key)[0];
    if (latest !== undefined && latest > tat) store.expire(key, lifetimeTo(latest, nowMs));
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
  lim.tolerance = math.max(lim.burst * lim.interval, MIN_TOLERANCE);
}
