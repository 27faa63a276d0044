// Cluster-wide numbers: each instance publishes its per-pool window as one compact string
// (a field of a Redis hash per pool); the leader sums the live instances. An instance whose
// snapshot is older than `staleAfter` drops out. Pure: the shell does the Redis I/O.

export interface PoolSnapshot {
  /** When the instance took it (its clock, seconds). */
  time: number;
  /** Requests per second over the policy window. */
  rate: number;
  requests: number;
  errors: number;
  inFlight?: number;
  p99Ms?: number;
}

function optional(v: number | undefined): string {
  return v === undefined ? "" : string.format("%.17g", v);
}

/** "time|rate|requests|errors|inFlight|p99Ms" (missing values empty). */
export function encodeSnapshot(s: PoolSnapshot): string {
  return string.format("%.3f|%.17g|%d|%d|%s|%s", s.time, s.rate, s.requests, s.errors, optional(s.inFlight), optional(s.p99Ms));
}

export function decodeSnapshot(text: string): PoolSnapshot | undefined {
  const [t, rate, n, e, inflight, p99] = string.match(text, "^([^|]+)|([^|]+)|([^|]+)|([^|]+)|([^|]*)|([^|]*)$");
  const time = tonumber(t);
  const r = tonumber(rate);
  const requests = tonumber(n);
  const errors = tonumber(e);
  if (time === undefined || r === undefined || requests === undefined || errors === undefined) return undefined;
  return { time, rate: r, requests, errors, inFlight: tonumber(inflight), p99Ms: tonumber(p99) };
}

export interface ClusterFigures {
  rate: number;
  requests: number;
  errors: number;
  errorRatio: number;
  /** Sum over the instances that report it; undefined when none does. */
  inFlight?: number;
  /** The largest p99 of the live instances (percentiles do not add up; the worst is safe). */
  p99Ms?: number;
  /** Instances counted. */
  live: number;
  /** Instances left out as stale or unreadable. */
  stale: string[];
}

/**
 * Sums the snapshots of a hash {instance: encoded} taken no more than `staleAfter` seconds
 * before `now` (a snapshot from the future by less than that counts: clocks differ a little).
 */
export function aggregate(entries: LuaTable<string, string>, now: number, staleAfter: number): ClusterFigures {
  const out: ClusterFigures = { rate: 0, requests: 0, errors: 0, errorRatio: 0, live: 0, stale: [] };
  for (const [instance, text] of pairs(entries)) {
    const s = decodeSnapshot(text);
    if (s === undefined || math.abs(now - s.time) > staleAfter) {
      out.stale.push(instance);
      continue;
    }
    out.live += 1;
    out.rate += s.rate;
    out.requests += s.requests;
    out.errors += s.errors;
    if (s.inFlight !== undefined) out.inFlight = (out.inFlight ?? 0) + s.inFlight;
    if (s.p99Ms !== undefined && (out.p99Ms === undefined || s.p99Ms > out.p99Ms)) out.p99Ms = s.p99Ms;
  }
  table.sort(out.stale);
  out.errorRatio = out.requests > 0 ? out.errors / out.requests : 0;
  return out;
}

/** Redis keys, all under one prefix. */
export function leaseKey(prefix: string): string {
  return `${prefix}:leader`;
}
export function epochKey(prefix: string): string {
  return `${prefix}:leader:epoch`;
}
export function metricsKey(prefix: string, pool: string): string {
  return `${prefix}:metrics:${pool}`;
}
