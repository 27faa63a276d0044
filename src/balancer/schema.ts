// The balancer options of a pool: shape, defaults and validation (Kong habit: the schema sits
// next to the code it configures). `validateBalancer` takes the pool's "balancer" value: either
// an algorithm name ("ewma") or an object with the options below.
import { Json, Problems, index, join, readArray, readBoolean, readEnum, readInteger, readNumber, readObject, readString, rejectUnknownKeys } from "../config/check";
import { HealthCheckOptions } from "./health";
import { OUTLIER_DEFAULTS, OutlierOptions } from "./outlier";
import { SLOW_START_DEFAULTS, SlowStartOptions } from "./slow_start";

export const ALGORITHMS = ["round_robin", "least_request", "ewma"] as const;
export type AlgorithmName = (typeof ALGORITHMS)[number];

export interface BalancerOptions {
  algorithm: AlgorithmName;
  /** Peak-EWMA decay time constant, seconds. */
  tau: number;
  /** Peak-EWMA: the smallest cost a failed try counts as, seconds. */
  failure_penalty: number;
  /** Peak-EWMA: the smallest weight one sample gets in the average (0 = pure time decay). */
  sample_weight: number;
  /** Least-request exponent. */
  bias: number;
  /** Upstream statuses that count as a failed try (besides connect errors and timeouts). */
  failure_statuses: number[];
  /** How many peers one request may try (1 = no retry); the shell calls set_more_tries. */
  tries: number;
  slow_start?: SlowStartOptions;
  /** Undefined when outlier detection is disabled. */
  outlier?: OutlierOptions;
  /** Undefined when there are no active health checks. */
  health_check?: HealthCheckOptions;
}

export const DEFAULT_ALGORITHM: AlgorithmName = "ewma";
export const DEFAULT_FAILURE_STATUSES = [502, 503, 504];

export function defaults(algorithm: AlgorithmName): BalancerOptions {
  return {
    algorithm,
    tau: 10,
    failure_penalty: 1,
    sample_weight: 0.05,
    bias: 1,
    failure_statuses: DEFAULT_FAILURE_STATUSES,
    tries: 2,
    outlier: { ...OUTLIER_DEFAULTS },
  };
}

function readStatuses(p: Problems, path: string, v: Json, min: number, fallback: number[]): number[] | undefined {
  if (v === undefined) return fallback;
  const arr = readArray(p, path, v, true);
  if (arr === undefined) return undefined;
  if (arr.length === 0) {
    p.add(path, "expected at least one status, got an empty array");
    return undefined;
  }
  const out: number[] = [];
  let ok = true;
  for (let i = 0; i < arr.length; i++) {
    const s = readInteger(p, index(path, i), arr[i], min, 599, undefined);
    if (s === undefined) ok = false;
    else out.push(s);
  }
  return ok ? out : undefined;
}

function readSlowStart(p: Problems, path: string, v: Json): SlowStartOptions | undefined {
  const o = readObject(p, path, v, true);
  if (o === undefined) return undefined;
  rejectUnknownKeys(p, path, o, ["window", "aggression", "min_weight"]);
  const window = readNumber(p, join(path, "window"), o.get("window"), 0, 3600, SLOW_START_DEFAULTS.window);
  const aggression = readNumber(p, join(path, "aggression"), o.get("aggression"), 0.01, 100, SLOW_START_DEFAULTS.aggression);
  const minWeight = readNumber(p, join(path, "min_weight"), o.get("min_weight"), 0.001, 1, SLOW_START_DEFAULTS.min_weight);
  if (window === undefined || aggression === undefined || minWeight === undefined) return undefined;
  return { window, aggression, min_weight: minWeight };
}

const OUTLIER_KEYS = [
  "enabled",
  "consecutive_failures",
  "interval",
  "base_ejection_time",
  "max_ejection_time",
  "max_ejection_percent",
  "success_rate_stdev_factor",
  "success_rate_minimum_hosts",
  "success_rate_request_volume",
  "latency_factor",
  "latency_minimum_hosts",
  "latency_request_volume",
];

/** Undefined when detection is switched off ("enabled": false); problems go to `p`. */
function readOutlier(p: Problems, path: string, v: Json): OutlierOptions | undefined {
  const d = OUTLIER_DEFAULTS;
  if (v === undefined) return { ...d };
  const o = readObject(p, path, v, true);
  if (o === undefined) return undefined;
  rejectUnknownKeys(p, path, o, OUTLIER_KEYS);
  const enabled = readBoolean(p, join(path, "enabled"), o.get("enabled"), true);
  // A field that fails validation is reported in `p`; the caller then rejects the whole pool.
  const r: OutlierOptions = {
    consecutive_failures: readInteger(p, join(path, "consecutive_failures"), o.get("consecutive_failures"), 0, 1000, d.consecutive_failures) ?? d.consecutive_failures,
    interval: readNumber(p, join(path, "interval"), o.get("interval"), 0.1, 3600, d.interval) ?? d.interval,
    base_ejection_time: readNumber(p, join(path, "base_ejection_time"), o.get("base_ejection_time"), 0.1, 86400, d.base_ejection_time) ?? d.base_ejection_time,
    max_ejection_time: readNumber(p, join(path, "max_ejection_time"), o.get("max_ejection_time"), 0.1, 86400, d.max_ejection_time) ?? d.max_ejection_time,
    max_ejection_percent: readNumber(p, join(path, "max_ejection_percent"), o.get("max_ejection_percent"), 0, 100, d.max_ejection_percent) ?? d.max_ejection_percent,
    success_rate_stdev_factor:
      readNumber(p, join(path, "success_rate_stdev_factor"), o.get("success_rate_stdev_factor"), 0, 10, d.success_rate_stdev_factor) ?? d.success_rate_stdev_factor,
    success_rate_minimum_hosts:
      readInteger(p, join(path, "success_rate_minimum_hosts"), o.get("success_rate_minimum_hosts"), 1, 10000, d.success_rate_minimum_hosts) ?? d.success_rate_minimum_hosts,
    success_rate_request_volume:
      readInteger(p, join(path, "success_rate_request_volume"), o.get("success_rate_request_volume"), 1, 1e9, d.success_rate_request_volume) ?? d.success_rate_request_volume,
    latency_factor: readNumber(p, join(path, "latency_factor"), o.get("latency_factor"), 0, 1000, d.latency_factor) ?? d.latency_factor,
    latency_minimum_hosts: readInteger(p, join(path, "latency_minimum_hosts"), o.get("latency_minimum_hosts"), 3, 10000, d.latency_minimum_hosts) ?? d.latency_minimum_hosts,
    latency_request_volume: readInteger(p, join(path, "latency_request_volume"), o.get("latency_request_volume"), 1, 1e9, d.latency_request_volume) ?? d.latency_request_volume,
  };
  if (r.latency_factor > 0 && r.latency_factor <= 1) p.add(join(path, "latency_factor"), `expected 0 (off) or a factor above 1, got ${r.latency_factor}`);
  return enabled ? r : undefined;
}

function readHealthCheck(p: Problems, path: string, v: Json): HealthCheckOptions | undefined {
  const o = readObject(p, path, v, true);
  if (o === undefined) return undefined;
  rejectUnknownKeys(p, path, o, ["path", "interval", "unhealthy_interval", "timeout", "expected_statuses", "rise", "fall"]);
  const probePath = readString(p, join(path, "path"), o.get("path") ?? "/", true, "^/[!-~]*$", "a path starting with / (no spaces)");
  const interval = readNumber(p, join(path, "interval"), o.get("interval"), 0.1, 3600, 5);
  const unhealthy = readNumber(p, join(path, "unhealthy_interval"), o.get("unhealthy_interval"), 0.1, 3600, interval ?? 5);
  const timeout = readNumber(p, join(path, "timeout"), o.get("timeout"), 0.001, 60, 1);
  const expected = readStatuses(p, join(path, "expected_statuses"), o.get("expected_statuses"), 100, [200]);
  const rise = readInteger(p, join(path, "rise"), o.get("rise"), 1, 100, 2);
  const fall = readInteger(p, join(path, "fall"), o.get("fall"), 1, 100, 3);
  if (interval !== undefined && timeout !== undefined && timeout > interval) {
    p.add(join(path, "timeout"), `must not exceed interval (${interval}), got ${timeout}`);
    return undefined;
  }
  if (probePath === undefined || interval === undefined || unhealthy === undefined || timeout === undefined || expected === undefined || rise === undefined || fall === undefined) {
    return undefined;
  }
  return { path: probePath, interval, unhealthy_interval: unhealthy, timeout, expected_statuses: expected, rise, fall };
}

/**
 * Validates a pool's "balancer" value at `path`. Records every problem in `p`; returns the
 * options with defaults filled in, or undefined when anything was wrong. Absent means "ewma"
 * with defaults.
 */
export function validateBalancer(p: Problems, path: string, raw: Json): BalancerOptions | undefined {
  if (raw === undefined || type(raw) === "string") {
    const name = readEnum(p, path, raw, ALGORITHMS, DEFAULT_ALGORITHM);
    return name === undefined ? undefined : defaults(name);
  }
  const o = readObject(p, path, raw, true);
  if (o === undefined) return undefined;
  const before = p.list.length;
  rejectUnknownKeys(p, path, o, ["algorithm", "tau", "failure_penalty", "sample_weight", "bias", "failure_statuses", "tries", "slow_start", "outlier", "health_check"]);
  const algorithm = readEnum(p, join(path, "algorithm"), o.get("algorithm"), ALGORITHMS, DEFAULT_ALGORITHM);
  const out = defaults(algorithm ?? DEFAULT_ALGORITHM);
  out.tau = readNumber(p, join(path, "tau"), o.get("tau"), 0.01, 3600, out.tau) ?? out.tau;
  out.failure_penalty = readNumber(p, join(path, "failure_penalty"), o.get("failure_penalty"), 0.001, 60, out.failure_penalty) ?? out.failure_penalty;
  out.sample_weight = readNumber(p, join(path, "sample_weight"), o.get("sample_weight"), 0, 1, out.sample_weight) ?? out.sample_weight;
  out.bias = readNumber(p, join(path, "bias"), o.get("bias"), 0, 10, out.bias) ?? out.bias;
  out.failure_statuses = readStatuses(p, join(path, "failure_statuses"), o.get("failure_statuses"), 400, out.failure_statuses) ?? out.failure_statuses;
  out.tries = readInteger(p, join(path, "tries"), o.get("tries"), 1, 10, out.tries) ?? out.tries;
  if (o.get("slow_start") !== undefined) out.slow_start = readSlowStart(p, join(path, "slow_start"), o.get("slow_start"));
  out.outlier = readOutlier(p, join(path, "outlier"), o.get("outlier"));
  if (o.get("health_check") !== undefined) out.health_check = readHealthCheck(p, join(path, "health_check"), o.get("health_check"));
  if (p.list.length > before) return undefined;
  return out;
}
