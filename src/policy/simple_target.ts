// The walking skeleton's scaling rule: replicas needed so each carries at most `target`
// requests per second, within [min, max]. The policy engine (issue 6) replaces it.

export interface SimpleDecision {
  current: number;
  desired: number;
  /** Human-readable why, for logs and the status page. */
  reason: string;
}

export function decideReplicas(current: number, rate: number, target: number, min: number, max: number): SimpleDecision {
  const needed = math.ceil(rate / target - 1e-9);
  let desired = math.max(min, math.min(max, needed));
  let reason = string.format("%.2f req/s at a target of %.2f per replica needs %d", rate, target, needed);
  if (needed < min) reason += string.format(", raised to min_replicas %d", min);
  if (needed > max) reason += string.format(", capped at max_replicas %d", max);
  if (desired === current) reason += " (no change)";
  desired = math.floor(desired);
  return { current, desired, reason };
}
