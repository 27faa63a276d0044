// Values for the Retry-After and IETF RateLimit-* response headers (draft-ietf-httpapi-
// ratelimit-headers: RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, all in whole units).
// Numbers, not strings: ngx.header takes numbers, so the per-request path builds no string.
// The policy string (RateLimit-Policy) is built once per limiter when the config loads.

/** Retry-After in whole seconds, at least 1 (a client reading 0 would retry at once). */
export function retryAfterSeconds(wait: number): number {
  const s = math.ceil(wait);
  return s < 1 ? 1 : s;
}

/** RateLimit-Remaining: whole requests left, never negative. */
export function remainingValue(remaining: number): number {
  return remaining > 0 ? math.floor(remaining) : 0;
}

/** RateLimit-Reset: whole seconds until the quota is back, never negative. */
export function resetSeconds(reset: number): number {
  return reset > 0 ? math.ceil(reset) : 0;
}

/** RateLimit-Policy value, e.g. `100;w=60` (quota per window of seconds). Built once per limiter. */
export function policyValue(quota: number, windowSeconds: number): string {
  return string.format("%d;w=%d", quota, math.max(1, math.ceil(windowSeconds)));
}
