// Cluster-wide limits when Redis is unreachable: each gateway instance enforces its share of the
// limit locally (limit / configured instance count), and stops asking Redis for a while, so a
// dead Redis adds no timeout to every request. The shell reports `mode` in logs and status.
import * as tokenBucket from "./token_bucket";
import * as slidingWindow from "./sliding_window";
import { RateLimiter } from "./rate";

/** The share of a cluster-wide limiter one of `instances` gateways enforces alone (at least 1 request). */
export function localShare(lim: RateLimiter, instances: number): RateLimiter {
  const n = instances >= 1 ? instances : 1;
  if (lim.kind === "token_bucket") {
    return tokenBucket.newTokenBucket(lim.rate / n, math.max(1, math.floor(lim.burst / n)), lim.dryRun);
  }
  return slidingWindow.newSlidingWindow(math.max(1, math.floor(lim.limit / n)), lim.window, lim.dryRun);
}

export interface RedisHealth {
  mode: "cluster" | "local";
  /** Until when (seconds) Redis is not asked; 0 while healthy. */
  retryAt: number;
  /** Consecutive failures, for the backoff. */
  failures: number;
}

export function newRedisHealth(): RedisHealth {
  return { mode: "cluster", retryAt: 0, failures: 0 };
}

/**
 * True when this request should ask Redis. In local mode, once the quiet period is over, only
 * the first request asks (it pushes retryAt on by one second), so a still-dead Redis costs one
 * timeout per second per worker, not one per request.
 */
export function useRedis(h: RedisHealth, now: number): boolean {
  if (h.mode === "cluster") return true;
  if (now < h.retryAt) return false;
  h.retryAt = now + 1;
  return true;
}

/**
 * Records a failed Redis call: switch to local limits and keep off Redis for
 * min(base x 2^(failures-1), max) seconds. Returns true when the mode just changed (log once).
 */
export function onRedisFailure(h: RedisHealth, now: number, baseSeconds: number, maxSeconds: number): boolean {
  h.failures = h.failures + 1;
  const wait = math.min(maxSeconds, baseSeconds * 2 ** (h.failures - 1));
  h.retryAt = now + wait;
  const changed = h.mode === "cluster";
  h.mode = "local";
  return changed;
}

/** Records a successful Redis call. Returns true when the mode just changed back to cluster. */
export function onRedisSuccess(h: RedisHealth): boolean {
  const changed = h.mode === "local";
  h.mode = "cluster";
  h.failures = 0;
  h.retryAt = 0;
  return changed;
}
