// The walking skeleton's control loop: on one worker, every `scaling.interval` seconds per
// pool, compares the pool's request rate with the per-replica target and sends a scale signal
// to the webhook when the desired replica count differs from the current one. A failed signal
// is logged and sent again on the next evaluation.
import * as cjson from "cjson.safe";
import { PoolRuntime, METRICS_DICT, STARTED_KEY, STATE_DICT } from "./state";
import { readWindow } from "../metrics/counters";
import { decideReplicas } from "../policy/simple_target";
import { request } from "../net/http";

export interface DecisionRecord {
  pool: string;
  current: number;
  desired: number;
  reason: string;
  timestamp: number;
  decision_id: string;
  /** "sent", "unchanged", "dry_run" or "failed". */
  outcome: string;
  error?: string;
}

let sequence = 0;

/** Replicas the gateway currently sends traffic to. */
function currentReplicas(pool: PoolRuntime): number {
  let n = 0;
  for (const p of pool.peers) if (p.configuredWeight > 0) n++;
  return n;
}

function poolRate(pool: PoolRuntime, span: number, now: number): number {
  const dict = ngx.shared[METRICS_DICT]!;
  let rate = 0;
  for (const p of pool.peers) rate += readWindow(dict, p.series, now, span).rate;
  return rate;
}

export function evaluatePool(pool: PoolRuntime, now: number): DecisionRecord | undefined {
  const scaling = pool.config.scaling;
  if (scaling === undefined) return undefined;
  const rate = poolRate(pool, scaling.window, now);
  const stateDict = ngx.shared[STATE_DICT]!;
  // Until the window has seen a full span of traffic, its rate is too low: deciding on it would
  // send a spurious scale-in right after start-up.
  const started = stateDict.get(STARTED_KEY)[0] as number | undefined;
  if (started === undefined || now - started < scaling.window) return undefined;
  const d = decideReplicas(currentReplicas(pool), rate, scaling.target.value, scaling.min_replicas, scaling.max_replicas);
  sequence++;
  const record: DecisionRecord = {
    pool: pool.config.name,
    current: d.current,
    desired: d.desired,
    reason: d.reason,
    timestamp: now,
    decision_id: string.format("%s-%d-%d", pool.config.name, math.floor(now * 1000), sequence),
    outcome: "unchanged",
  };
  const sentKey = `scale|sent|${pool.config.name}`;
  const lastSent = stateDict.get(sentKey)[0];
  if (d.desired !== d.current && lastSent !== d.desired) {
    const actuator = scaling.actuator;
    if (actuator.dry_run) {
      record.outcome = "dry_run";
    } else {
      const [body] = cjson.encode({ pool: record.pool, current: record.current, desired: record.desired, reason: record.reason, decision_id: record.decision_id, timestamp: record.timestamp });
      const headers = new LuaTable<string, string>();
      headers.set("Content-Type", "application/json");
      const [res, err] = request({ method: "POST", url: actuator.url, headers, body, timeoutMs: actuator.timeout_ms, maxBodyBytes: 65536 });
      if (res === undefined) {
        record.outcome = "failed";
        record.error = err;
      } else if (res.status < 200 || res.status > 299) {
        record.outcome = "failed";
        record.error = string.format("webhook answered HTTP %d", res.status);
      } else {
        record.outcome = "sent";
        stateDict.set(sentKey, d.desired);
      }
    }
  } else if (d.desired === d.current) {
    // Back at the current size: a later change must be signalled again.
    stateDict.delete(sentKey);
  }
  const [line] = cjson.encode(record);
  stateDict.set(`scale|last|${pool.config.name}`, line ?? "");
  ngx.log(record.outcome === "failed" ? ngx.ERR : ngx.NOTICE, "autoscale decision ", line);
  return record;
}

export function lastDecision(pool: string): unknown {
  const line = ngx.shared[STATE_DICT]!.get(`scale|last|${pool}`)[0];
  if (type(line) !== "string") return undefined;
  return cjson.decode(line as string)[0];
}
