// Priority load shedding for a pool at its concurrency limit. Each priority may fill the pool
// only up to its share of the limit (best_effort 50 %, normal 90 %, critical 100 % by default),
// so as in-flight requests rise best-effort is refused first and critical last, and critical
// always keeps the top of the limit for itself. Requests over their share are shed (503 with
// Retry-After) or, when the pool has a queue, wait in it (best_effort never waits). The shell
// sleep-polls a queued request with mayLeaveQueue until it passes or queueExpired says so.

export type Priority = "critical" | "normal" | "best_effort";
export type Decision = "admit" | "shed" | "queue";

export interface ShedPolicy {
  bestEffortShare: number;
  normalShare: number;
  /** Waiting requests the pool may hold (per worker); 0 = no queue. */
  queueSize: number;
  /** Seconds a request may wait before it is shed. */
  queueTimeout: number;
}

export function newShedPolicy(bestEffortShare: number, normalShare: number, queueSize: number, queueTimeout: number): ShedPolicy {
  return { bestEffortShare, normalShare, queueSize, queueTimeout };
}

/** In-flight requests under which `priority` is admitted. */
export function threshold(p: ShedPolicy, priority: Priority, limit: number): number {
  if (priority === "critical") return limit;
  if (priority === "normal") return limit * p.normalShare;
  return limit * p.bestEffortShare;
}

/** Admission at arrival, given the pool's in-flight count, limit and current queue length. */
export function decide(p: ShedPolicy, priority: Priority, inflight: number, limit: number, queued: number): Decision {
  if (inflight < threshold(p, priority, limit)) return "admit";
  if (priority !== "best_effort" && queued < p.queueSize) return "queue";
  return "shed";
}

/**
 * Whether a waiting request may go now: its priority has room, and no request of higher
 * priority is waiting (`waitingAhead`: the count of waiting critical requests for a normal
 * one, 0 for critical), so the queue drains in priority order.
 */
export function mayLeaveQueue(p: ShedPolicy, priority: Priority, inflight: number, limit: number, waitingAhead: number): boolean {
  return waitingAhead === 0 && inflight < threshold(p, priority, limit);
}

/** Whether a request that started waiting at `enqueuedAt` must now be shed. */
export function queueExpired(p: ShedPolicy, enqueuedAt: number, now: number): boolean {
  return now - enqueuedAt >= p.queueTimeout;
}
