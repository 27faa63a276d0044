// The rate-limiter family behind one interface (lua-resty-limit-traffic habit): every limiter
// has incoming(store, key, now, cost, commit) and uncommit(...), so several can be combined and
// the ones that admitted are rolled back when a later one refuses.
import { CounterStore } from "./store";
import * as tokenBucket from "./token_bucket";
import * as slidingWindow from "./sliding_window";

export type RateLimiter = tokenBucket.TokenBucket | slidingWindow.SlidingWindow;

export function incoming(lim: RateLimiter, store: CounterStore, key: string, now: number, cost: number, commit: boolean): LuaMultiReturn<[number | undefined, string | undefined, number, number]> {
  if (lim.kind === "token_bucket") return tokenBucket.incoming(lim, store, key, now, cost, commit);
  return slidingWindow.incoming(lim, store, key, now, cost, commit);
}

export function uncommit(lim: RateLimiter, store: CounterStore, key: string, now: number, cost: number): LuaMultiReturn<[boolean | undefined, string | undefined]> {
  if (lim.kind === "token_bucket") return tokenBucket.uncommit(lim, store, key, now, cost);
  return slidingWindow.uncommit(lim, store, key, now, cost);
}

/** The request count a limiter advertises in RateLimit-Limit: burst or limit per window. */
export function quota(lim: RateLimiter): number {
  return lim.kind === "token_bucket" ? lim.burst : lim.limit;
}

/**
 * Runs `count` limiters in order (limiters[i] with keys[i], 0-based) and commits all or none:
 * when one refuses (or its store fails), the ones before it are uncommitted. Returns the first
 * refusal's (undefined, reason, 0, retry), or, when all admit, (0, reason, remaining, reset) of
 * the limiter with the fewest remaining; reason is "would_reject" when a dry-run limiter would
 * have refused. Also returns the index of the limiter that decided the result.
 */
export function combine(limiters: RateLimiter[], keys: string[], count: number, store: CounterStore, now: number, cost: number): LuaMultiReturn<[number | undefined, string | undefined, number, number, number]> {
  let reason: string | undefined = undefined;
  let fewest = -1;
  let fewestReset = 0;
  let decider = 0;
  for (let i = 0; i < count; i++) {
    const [delay, why, remaining, reset] = incoming(limiters[i], store, keys[i], now, cost, true);
    if (delay === undefined) {
      for (let j = i - 1; j >= 0; j--) uncommit(limiters[j], store, keys[j], now, cost);
      return $multi(undefined, why, 0, reset, i);
    }
    if (why !== undefined) reason = why;
    if (fewest < 0 || remaining < fewest) {
      fewest = remaining;
      fewestReset = reset;
      decider = i;
    }
  }
  return $multi(0, reason, fewest < 0 ? 0 : fewest, fewestReset, decider);
}
