// Configuration of admission control, next to the code it configures (Kong schema habit), in
// the style of src/config/check.ts. The gateway's config validator calls:
// - validateAdmission(p, path, raw)   for a route's "limits" section  -> RouteAdmission
// - validatePoolConcurrency(p, path, raw) for a pool's "concurrency"  -> PoolConcurrency
// - validateBreaker(p, path, raw)     for a pool's or route's "breaker" -> BreakerOptions
// Each returns undefined (and records problems) when the section is invalid or absent.
import { Json, Problems, index, join, readArray, readBoolean, readEnum, readInteger, readNumber, readObject, readString, rejectUnknownKeys } from "../config/check";
import * as tokenBucket from "./token_bucket";
import * as slidingWindow from "./sliding_window";
import * as gradient from "./gradient";
import * as aimd from "./aimd";
import * as vegas from "./vegas";
import { RateLimiter } from "./rate";
import { ConcurrencyLimit } from "./concurrency";
import { Priority, ShedPolicy, newShedPolicy } from "./shedding";
import { BreakerOptions } from "./breaker";
import { AdaptiveRateOptions } from "./adaptive_rate";
import { policyValue } from "./headers";

export const PRIORITIES = ["critical", "normal", "best_effort"] as const;
export const RATE_ALGORITHMS = ["token_bucket", "sliding_window"] as const;
export const KEY_SOURCES = ["route", "header", "arg", "client_address", "jwt_claim"] as const;
export const SCOPES = ["local", "cluster"] as const;
export const CONCURRENCY_ALGORITHMS = ["gradient", "aimd", "vegas"] as const;
/** Which answers carry the RateLimit-* headers: refusals only, or every answer of a limited route. */
export const RATE_HEADERS = ["refused", "all"] as const;

export interface KeySource {
  from: (typeof KEY_SOURCES)[number];
  /** Header, argument or claim name; "" for route and client_address. */
  name: string;
}

export interface RateRule {
  limiter: RateLimiter;
  key: KeySource;
  scope: (typeof SCOPES)[number];
  /** RateLimit-Policy header value, built once. */
  policy: string;
}

export interface RouteAdmission {
  priority: Priority;
  rate: RateRule[];
  headers: (typeof RATE_HEADERS)[number];
  adaptive?: AdaptiveRateOptions;
}

export interface PoolConcurrency {
  limit: ConcurrencyLimit;
  shedding: ShedPolicy;
}

const MAX_RATE = 1e7;

function readKey(p: Problems, path: string, v: Json): KeySource | undefined {
  if (v === undefined) return { from: "route", name: "" };
  const o = readObject(p, path, v, true);
  if (o === undefined) return undefined;
  rejectUnknownKeys(p, path, o, ["from", "name"]);
  const from = readEnum(p, join(path, "from"), o.get("from"), KEY_SOURCES, undefined);
  if (from === undefined) return undefined;
  const needsName = from === "header" || from === "arg" || from === "jwt_claim";
  if (!needsName) {
    if (o.get("name") !== undefined) p.add(join(path, "name"), `not used with from = ${from}`);
    return { from, name: "" };
  }
  const name = readString(p, join(path, "name"), o.get("name"), true, "^[%w_%-%.]+$", "a header, argument or claim name");
  if (name === undefined) return undefined;
  return { from, name: from === "header" ? string.lower(name) : name };
}

function readRule(p: Problems, path: string, v: Json): RateRule | undefined {
  const o = readObject(p, path, v, true);
  if (o === undefined) return undefined;
  const algorithm = readEnum(p, join(path, "algorithm"), o.get("algorithm"), RATE_ALGORITHMS, undefined);
  if (algorithm === undefined) return undefined;
  const key = readKey(p, join(path, "key"), o.get("key"));
  const scope = readEnum(p, join(path, "scope"), o.get("scope"), SCOPES, "local");
  const dryRun = readBoolean(p, join(path, "dry_run"), o.get("dry_run"), false);
  let limiter: RateLimiter | undefined;
  let policy = "";
  if (algorithm === "token_bucket") {
    rejectUnknownKeys(p, path, o, ["algorithm", "key", "scope", "dry_run", "rate", "burst"]);
    const rate = readNumber(p, join(path, "rate"), o.get("rate"), 1e-6, MAX_RATE, undefined);
    const burst = readInteger(p, join(path, "burst"), o.get("burst"), 1, 1e9, rate !== undefined ? math.max(1, math.ceil(rate)) : 1);
    if (rate !== undefined && burst !== undefined) {
      limiter = tokenBucket.newTokenBucket(rate, burst, dryRun);
      policy = policyValue(burst, burst / rate);
    }
  } else {
    rejectUnknownKeys(p, path, o, ["algorithm", "key", "scope", "dry_run", "limit", "window"]);
    const limit = readInteger(p, join(path, "limit"), o.get("limit"), 1, 1e9, undefined);
    const window = readNumber(p, join(path, "window"), o.get("window"), 0.1, 86400, 60);
    if (limit !== undefined && window !== undefined) {
      limiter = slidingWindow.newSlidingWindow(limit, window, dryRun);
      policy = policyValue(limit, window);
    }
  }
  if (limiter === undefined || key === undefined || scope === undefined) return undefined;
  return { limiter, key, scope, policy };
}

function readAdaptive(p: Problems, path: string, v: Json): AdaptiveRateOptions | undefined {
  const o = readObject(p, path, v, false);
  if (o === undefined) return undefined;
  rejectUnknownKeys(p, path, o, ["min_rate", "max_rate", "error_ratio", "latency_ms", "decrease", "increase_per_second", "cooldown"]);
  const minRate = readNumber(p, join(path, "min_rate"), o.get("min_rate"), 1e-6, MAX_RATE, undefined);
  const maxRate = readNumber(p, join(path, "max_rate"), o.get("max_rate"), 1e-6, MAX_RATE, undefined);
  const errorRatio = readNumber(p, join(path, "error_ratio"), o.get("error_ratio"), 0, 1, 0.05);
  const latencyMs = readNumber(p, join(path, "latency_ms"), o.get("latency_ms"), 1, 600000, 1000);
  const decrease = readNumber(p, join(path, "decrease"), o.get("decrease"), 0.05, 0.99, 0.7);
  const increase = readNumber(p, join(path, "increase_per_second"), o.get("increase_per_second"), 0, MAX_RATE, maxRate !== undefined ? maxRate / 60 : 1);
  const cooldown = readNumber(p, join(path, "cooldown"), o.get("cooldown"), 0, 3600, 2);
  if (minRate !== undefined && maxRate !== undefined && minRate > maxRate) {
    p.add(join(path, "min_rate"), `must not exceed max_rate (${maxRate}), got ${minRate}`);
    return undefined;
  }
  if (minRate === undefined || maxRate === undefined || errorRatio === undefined || latencyMs === undefined || decrease === undefined || increase === undefined || cooldown === undefined) return undefined;
  return { minRate, maxRate, errorRatioTarget: errorRatio, latencyTarget: latencyMs / 1000, decrease, increasePerSecond: increase, cooldown };
}

/** A route's "limits" section: priority, rate rules (combined in order) and adaptive rate. */
export function validateAdmission(p: Problems, path: string, raw: Json): RouteAdmission | undefined {
  const o = readObject(p, path, raw, false);
  if (o === undefined) return undefined;
  const before = p.list.length;
  rejectUnknownKeys(p, path, o, ["priority", "rate", "headers", "adaptive"]);
  const priority = readEnum(p, join(path, "priority"), o.get("priority"), PRIORITIES, "normal");
  const headers = readEnum(p, join(path, "headers"), o.get("headers"), RATE_HEADERS, "refused");
  const rules: RateRule[] = [];
  const ratePath = join(path, "rate");
  const rawRules = readArray(p, ratePath, o.get("rate"), false);
  if (rawRules !== undefined) {
    if (rawRules.length > 8) p.add(ratePath, `expected at most 8 rate rules, got ${rawRules.length}`);
    for (let i = 0; i < rawRules.length; i++) {
      const rule = readRule(p, index(ratePath, i), rawRules[i]);
      if (rule !== undefined) rules.push(rule);
    }
  }
  const adaptive = readAdaptive(p, join(path, "adaptive"), o.get("adaptive"));
  if (adaptive !== undefined) {
    let hasBucket = false;
    for (const r of rules) if (r.limiter.kind === "token_bucket" && r.key.from === "route") hasBucket = true;
    if (!hasBucket) p.add(join(path, "adaptive"), "needs a token_bucket rate rule keyed by route to adjust");
  }
  if (p.list.length > before || priority === undefined || headers === undefined) return undefined;
  return { priority, rate: rules, headers, adaptive };
}

/** A pool's "concurrency" section: the adaptive limit and how it sheds by priority. */
export function validatePoolConcurrency(p: Problems, path: string, raw: Json): PoolConcurrency | undefined {
  const o = readObject(p, path, raw, false);
  if (o === undefined) return undefined;
  const before = p.list.length;
  const algorithm = readEnum(p, join(path, "algorithm"), o.get("algorithm"), CONCURRENCY_ALGORITHMS, "gradient");
  const common = ["algorithm", "initial_limit", "min_limit", "max_limit", "smoothing", "shedding", "queue"];
  const extra =
    algorithm === "gradient" ? ["buffer", "sample_interval_ms", "min_rtt_interval", "min_rtt_samples"] : algorithm === "aimd" ? ["backoff_ratio", "timeout_ms"] : ["probe_multiplier"];
  const known: string[] = [];
  for (const k of common) known.push(k);
  for (const k of extra) known.push(k);
  rejectUnknownKeys(p, path, o, known);
  const minLimit = readInteger(p, join(path, "min_limit"), o.get("min_limit"), 1, 1e6, 4);
  const maxLimit = readInteger(p, join(path, "max_limit"), o.get("max_limit"), 1, 1e6, 1000);
  const initial = readInteger(p, join(path, "initial_limit"), o.get("initial_limit"), 1, 1e6, 20);
  const smoothing = readNumber(p, join(path, "smoothing"), o.get("smoothing"), 0.01, 1, algorithm === "gradient" ? 1 : 0.5);
  if (minLimit !== undefined && maxLimit !== undefined && initial !== undefined && (minLimit > maxLimit || initial < minLimit || initial > maxLimit)) {
    p.add(path, `expected min_limit <= initial_limit <= max_limit, got ${minLimit}, ${initial}, ${maxLimit}`);
  }

  let be = 0.5;
  let normal = 0.9;
  const sh = readObject(p, join(path, "shedding"), o.get("shedding"), false);
  if (sh !== undefined) {
    const sp = join(path, "shedding");
    rejectUnknownKeys(p, sp, sh, ["best_effort", "normal"]);
    be = readNumber(p, join(sp, "best_effort"), sh.get("best_effort"), 0, 1, 0.5) ?? be;
    normal = readNumber(p, join(sp, "normal"), sh.get("normal"), 0, 1, 0.9) ?? normal;
    if (be > normal) p.add(join(sp, "best_effort"), `must not exceed normal (${normal}), got ${be}`);
  }
  let queueSize = 0;
  let queueTimeout = 0.5;
  const q = readObject(p, join(path, "queue"), o.get("queue"), false);
  if (q !== undefined) {
    const qp = join(path, "queue");
    rejectUnknownKeys(p, qp, q, ["size", "timeout_ms"]);
    queueSize = readInteger(p, join(qp, "size"), q.get("size"), 0, 100000, 100) ?? 0;
    queueTimeout = (readInteger(p, join(qp, "timeout_ms"), q.get("timeout_ms"), 1, 60000, 500) ?? 500) / 1000;
  }

  let limit: ConcurrencyLimit | undefined;
  if (algorithm !== undefined && minLimit !== undefined && maxLimit !== undefined && initial !== undefined && smoothing !== undefined) {
    if (algorithm === "gradient") {
      const buffer = readNumber(p, join(path, "buffer"), o.get("buffer"), 0, 10, 0.25);
      const interval = readInteger(p, join(path, "sample_interval_ms"), o.get("sample_interval_ms"), 1, 60000, 100);
      const minRttInterval = readNumber(p, join(path, "min_rtt_interval"), o.get("min_rtt_interval"), 1, 86400, 60);
      const minRttSamples = readInteger(p, join(path, "min_rtt_samples"), o.get("min_rtt_samples"), 1, 100000, 50);
      if (buffer !== undefined && interval !== undefined && minRttInterval !== undefined && minRttSamples !== undefined) {
        limit = gradient.newLimit({ initialLimit: initial, minLimit, maxLimit, smoothing, buffer, sampleInterval: interval / 1000, minRttInterval, minRttSamples });
      }
    } else if (algorithm === "aimd") {
      const backoff = readNumber(p, join(path, "backoff_ratio"), o.get("backoff_ratio"), 0.05, 0.99, 0.9);
      const timeout = readInteger(p, join(path, "timeout_ms"), o.get("timeout_ms"), 1, 600000, 5000);
      if (backoff !== undefined && timeout !== undefined) limit = aimd.newLimit({ initialLimit: initial, minLimit, maxLimit, backoffRatio: backoff, timeout: timeout / 1000 });
    } else {
      const probe = readInteger(p, join(path, "probe_multiplier"), o.get("probe_multiplier"), 1, 100000, 30);
      if (probe !== undefined) limit = vegas.newLimit({ initialLimit: initial, minLimit, maxLimit, smoothing, probeMultiplier: probe });
    }
  }
  if (p.list.length > before || limit === undefined) return undefined;
  return { limit, shedding: newShedPolicy(be, normal, queueSize, queueTimeout) };
}

/** A pool's or route's "breaker" section. */
export function validateBreaker(p: Problems, path: string, raw: Json): BreakerOptions | undefined {
  const o = readObject(p, path, raw, false);
  if (o === undefined) return undefined;
  const before = p.list.length;
  rejectUnknownKeys(p, path, o, ["error_ratio", "min_requests", "window", "consecutive_failures", "open_seconds", "half_open_probes", "close_after"]);
  const errorRatio = readNumber(p, join(path, "error_ratio"), o.get("error_ratio"), 0.01, 1, 0.5);
  const minRequests = readInteger(p, join(path, "min_requests"), o.get("min_requests"), 1, 1e6, 20);
  const window = readNumber(p, join(path, "window"), o.get("window"), 1, 3600, 10);
  const consecutive = readInteger(p, join(path, "consecutive_failures"), o.get("consecutive_failures"), 0, 1e6, 5);
  const openSeconds = readNumber(p, join(path, "open_seconds"), o.get("open_seconds"), 0.1, 3600, 30);
  const probes = readInteger(p, join(path, "half_open_probes"), o.get("half_open_probes"), 1, 1000, 3);
  const closeAfter = readInteger(p, join(path, "close_after"), o.get("close_after"), 1, 1000, 3);
  if (p.list.length > before || errorRatio === undefined || minRequests === undefined || window === undefined || consecutive === undefined || openSeconds === undefined || probes === undefined || closeAfter === undefined) return undefined;
  return { errorRatio, minRequests, window, consecutiveFailures: consecutive, openSeconds, halfOpenProbes: probes, closeAfter };
}
