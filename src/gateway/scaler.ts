// The walking skeleton's control loop: on one worker, every `scaling.interval` seconds per
// pool, compares the pool's request rate with the per-replica target and sends a scale signal
// to the webhook when the desired replica count differs from the current one. A failed signal
// is logged and sent again on the next evaluation.
import * as cjson from "cjson.safe";
import { PoolRuntime, METRICS_DICT, STARTED_KEY, STATE_DICT } from "./state";
import { readWindow } from "../metrics/counters";
import { decideReplicas } from "../policy/simple_target";
import { request } from "../net/http";
import { ActuatorConfig } from "../actuators/schema";
import { actuatorFor } from "../actuators/registry";
import { newSecretCache, resolveCredentials, secretsOf, systemIo } from "../actuators/credentials";
import { redact } from "../actuators/redact";

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

const secretCache = newSecretCache();

/** Sends one scale signal through the pool's actuator; returns an error message on failure. */
function signal(cfg: ActuatorConfig, record: DecisionRecord, now: number): string | undefined {
  const [actuator, aerr] = actuatorFor(cfg);
  if (actuator === undefined) return aerr;
  const [creds, cerr] = resolveCredentials(cfg, systemIo(), secretCache, now);
  if (creds === undefined) return cerr;
  const decision = { pool: record.pool, id: record.decision_id, reason: record.reason, current: record.current };
  const [spec, berr] = actuator.buildSet(cfg, creds, record.desired, now, decision);
  if (spec === undefined) return berr;
  const [res, herr] = request({ method: spec.method, url: spec.url, headers: spec.headers, body: spec.body, timeoutMs: cfg.timeout_ms, maxBodyBytes: 1048576 });
  if (res === undefined) return redact(herr ?? "request failed", secretsOf(creds));
  const [ok, perr] = actuator.parseSet(res.status, res.headers, res.body);
  return ok ? undefined : redact(perr ?? "refused", secretsOf(creds));
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
  if (scaling.target === undefined) return undefined;
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
    if (scaling.actuator.dry_run) {
      record.outcome = "dry_run";
    } else {
      const err = signal(scaling.actuator, record, now);
      if (err === undefined) {
        record.outcome = "sent";
        stateDict.set(sentKey, d.desired);
      } else {
        record.outcome = "failed";
        record.error = err;
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

function lastDecision(pool: string): unknown {
  const line = ngx.shared[STATE_DICT]!.get(`scale|last|${pool}`)[0];
  if (type(line) !== "string") return undefined;
  return cjson.decode(line as string)[0];
}

export function scalingStatus(pool: PoolRuntime): unknown {
  const scaling = pool.config.scaling;
  if (scaling === undefined) return undefined;
  return {
    min_replicas: scaling.min_replicas,
    max_replicas: scaling.max_replicas,
    target: scaling.target,
    interval: scaling.interval,
    actuator: scaling.actuator.type,
    last_decision: lastDecision(pool.config.name),
  };
}
