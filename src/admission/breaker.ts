// Circuit breaker for a pool or a route. Closed: requests pass and results are counted in a
// fixed window; it opens when, over at least minRequests in the window, the error ratio reaches
// errorRatio, or after consecutiveFailures failures in a row. Open: requests are refused until
// openSeconds have passed. Half-open: up to halfOpenProbes requests pass at a time as probes;
// closeAfter probe successes close it, one probe failure opens it again. State lives where the
// shell keeps it (per worker); times come in as arguments.

export type BreakerState = "closed" | "open" | "half_open";

export interface BreakerOptions {
  errorRatio: number;
  minRequests: number;
  /** Seconds of the counting window. */
  window: number;
  /** Failures in a row that open it; 0 = off. */
  consecutiveFailures: number;
  openSeconds: number;
  halfOpenProbes: number;
  closeAfter: number;
}

export interface Breaker {
  state: BreakerState;
  windowStart: number;
  requests: number;
  failures: number;
  consecutive: number;
  openedAt: number;
  probesInFlight: number;
  probeSuccesses: number;
  /** How often it has opened (metrics). */
  timesOpened: number;
}

export function newBreaker(now: number): Breaker {
  return { state: "closed", windowStart: now, requests: 0, failures: 0, consecutive: 0, openedAt: 0, probesInFlight: 0, probeSuccesses: 0, timesOpened: 0 };
}

function open(b: Breaker, now: number): void {
  b.state = "open";
  b.openedAt = now;
  b.timesOpened = b.timesOpened + 1;
  b.probesInFlight = 0;
  b.probeSuccesses = 0;
}

function close(b: Breaker, now: number): void {
  b.state = "closed";
  b.windowStart = now;
  b.requests = 0;
  b.failures = 0;
  b.consecutive = 0;
}

/**
 * Whether a request may pass now, and whether it is a half-open probe (its result must be
 * reported with probe = true).
 */
export function allow(b: Breaker, o: BreakerOptions, now: number): LuaMultiReturn<[boolean, boolean]> {
  if (b.state === "closed") return $multi(true, false);
  if (b.state === "open") {
    if (now - b.openedAt < o.openSeconds) return $multi(false, false);
    b.state = "half_open";
    b.probesInFlight = 0;
    b.probeSuccesses = 0;
  }
  if (b.probesInFlight < o.halfOpenProbes) {
    b.probesInFlight = b.probesInFlight + 1;
    return $multi(true, true);
  }
  return $multi(false, false);
}

/** Reports a finished request. Returns the state afterwards. */
export function onResult(b: Breaker, o: BreakerOptions, now: number, ok: boolean, probe: boolean): BreakerState {
  if (b.state === "half_open") {
    if (!probe) return b.state; // admitted before it opened: says nothing about now
    b.probesInFlight = b.probesInFlight - 1;
    if (!ok) {
      open(b, now);
    } else {
      b.probeSuccesses = b.probeSuccesses + 1;
      if (b.probeSuccesses >= o.closeAfter) close(b, now);
    }
    return b.state;
  }
  if (b.state === "open") return b.state;
  if (now - b.windowStart >= o.window) {
    b.windowStart = now;
    b.requests = 0;
    b.failures = 0;
  }
  b.requests = b.requests + 1;
  if (ok) {
    b.consecutive = 0;
    return b.state;
  }
  b.failures = b.failures + 1;
  b.consecutive = b.consecutive + 1;
  if ((o.consecutiveFailures > 0 && b.consecutive >= o.consecutiveFailures) || (b.requests >= o.minRequests && b.failures >= o.errorRatio * b.requests)) {
    open(b, now);
  }
  return b.state;
}

/** Seconds until an open breaker lets probes through (for Retry-After); 0 when not open. */
export function retryAfter(b: Breaker, o: BreakerOptions, now: number): number {
  if (b.state !== "open") return 0;
  const left = b.openedAt + o.openSeconds - now;
  return left > 0 ? left : 0;
}
