// Token bucket (rate per second, burst) as GCRA, the virtual-scheduling form, over `incr` only.
//
// State: one number per key, the theoretical arrival time (TAT) of the next request when the
// bucket drains at `rate`. A request of `cost` tokens moves TAT by cost/rate; it is admitted when
// the new TAT is at most burst/rate seconds ahead of now. GCRA's one non-additive step,
// TAT = max(TAT, now) (an idle bucket refills only up to `burst`), is done by the key's
// lifetime instead of a compare-and-set: the key expires when TAT is reached, so the next
// `incr` finds it missing and starts from `init = now`. Therefore:
// - `incr` reserves atomically: two workers always see different TATs (no get-then-set race);
// - a refused reservation is taken back with a negative `incr` (it can only make a concurrent
//   request see the bucket fuller than it is: refusals err towards refusing, never admitting);
// - after an admission the key's lifetime is moved to the new TAT with `expire`, then re-read:
//   if a later reservation raised TAT meanwhile, the later expiry wins, so a slow `expire`
//   cannot shorten the lifetime below any admitted TAT.
// nginx keeps a key's lifetime in whole milliseconds (seconds x 1000 truncated, 0 meaning
// "never expires") from its clock's millisecond, which is also ngx.now()'s: times are rounded to
// the millisecond here, and a lifetime is whole milliseconds, at least one. Up to 1000/s it is
// rounded down: a key ends within the millisecond before its TAT (an idle bucket refills less
// than a token early), so a key that exists has its TAT ahead of now and a TAT equal to now was
// made by this `incr`. Above 1000/s a millisecond early would give several tokens back, so it is
// rounded up: a key may live up to a millisecond past its TAT, and a request that finds TAT
// behind now moves it up to now with a second `incr` (the bucket was full). Two requests doing
// that at once both add their lag: at most a millisecond of tokens too many is reserved
// (refusing, never admitting, more).
// The remaining inexactness: a refused reservation seen by the re-read lengthens the lifetime
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

/** Steps shorter than the dict's millisecond (rates above 1000/s) get lifetimes rounded up. */
const SHORT_STEP = 0.001 - EPSILON;

/** Seconds to the dict's (and ngx.now()'s) millisecond. */
function toMillisecond(t: number): number {
  return math.floor(t * 1000 + 0.5) / 1000;
}

/**
 * The lifetime to give a key whose TAT is `seconds` ahead, in whole milliseconds, at least one (0
 * would mean forever): rounded down when a step is a millisecond or more (the key may end less
 * than a token early), up when steps are shorter (a millisecond early would give several tokens
 * back). The half millisecond keeps nginx's truncation of seconds x 1000 from losing one to float
 * rounding.
 */
export function keyLifetime(seconds: number, step: number): number {
  const ms = step < SHORT_STEP ? math.ceil(seconds * 1000 - 1e-6) : math.floor(seconds * 1000 + 1e-6);
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
  now = toMillisecond(now);
  let tat: number;
  let existed = false;
  if (commit) {
    const [v, err] = store.incr(key, step, now, keyLifetime(step, step));
    if (v === undefined) return $multi(undefined, err, 0, 0);
    tat = v;
    const lag = now - (tat - step);
    if (lag > EPSILON) {
      // The key outlived its TAT (less than a millisecond ahead is given one): the bucket is
      // full, TAT restarts at now. If the key expired in between, `init` gives the same result.
      const [v2, err2] = store.incr(key, lag, now + step - lag, keyLifetime(step, step));
      if (v2 === undefined) return $multi(undefined, err2, 0, 0);
      tat = v2;
      existed = true;
    } else {
      // TAT was ahead of now, or equal to it: made by this incr, unless steps are shorter than
      // the dict's millisecond (see the header comment).
      existed = lag < -EPSILON || step < SHORT_STEP;
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
  if (existed) {
    // The key existed: its lifetime must now end at the new TAT (see the header comment).
    store.expire(key, keyLifetime(ahead, step));
    const latest = store.get(key)[0];
    if (latest !== undefined && latest > tat) store.expire(key, keyLifetime(latest - now, step));
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
