// Active health checks: the state machine and the probe schedule. The shell runs the HTTP
// probes (one checker per gateway) and feeds each result here; this module only decides.
// - A probe succeeds when it got a status listed in expected_statuses; a timeout or connection
//   error (status undefined) or any other status is a failure.
// - A healthy peer turns unhealthy after `fall` failures in a row; an unhealthy peer turns
//   healthy after `rise` successes in a row. A result of the other kind resets the count.
// - Probes run every `interval` seconds for healthy peers and every `unhealthy_interval` for
//   unhealthy ones, with +-10 % jitter so peers are not probed in lockstep.

export interface HealthCheckOptions {
  path: string;
  /** Seconds between probes of a healthy peer. */
  interval: number;
  /** Seconds between probes of an unhealthy peer. */
  unhealthy_interval: number;
  /** Seconds a probe may take before it counts as failed (the shell enforces it). */
  timeout: number;
  expected_statuses: number[];
  rise: number;
  fall: number;
}

export const JITTER = 0.1;

export interface HealthState {
  healthy: boolean;
  successes: number;
  failures: number;
  /** When the current verdict began. */
  since: number;
  nextProbeAt: number;
}

/** A peer starts healthy (as configured) or unhealthy (a newly scaled-up peer, if preferred). */
export function create(healthy: boolean, now: number): HealthState {
  return { healthy, successes: 0, failures: 0, since: now, nextProbeAt: now };
}

export function isExpected(options: HealthCheckOptions, status: number | undefined): boolean {
  if (status === undefined) return false;
  for (const s of options.expected_statuses) {
    if (s === status) return true;
  }
  return false;
}

/** Feeds one probe result. Returns true when the verdict changed. */
export function onProbe(state: HealthState, options: HealthCheckOptions, status: number | undefined, now: number): boolean {
  if (isExpected(options, status)) {
    state.failures = 0;
    if (state.healthy) return false;
    state.successes++;
    if (state.successes < options.rise) return false;
    state.healthy = true;
  } else {
    state.successes = 0;
    if (!state.healthy) return false;
    state.failures++;
    if (state.failures < options.fall) return false;
    state.healthy = false;
  }
  state.successes = 0;
  state.failures = 0;
  state.since = now;
  return true;
}

/** Seconds until the next probe of this peer; `random` in [0, 1) sets the jitter. */
export function probeDelay(state: HealthState, options: HealthCheckOptions, random: number): number {
  const base = state.healthy ? options.interval : options.unhealthy_interval;
  return base * (1 - JITTER + 2 * JITTER * random);
}

/** Schedules the next probe after one was sent at `now`. */
export function scheduleNext(state: HealthState, options: HealthCheckOptions, now: number, random: number): number {
  state.nextProbeAt = now + probeDelay(state, options, random);
  return state.nextProbeAt;
}

export function due(state: HealthState, now: number): boolean {
  return now >= state.nextProbeAt;
}
