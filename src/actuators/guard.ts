// Safety around every actuator, pure (time and randomness are arguments):
// - clampReplicas: never outside [min, max];
// - backoffDelay: exponential backoff with full jitter between retries;
// - CircuitBreaker: per actuator, closed -> open after N consecutive failures, half-open after
//   the open period (one probe at a time), the open period doubling on each re-open;
// - SendLedger: idempotency, the same desired value is not sent again until it changes or
//   the resend interval has passed;
// - planAction: the one decision the shell acts on (send, dry run, or why not).
import { BreakerConfig, RetryConfig } from "./schema";

/** The desired count inside [min, max]; fractions round up (scale for the load), NaN gives min. */
export function clampReplicas(desired: number, min: number, max: number): number {
  if (desired !== desired) return min;
  const n = math.ceil(desired);
  if (n < min) return min;
  if (n > max) return max;
  return n;
}

/**
 * Milliseconds to wait before retry number `attempt` (1 for the first retry): uniformly random
 * in [0, min(max, base * 2^(attempt-1))] ("full jitter", which spreads retries of many gateways
 * apart best). `random` returns a number in [0, 1).
 */
export function backoffDelay(attempt: number, retry: RetryConfig, random: (this: void) => number): number {
  const exponent = attempt < 1 ? 0 : attempt - 1;
  // Cap the exponent so 2^n stays finite for absurd attempt numbers.
  const ceiling = math.min(retry.max_ms, retry.base_ms * 2 ** math.min(exponent, 40));
  return math.floor(random() * ceiling);
}

export type BreakerState = "closed" | "open" | "half_open";

export class CircuitBreaker {
  state: BreakerState = "closed";
  /** Consecutive failures while closed. */
  failures = 0;
  /** Times opened since the last success: the open period doubles with each. */
  trips = 0;
  openedAt = 0;
  openSeconds = 0;
  probing = false;

  constructor(public cfg: BreakerConfig) {}

  /** May a request go out now? Moves open -> half-open when the open period is over. */
  allow(now: number): boolean {
    if (this.state === "closed") return true;
    if (this.state === "open") {
      if (now - this.openedAt < this.openSeconds) return false;
      this.state = "half_open";
      this.probing = false;
    }
    // Half-open: one probe at a time.
    if (this.probing) return false;
    this.probing = true;
    return true;
  }

  onSuccess(): void {
    this.state = "closed";
    this.failures = 0;
    this.trips = 0;
    this.probing = false;
  }

  onFailure(now: number): void {
    this.probing = false;
    if (this.state === "half_open") {
      this.open(now);
      return;
    }
    if (this.state === "closed") {
      this.failures++;
      if (this.failures >= this.cfg.failures) this.open(now);
    }
  }

  /** Seconds until a probe is allowed (0 when closed or half-open). */
  retryIn(now: number): number {
    if (this.state !== "open") return 0;
    return math.max(0, this.openedAt + this.openSeconds - now);
  }

  private open(now: number): void {
    this.trips++;
    this.state = "open";
    this.openedAt = now;
    this.failures = 0;
    this.openSeconds = math.min(this.cfg.max_open_seconds, this.cfg.open_seconds * 2 ** math.min(this.trips - 1, 40));
  }
}

/** What was last applied to a pool: only successful sends are recorded. */
export class SendLedger {
  value: number | undefined;
  sentAt = 0;

  record(value: number, now: number): void {
    this.value = value;
    this.sentAt = now;
  }

  /** True when `desired` differs from the last value sent, or that was `resendInterval` ago. */
  needsSend(desired: number, now: number, resendInterval: number): boolean {
    if (this.value === undefined || this.value !== desired) return true;
    return now - this.sentAt >= resendInterval || now < this.sentAt;
  }
}

export type PlanAction = "send" | "dry_run" | "unchanged" | "breaker_open";

export interface Plan {
  action: PlanAction;
  /** The clamped value that is (or would be) sent. */
  desired: number;
  /** True when clamping changed the requested value. */
  clamped: boolean;
}

export interface PlanInput {
  requested: number;
  min: number;
  max: number;
  dryRun: boolean;
  resendInterval: number;
  now: number;
}

/**
 * The single decision the shell acts on. Order matters: clamp first (the value logged and
 * compared is the one that would be sent), then idempotency (an unchanged value is not an
 * action, not even a dry-run one), then dry run (logs what it would send, never touches the
 * breaker), then the breaker (a real send only when it allows one).
 */
export function planAction(input: PlanInput, ledger: SendLedger, breaker: CircuitBreaker): Plan {
  const desired = clampReplicas(input.requested, input.min, input.max);
  const clamped = desired !== input.requested;
  if (!ledger.needsSend(desired, input.now, input.resendInterval)) return { action: "unchanged", desired, clamped };
  if (input.dryRun) return { action: "dry_run", desired, clamped };
  if (!breaker.allow(input.now)) return { action: "breaker_open", desired, clamped };
  return { action: "send", desired, clamped };
}

/** Constructors callable from plain Lua (a TypeScript class needs `new`, which Lua lacks). */
export function newBreaker(cfg: BreakerConfig): CircuitBreaker {
  return new CircuitBreaker(cfg);
}

export function newLedger(): SendLedger {
  return new SendLedger();
}
