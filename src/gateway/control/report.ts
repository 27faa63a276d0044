// What the control loop tells the outside: one JSON log line per decision, action and failure
// (secrets redacted by the caller), counters of actions and failures in the state dict (shared
// by the workers, so any worker can answer /metrics and the status page), the last outcome of
// each pool, and the cluster state.
import * as cjson from "cjson.safe";
import { STATE_DICT } from "../state";

/**
 * Outcomes counted per pool: autoscale_scale_actions_total{pool,outcome}. "read_failed" counts
 * failed reads of the current replica count (the actuator's other call).
 */
export const OUTCOMES = ["sent", "failed", "dry_run", "breaker_open", "fenced", "retried", "read_failed"] as const;
export type Outcome = (typeof OUTCOMES)[number];

const COUNTER_PREFIX = "ctl|count|";
const LAST_PREFIX = "ctl|last|";
const DECISION_PREFIX = "ctl|decision|";
export const CLUSTER_KEY = "ctl|cluster";

/** Writes one structured line: `autoscale_event {"event":...}`. */
export function logEvent(level: NgxLogLevel, doc: unknown): string {
  const [line] = cjson.encode(doc);
  ngx.log(level, "autoscale_event ", line ?? "{}");
  return line ?? "{}";
}

export function count(pool: string, outcome: Outcome): void {
  ngx.shared[STATE_DICT]!.incr(`${COUNTER_PREFIX}${pool}|${outcome}`, 1, 0);
}

function counter(pool: string, outcome: string): number {
  const v = ngx.shared[STATE_DICT]!.get(`${COUNTER_PREFIX}${pool}|${outcome}`)[0];
  return type(v) === "number" ? (v as number) : 0;
}

export function counters(pool: string): LuaTable<string, number> {
  const out = new LuaTable<string, number>();
  for (const o of OUTCOMES) out.set(o, counter(pool, o));
  return out;
}

/** The last action or failure of a pool (a JSON line kept for the status page). */
export function setLastAction(pool: string, line: string): void {
  ngx.shared[STATE_DICT]!.set(`${LAST_PREFIX}${pool}`, line);
}

export function setLastDecision(pool: string, line: string): void {
  ngx.shared[STATE_DICT]!.set(`${DECISION_PREFIX}${pool}`, line);
}

function decoded(key: string): unknown {
  const line = ngx.shared[STATE_DICT]!.get(key)[0];
  if (type(line) !== "string") return undefined;
  return cjson.decode(line as string)[0];
}

export function lastAction(pool: string): unknown {
  return decoded(`${LAST_PREFIX}${pool}`);
}

export function lastDecision(pool: string): unknown {
  return decoded(`${DECISION_PREFIX}${pool}`);
}

export function clusterState(): unknown {
  return decoded(CLUSTER_KEY);
}

function label(v: string): string {
  return string.gsub(string.gsub(string.gsub(v, "\\", "\\\\")[0], '"', '\\"')[0], "\n", "\\n")[0];
}

/**
 * Prometheus text lines of the control loop, for the metrics capability's /metrics:
 * autoscale_scale_actions_total{pool,outcome}, autoscale_desired_replicas{pool},
 * autoscale_control_mode{mode} (1 for the current mode), autoscale_leader (1 when this instance
 * leads or decides alone).
 */
export function prometheusLines(poolNames: string[]): string[] {
  const lines: string[] = [
    "# HELP autoscale_scale_actions_total Scale actions by outcome (sent, failed, dry_run, breaker_open, fenced, retried; read_failed: failed reads of the current count).",
    "# TYPE autoscale_scale_actions_total counter",
  ];
  for (const pool of poolNames) {
    for (const o of OUTCOMES) lines.push(string.format('autoscale_scale_actions_total{pool="%s",outcome="%s"} %d', label(pool), o, counter(pool, o)));
  }
  lines.push("# HELP autoscale_desired_replicas Replicas the last decision asked for.", "# TYPE autoscale_desired_replicas gauge");
  for (const pool of poolNames) {
    const d = lastDecision(pool) as { desired?: number } | undefined;
    if (d !== undefined && type(d.desired) === "number") lines.push(string.format('autoscale_desired_replicas{pool="%s"} %d', label(pool), d.desired!));
  }
  const c = clusterState() as { mode?: string; acting?: boolean } | undefined;
  lines.push("# HELP autoscale_control_mode The control loop's mode (single, leader, standby, degraded).", "# TYPE autoscale_control_mode gauge");
  for (const m of ["single", "leader", "standby", "degraded"]) {
    lines.push(string.format('autoscale_control_mode{mode="%s"} %d', m, c !== undefined && c.mode === m ? 1 : 0));
  }
  lines.push("# HELP autoscale_leader 1 when this instance sends scale signals.", "# TYPE autoscale_leader gauge");
  lines.push(string.format("autoscale_leader %d", c !== undefined && c.acting === true ? 1 : 0));
  return lines;
}
