// The top-level `cluster` section: several gateway instances acting as one autoscaler through
// Redis (leader lease, cluster-wide metrics). Without it an instance decides alone.
import { Json, Problems, join, readEnum, readInteger, readNumber, readObject, readString, rejectUnknownKeys } from "../config/check";

export type FallbackMode = "hold" | "local";

export interface ClusterConfig {
  /** Names this instance in Redis, logs and signals; absent: "<hostname>:<master pid>". */
  instance_id?: string;
  /** How long a leader lease lasts without renewal (ms). A standby takes over within it. */
  lease_ms: number;
  /** Seconds between lease renewals and metric publications. */
  interval: number;
  /** Seconds after which an instance's published metrics no longer count. */
  stale_after: number;
  /** Redis unreachable: "hold" the replica count (default) or let the former leader decide on local numbers. */
  fallback: FallbackMode;
  key_prefix: string;
}

export function validateCluster(p: Problems, path: string, raw: Json): ClusterConfig | undefined {
  if (raw === undefined) return undefined;
  const o = readObject(p, path, raw, true);
  if (o === undefined) return undefined;
  const before = p.list.length;
  rejectUnknownKeys(p, path, o, ["instance_id", "lease_ms", "interval", "stale_after", "fallback", "key_prefix"]);
  const id = readString(p, join(path, "instance_id"), o.get("instance_id"), false, "^[%w_%.%-:]+$", "letters, digits, '_', '.', '-' or ':'");
  const lease = readInteger(p, join(path, "lease_ms"), o.get("lease_ms"), 1000, 600000, 5000);
  const interval = readNumber(p, join(path, "interval"), o.get("interval"), 0.2, 60, 1);
  const stale = readNumber(p, join(path, "stale_after"), o.get("stale_after"), 0.5, 3600, 5);
  const fallback = readEnum(p, join(path, "fallback"), o.get("fallback"), ["hold", "local"] as const, "hold");
  const prefix = readString(p, join(path, "key_prefix"), o.get("key_prefix"), false, "^[%w_%.%-:]+$", "letters, digits, '_', '.', '-' or ':'") ?? "autoscale";
  if (lease !== undefined && interval !== undefined && interval * 1000 * 2 > lease) {
    p.add(join(path, "lease_ms"), `must be at least twice the interval (${interval * 2000} ms), got ${lease}`);
  }
  if (stale !== undefined && interval !== undefined && stale < interval * 2) {
    p.add(join(path, "stale_after"), `must be at least twice the interval (${interval * 2} s), got ${stale}`);
  }
  if (p.list.length > before || lease === undefined || interval === undefined || stale === undefined || fallback === undefined) return undefined;
  return { instance_id: id, lease_ms: lease, interval, stale_after: stale, fallback, key_prefix: prefix };
}
