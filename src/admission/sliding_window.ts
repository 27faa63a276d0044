// Sliding-window counter (limit per window) over two fixed-window counters, the way Cloudflare
// and APISIX estimate it: estimate = previous x (1 - elapsed part of the current window) +
// current. Each fixed window is one key, `<key>:<window index>`, created by `incr` with a TTL of
// two windows, so no key is ever reset and no worker reads-then-writes: `incr` reserves
// atomically, a refused reservation is taken back with a negative `incr` (which can only make a
// concurrent request see more load than there is), and the previous window is read-only.
import { CounterStore } from "./store";

export interface SlidingWindow {
  kind: "sliding_window";
  /** Requests (cost units) allowed per window. */
  limit: number;
  /** Window length in seconds. */
  window: number;
  dryRun: boolean;
}

const EPSILON = 1e-9;

export function newSlidingWindow(limit: number, window: number, dryRun: boolean): SlidingWindow {
  return { kind: "sliding_window", limit, window, dryRun };
}

/** Seconds until a request of `cost` would pass, given the counts without it. */
function retryAfter(lim: SlidingWindow, previous: number, current: number, cost: number, elapsed: number): number {
  const w = lim.window;
  if (cost > lim.limit) return w;
  if (current + cost <= lim.limit) {
    // The previous window's weight has to shrink until the sum fits, later in this window.
    if (previous <= 0) return 0;
    const at = w * (1 - (lim.limit - current - cost) / previous);
    return at > elapsed ? at - elapsed : 0;
  }
  // Only the next window can fit it, once this window's count (then "previous") weighs enough less.
  const at = current > 0 ? w * (1 - (lim.limit - cost) / current) : 0;
  return w - elapsed + (at > 0 ? at : 0);
}

/**
 * Decides one request of `cost` for `key` at `now` (seconds). Same results as
 * token_bucket.incoming: (0 | undefined, reason, remaining, reset); reset is the seconds until
 * the current fixed window ends, or for a refusal the seconds until the request would pass.
 */
export function incoming(lim: SlidingWindow, store: CounterStore, key: string, now: number, cost: number, commit: boolean): LuaMultiReturn<[number | undefined, string | undefined, number, number]> {
  const w = lim.window;
  const windowIndex = math.floor(now / w);
  const elapsed = now - windowIndex * w;
  const currentKey = key + ":" + windowIndex;
  const previous = store.get(key + ":" + (windowIndex - 1))[0] ?? 0;
  let current: number;
  if (commit) {
    const [v, err] = store.incr(currentKey, cost, 0, 2 * w);
    if (v === undefined) return $multi(undefined, err, 0, 0);
    current = v;
  } else {
    current = (store.get(currentKey)[0] ?? 0) + cost;
  }
  const estimate = previous * (1 - elapsed / w) + current;
  if (estimate > lim.limit + EPSILON) {
    if (commit) store.incr(currentKey, -cost, 0, 2 * w);
    const wait = retryAfter(lim, previous, current - cost, cost, elapsed);
    if (lim.dryRun) return $multi(0, "would_reject", 0, w - elapsed);
    return $multi(undefined, "rejected", 0, wait);
  }
  return $multi(0, undefined, math.floor(lim.limit - estimate + EPSILON), w - elapsed);
}

/** Gives back `cost` counted by an admitted `incoming` at the same `now`. */
export function uncommit(lim: SlidingWindow, store: CounterStore, key: string, now: number, cost: number): LuaMultiReturn<[boolean | undefined, string | undefined]> {
  const windowIndex = math.floor(now / lim.window);
  const [v, err] = store.incr(key + ":" + windowIndex, -cost, 0, 2 * lim.window);
  if (v === undefined) return $multi(undefined, err);
  return $multi(true, undefined);
}
