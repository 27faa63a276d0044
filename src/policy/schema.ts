// The scaling policy section of a pool (`pools.<name>.scaling`): its shape, its defaults and
// its validation. It extends the gateway config's scaling section (min_replicas, max_replicas,
// interval, window, target, actuator keep their meaning) with target tracking on several
// metrics, HPA behavior, step scaling, a composite score, route cost weights, prediction and
// scale to zero. Pure (no ngx). The JSON Schema fragment is src/policy/policy.schema.json.
import {
  Json,
  JsonObject,
  Problems,
  index,
  join,
  readArray,
  readBoolean,
  readEnum,
  readInteger,
  readNumber,
  readObject,
  readString,
  rejectUnknownKeys,
} from "../config/check";

export const POLICY_METRICS = ["requests_per_second", "in_flight", "p99_latency_ms", "error_ratio", "external"] as const;
export type PolicyMetric = (typeof POLICY_METRICS)[number];

/**
 * "average": the metric is a pool total and the target is per replica (HPA AverageValue):
 * desired = ceil(total / target). "value": the target is for the value itself (HPA Value):
 * desired = ceil(ready x value / target).
 */
export type TargetKind = "average" | "value";

export interface MetricTarget {
  metric: PolicyMetric;
  /** The external metric's name (metric "external" only). */
  name?: string;
  value: number;
  kind: TargetKind;
}

export interface RatePolicy {
  type: "pods" | "percent";
  value: number;
  /** Seconds. */
  period: number;
}

export interface ScalingRules {
  stabilization_window: number;
  /**
   * No change in this direction while the usage ratio is within this share of 1 (Kubernetes
   * 1.33 behavior.scaleUp/scaleDown.tolerance); defaults to the policy's `tolerance`.
   */
  tolerance: number;
  select_policy: "max" | "min" | "disabled";
  policies: RatePolicy[];
}

export interface StepAdjustment {
  /** Bounds on (metric - threshold); undefined is minus or plus infinity. */
  lower?: number;
  upper?: number;
  adjustment: number;
}

export interface StepConfig {
  metric: PolicyMetric;
  name?: string;
  threshold: number;
  adjustment_type: "change_in_capacity" | "percent_change_in_capacity" | "exact_capacity";
  steps: StepAdjustment[];
  min_adjustment_magnitude: number;
  /** Seconds after a step scale-in before the next step scale-in. */
  cooldown: number;
  /** Seconds a step scale-out counts as in progress (new replicas warming up). */
  warmup: number;
}

export interface CompositeTerm {
  metric: PolicyMetric;
  name?: string;
  weight: number;
  /** The metric's own target: the term contributes weight x value / target. */
  value: number;
  kind: TargetKind;
}

export interface CompositeConfig {
  /** The score the pool should sit at (1 = every term on its target). */
  target: number;
  terms: CompositeTerm[];
}

export interface PredictiveConfig {
  enabled: boolean;
  /** Requests per second one replica should carry at the forecast (per-replica target). */
  target: number;
  /** Seconds from a scale signal until a new replica serves. */
  provision_delay: number;
  /** Extra seconds of look-ahead on top of the provisioning delay. */
  buffer: number;
  /** Minutes in a season (1440: daily). */
  season: number;
  alpha: number;
  beta: number;
  gamma: number;
  /** Capacity for forecast + margin x the forecast's typical error (0: the point forecast). */
  margin: number;
  /**
   * When above 0, the uncertainty term is instead this quantile of the forecast's measured
   * errors at its own horizon over the last `error_window` minutes (0.95: capacity for the
   * forecast plus an error exceeded one minute in twenty). Replaces `margin`.
   */
  quantile: number;
  /** Minutes of measured forecast errors the quantile is taken over. */
  error_window: number;
  /**
   * "holt_winters": trend + season (needs a season of history); "level": the smoothed recent
   * per-minute level only (exponential smoothing with `alpha`), ready after one minute.
   */
  model: "holt_winters" | "level";
  /**
   * holt_winters before a season of history: "none" forecasts nothing (as AWS predictive scaling); "level"
   * forecasts the smoothed recent per-minute level (Holt-Winters' level without the season).
   */
  warm_up: "none" | "level";
  /**
   * An external forecaster: the name of a source in `sources` (e.g. a json_url source with the
   * forecaster's URL) whose value is the request rate expected at now + provision_delay + buffer.
   * It replaces the model while it has a fresh value; the model stands in when it has none.
   */
  forecast_source?: string;
}

export interface TrendConfig {
  enabled: boolean;
  /** Requests per second one replica should carry at the projected rate. */
  target: number;
  /** Seconds the current ramp is projected ahead (the provisioning delay plus the metric's lag). */
  horizon: number;
  /** Complete minutes that must each rise for a ramp to count (the smallest rise is projected). */
  minutes: number;
  /** Largest per-minute growth factor projected. */
  max_growth: number;
}

export interface ScaleToZeroConfig {
  enabled: boolean;
  /** Seconds without traffic above the activation threshold before scaling to zero. */
  idle: number;
  /** Requests per second above which a pool at zero wakes up (and counts as busy). */
  activation: number;
  /** Seconds a request to the pool waits for its first serving peer before a 503 (0: at once). */
  hold_timeout: number;
}

export interface PolicyConfig {
  min_replicas: number;
  max_replicas: number;
  interval: number;
  window: number;
  /** The first target-tracking metric, as the gateway config always had it (if any). */
  target?: MetricTarget;
  /** Every target-tracking metric (target first); the largest recommendation wins. */
  metrics: MetricTarget[];
  tolerance: number;
  behavior: { scale_up: ScalingRules; scale_down: ScalingRules };
  step?: StepConfig;
  composite?: CompositeConfig;
  /** Per-route request cost weights: requests_per_second becomes the cost-weighted sum. */
  route_costs?: LuaTable<string, number>;
  default_route_cost: number;
  predictive?: PredictiveConfig;
  trend?: TrendConfig;
  scale_to_zero?: ScaleToZeroConfig;
}

export const POLICY_KEYS = [
  "min_replicas",
  "max_replicas",
  "interval",
  "window",
  "target",
  "actuator",
  "metrics",
  "tolerance",
  "behavior",
  "step",
  "composite",
  "route_costs",
  "default_route_cost",
  "predictive",
  "trend",
  "scale_to_zero",
] as const;

const NAME_PATTERN = "^[%w_%.%-:/]+$";
const NAME_HELP = "a metric name of letters, digits, '_', '.', '-', ':' or '/'";

/** Default kind: pool totals are tracked per replica, the rest as values. */
export function defaultKind(metric: PolicyMetric): TargetKind {
  return metric === "requests_per_second" || metric === "in_flight" ? "average" : "value";
}

/** The metric, its external name and its kind, shared by targets, steps and composite terms. */
function readMetricRef(p: Problems, path: string, o: JsonObject): LuaMultiReturn<[PolicyMetric | undefined, string | undefined, TargetKind | undefined]> {
  const metric = readEnum(p, join(path, "metric"), o.get("metric"), POLICY_METRICS, undefined);
  let name: string | undefined;
  if (metric === "external") {
    name = readString(p, join(path, "name"), o.get("name"), true, NAME_PATTERN, NAME_HELP);
  } else if (o.get("name") !== undefined) {
    p.add(join(path, "name"), `only metric "external" takes a name, got metric ${string.format("%q", tostring(metric))}`);
  }
  const kind = metric === undefined ? undefined : readEnum(p, join(path, "kind"), o.get("kind"), ["average", "value"] as const, defaultKind(metric));
  return $multi(metric, name, kind);
}

function readTarget(p: Problems, path: string, v: Json): MetricTarget | undefined {
  const o = readObject(p, path, v, true);
  if (o === undefined) return undefined;
  rejectUnknownKeys(p, path, o, ["metric", "name", "value", "kind"]);
  if (o.get("metric") === undefined) o.set("metric", "requests_per_second");
  const [metric, name, kind] = readMetricRef(p, path, o);
  const value = readNumber(p, join(path, "value"), o.get("value"), 1e-9, 1e12, undefined);
  if (metric === undefined || value === undefined || kind === undefined) return undefined;
  if (metric === "external" && name === undefined) return undefined;
  return { metric, name, value, kind };
}

function readRules(p: Problems, path: string, v: Json, up: boolean, defaultTolerance: number): ScalingRules | undefined {
  const o = readObject(p, path, v, false) ?? new LuaTable<string, Json>();
  rejectUnknownKeys(p, path, o, ["stabilization_window", "select_policy", "policies", "tolerance"]);
  const window = readInteger(p, join(path, "stabilization_window"), o.get("stabilization_window"), 0, 3600, up ? 0 : 300);
  const tolerance = readNumber(p, join(path, "tolerance"), o.get("tolerance"), 0, 1, defaultTolerance);
  const select = readEnum(p, join(path, "select_policy"), o.get("select_policy"), ["max", "min", "disabled"] as const, "max");
  let policies: RatePolicy[] | undefined;
  const pp = join(path, "policies");
  if (o.get("policies") === undefined) {
    // The HPA defaults: up by max(4 pods, 100 %) per 15 s, down by 100 % per 15 s.
    policies = up
      ? [
          { type: "pods", value: 4, period: 15 },
          { type: "percent", value: 100, period: 15 },
        ]
      : [{ type: "percent", value: 100, period: 15 }];
  } else {
    const arr = readArray(p, pp, o.get("policies"), true);
    if (arr !== undefined) {
      if (arr.length === 0) p.add(pp, "expected at least one policy, got an empty array");
      policies = [];
      for (let i = 0; i < arr.length; i++) {
        const ip = index(pp, i);
        const r = readObject(p, ip, arr[i], true);
        if (r === undefined) {
          policies = undefined;
          continue;
        }
        rejectUnknownKeys(p, ip, r, ["type", "value", "period"]);
        const kind = readEnum(p, join(ip, "type"), r.get("type"), ["pods", "percent"] as const, undefined);
        const value = readInteger(p, join(ip, "value"), r.get("value"), 1, 100000, undefined);
        const period = readInteger(p, join(ip, "period"), r.get("period"), 1, 1800, undefined);
        if (kind === undefined || value === undefined || period === undefined) {
          policies = undefined;
          continue;
        }
        if (policies !== undefined) policies.push({ type: kind, value, period });
      }
      if (arr.length === 0) policies = undefined;
    }
  }
  if (window === undefined || select === undefined || policies === undefined || tolerance === undefined) return undefined;
  return { stabilization_window: window, tolerance, select_policy: select, policies };
}

function readOptionalNumber(p: Problems, path: string, v: Json): LuaMultiReturn<[number | undefined, boolean]> {
  if (v === undefined) return $multi(undefined, true);
  const n = readNumber(p, path, v, -1e12, 1e12, undefined);
  return $multi(n, n !== undefined);
}

function readStep(p: Problems, path: string, v: Json): StepConfig | undefined {
  const o = readObject(p, path, v, false);
  if (o === undefined) return undefined;
  rejectUnknownKeys(p, path, o, ["metric", "name", "kind", "threshold", "adjustment_type", "steps", "min_adjustment_magnitude", "cooldown", "warmup"]);
  const [metric, name] = readMetricRef(p, path, o);
  const threshold = readNumber(p, join(path, "threshold"), o.get("threshold"), -1e12, 1e12, undefined);
  const adjType = readEnum(
    p,
    join(path, "adjustment_type"),
    o.get("adjustment_type"),
    ["change_in_capacity", "percent_change_in_capacity", "exact_capacity"] as const,
    "change_in_capacity",
  );
  const minMag = readInteger(p, join(path, "min_adjustment_magnitude"), o.get("min_adjustment_magnitude"), 0, 100000, 0);
  const cooldown = readNumber(p, join(path, "cooldown"), o.get("cooldown"), 0, 86400, 300);
  const warmup = readNumber(p, join(path, "warmup"), o.get("warmup"), 0, 86400, 300);
  const sp = join(path, "steps");
  const arr = readArray(p, sp, o.get("steps"), true);
  let steps: StepAdjustment[] | undefined;
  if (arr !== undefined) {
    if (arr.length === 0) p.add(sp, "expected at least one step, got an empty array");
    steps = arr.length === 0 ? undefined : [];
    for (let i = 0; i < arr.length; i++) {
      const ip = index(sp, i);
      const s = readObject(p, ip, arr[i], true);
      if (s === undefined) {
        steps = undefined;
        continue;
      }
      rejectUnknownKeys(p, ip, s, ["lower", "upper", "adjustment"]);
      const [lower, lowerOk] = readOptionalNumber(p, join(ip, "lower"), s.get("lower"));
      const [upper, upperOk] = readOptionalNumber(p, join(ip, "upper"), s.get("upper"));
      const adjustment = readInteger(p, join(ip, "adjustment"), s.get("adjustment"), -100000, 100000, undefined);
      if (!lowerOk || !upperOk || adjustment === undefined) {
        steps = undefined;
        continue;
      }
      if (lower === undefined && upper === undefined) {
        p.add(ip, "expected a lower or an upper bound (or both)");
        steps = undefined;
        continue;
      }
      if (lower !== undefined && upper !== undefined && lower >= upper) {
        p.add(join(ip, "upper"), `must be above lower (${lower}), got ${upper}`);
        steps = undefined;
        continue;
      }
      if (steps !== undefined) steps.push({ lower, upper, adjustment });
    }
    // Ranges must not overlap, as in AWS step adjustments.
    if (steps !== undefined) {
      for (let i = 0; i < steps.length; i++) {
        for (let j = i + 1; j < steps.length; j++) {
          const a = steps[i];
          const b = steps[j];
          const aLow = a.lower ?? -math.huge;
          const aHigh = a.upper ?? math.huge;
          const bLow = b.lower ?? -math.huge;
          const bHigh = b.upper ?? math.huge;
          if (aLow < bHigh && bLow < aHigh) {
            p.add(index(sp, j), `overlaps ${index(sp, i)}`);
            steps = undefined;
            break;
          }
        }
        if (steps === undefined) break;
      }
    }
  }
  if (metric === undefined || threshold === undefined || adjType === undefined || minMag === undefined || cooldown === undefined || warmup === undefined || steps === undefined) {
    return undefined;
  }
  if (metric === "external" && name === undefined) return undefined;
  return { metric, name, threshold, adjustment_type: adjType, steps, min_adjustment_magnitude: minMag, cooldown, warmup };
}

function readComposite(p: Problems, path: string, v: Json): CompositeConfig | undefined {
  const o = readObject(p, path, v, false);
  if (o === undefined) return undefined;
  rejectUnknownKeys(p, path, o, ["target", "terms"]);
  const target = readNumber(p, join(path, "target"), o.get("target"), 1e-9, 1e6, 1);
  const tp = join(path, "terms");
  const arr = readArray(p, tp, o.get("terms"), true);
  let terms: CompositeTerm[] | undefined;
  if (arr !== undefined) {
    if (arr.length === 0) p.add(tp, "expected at least one term, got an empty array");
    terms = arr.length === 0 ? undefined : [];
    for (let i = 0; i < arr.length; i++) {
      const ip = index(tp, i);
      const t = readObject(p, ip, arr[i], true);
      if (t === undefined) {
        terms = undefined;
        continue;
      }
      rejectUnknownKeys(p, ip, t, ["metric", "name", "kind", "weight", "value"]);
      const [metric, name, kind] = readMetricRef(p, ip, t);
      const weight = readNumber(p, join(ip, "weight"), t.get("weight"), 0, 1e6, 1);
      const value = readNumber(p, join(ip, "value"), t.get("value"), 1e-9, 1e12, undefined);
      if (metric === undefined || kind === undefined || weight === undefined || value === undefined || (metric === "external" && name === undefined)) {
        terms = undefined;
        continue;
      }
      if (terms !== undefined) terms.push({ metric, name, kind, weight, value });
    }
  }
  if (target === undefined || terms === undefined) return undefined;
  return { target, terms };
}

function readRouteCosts(p: Problems, path: string, v: Json): LuaTable<string, number> | undefined {
  const o = readObject(p, path, v, false);
  if (o === undefined) return undefined;
  const out = new LuaTable<string, number>();
  for (const [k, w] of pairs(o)) {
    const n = readNumber(p, join(path, k), w, 0, 1e6, undefined);
    if (n !== undefined) out.set(k, n);
  }
  return out;
}

function readPredictive(p: Problems, path: string, v: Json, rpsTarget: number | undefined): PredictiveConfig | undefined {
  const o = readObject(p, path, v, false);
  if (o === undefined) return undefined;
  rejectUnknownKeys(p, path, o, ["enabled", "target", "provision_delay", "buffer", "season", "alpha", "beta", "gamma", "margin", "quantile", "error_window", "warm_up", "model", "forecast_source"]);
  const enabled = readBoolean(p, join(path, "enabled"), o.get("enabled"), true);
  let target: number | undefined;
  if (o.get("target") === undefined && rpsTarget === undefined) {
    p.add(join(path, "target"), "required (requests per second per replica) when no requests_per_second target is tracked");
  } else {
    target = readNumber(p, join(path, "target"), o.get("target"), 1e-9, 1e12, rpsTarget);
  }
  const delay = readNumber(p, join(path, "provision_delay"), o.get("provision_delay"), 0, 86400, 60);
  const buffer = readNumber(p, join(path, "buffer"), o.get("buffer"), 0, 86400, 120);
  const season = readInteger(p, join(path, "season"), o.get("season"), 2, 10080, 1440);
  const alpha = readNumber(p, join(path, "alpha"), o.get("alpha"), 0, 1, 0.5);
  const beta = readNumber(p, join(path, "beta"), o.get("beta"), 0, 1, 0.1);
  const gamma = readNumber(p, join(path, "gamma"), o.get("gamma"), 0, 1, 0.2);
  const margin = readNumber(p, join(path, "margin"), o.get("margin"), 0, 100, 0);
  const quantile = readNumber(p, join(path, "quantile"), o.get("quantile"), 0, 1, 0);
  const errorWindow = readInteger(p, join(path, "error_window"), o.get("error_window"), 5, 10080, 60);
  const warmUp = readEnum(p, join(path, "warm_up"), o.get("warm_up"), ["none", "level"] as const, "none");
  const model = readEnum(p, join(path, "model"), o.get("model"), ["holt_winters", "level"] as const, "holt_winters");
  const forecastSource = readString(p, join(path, "forecast_source"), o.get("forecast_source"), false, NAME_PATTERN, "a source name of letters, digits, '_', '.', '-', ':' or '/'");
  if (o.get("forecast_source") !== undefined && forecastSource === undefined) return undefined;
  if (quantile === undefined || errorWindow === undefined || warmUp === undefined || model === undefined) return undefined;
  if (margin === undefined || target === undefined || delay === undefined || buffer === undefined || season === undefined || alpha === undefined || beta === undefined || gamma === undefined) {
    return undefined;
  }
  return { enabled, target, provision_delay: delay, buffer, season, alpha, beta, gamma, margin, quantile, error_window: errorWindow, model, warm_up: warmUp, forecast_source: forecastSource };
}

function readTrend(p: Problems, path: string, v: Json, rpsTarget: number | undefined): TrendConfig | undefined {
  const o = readObject(p, path, v, false);
  if (o === undefined) return undefined;
  rejectUnknownKeys(p, path, o, ["enabled", "target", "horizon", "minutes", "max_growth"]);
  const enabled = readBoolean(p, join(path, "enabled"), o.get("enabled"), true);
  let target: number | undefined;
  if (o.get("target") === undefined && rpsTarget === undefined) {
    p.add(join(path, "target"), "required (requests per second per replica) when no requests_per_second target is tracked");
  } else {
    target = readNumber(p, join(path, "target"), o.get("target"), 1e-9, 1e12, rpsTarget);
  }
  const horizon = readNumber(p, join(path, "horizon"), o.get("horizon"), 0, 3600, 120);
  const minutes = readInteger(p, join(path, "minutes"), o.get("minutes"), 1, 30, 2);
  const maxGrowth = readNumber(p, join(path, "max_growth"), o.get("max_growth"), 1, 10, 1.25);
  if (target === undefined || horizon === undefined || minutes === undefined || maxGrowth === undefined) return undefined;
  return { enabled, target, horizon, minutes, max_growth: maxGrowth };
}

function readScaleToZero(p: Problems, path: string, v: Json): ScaleToZeroConfig | undefined {
  const o = readObject(p, path, v, false);
  if (o === undefined) return undefined;
  rejectUnknownKeys(p, path, o, ["enabled", "idle", "activation", "hold_timeout"]);
  const enabled = readBoolean(p, join(path, "enabled"), o.get("enabled"), true);
  const idle = readNumber(p, join(path, "idle"), o.get("idle"), 1, 86400 * 7, 300);
  const activation = readNumber(p, join(path, "activation"), o.get("activation"), 0, 1e12, 0);
  const holdTimeout = readNumber(p, join(path, "hold_timeout"), o.get("hold_timeout"), 0, 3600, 30);
  if (idle === undefined || activation === undefined || holdTimeout === undefined) return undefined;
  return { enabled, idle, activation, hold_timeout: holdTimeout };
}

/**
 * Validates a pool's `scaling` section. Every problem goes to `p` with its JSON path under
 * `path`; returns the typed policy with defaults filled in, or undefined. The `actuator` key is
 * accepted but left to the caller to validate (it is not part of the policy).
 */
export function validatePolicy(p: Problems, path: string, raw: Json): PolicyConfig | undefined {
  const o = readObject(p, path, raw, true);
  if (o === undefined) return undefined;
  const before = p.list.length;
  rejectUnknownKeys(p, path, o, POLICY_KEYS);
  const min = readInteger(p, join(path, "min_replicas"), o.get("min_replicas"), 0, 100000, 1);
  const max = readInteger(p, join(path, "max_replicas"), o.get("max_replicas"), 1, 100000, undefined);
  if (min !== undefined && max !== undefined && min > max) {
    p.add(join(path, "min_replicas"), `must not exceed max_replicas (${max}), got ${min}`);
  }
  const interval = readNumber(p, join(path, "interval"), o.get("interval"), 0.1, 3600, 1);
  const window = readInteger(p, join(path, "window"), o.get("window"), 1, 3600, 10);
  const tolerance = readNumber(p, join(path, "tolerance"), o.get("tolerance"), 0, 1, 0.1);

  const metrics: MetricTarget[] = [];
  let metricsOk = true;
  if (o.get("target") !== undefined) {
    const t = readTarget(p, join(path, "target"), o.get("target"));
    if (t === undefined) metricsOk = false;
    else metrics.push(t);
  }
  const mp = join(path, "metrics");
  const rawMetrics = readArray(p, mp, o.get("metrics"), false);
  if (rawMetrics !== undefined) {
    for (let i = 0; i < rawMetrics.length; i++) {
      const t = readTarget(p, index(mp, i), rawMetrics[i]);
      if (t === undefined) metricsOk = false;
      else metrics.push(t);
    }
  } else if (o.get("metrics") !== undefined) {
    metricsOk = false;
  }

  const bp = join(path, "behavior");
  const b = readObject(p, bp, o.get("behavior"), false) ?? new LuaTable<string, Json>();
  rejectUnknownKeys(p, bp, b, ["scale_up", "scale_down"]);
  const up = readRules(p, join(bp, "scale_up"), b.get("scale_up"), true, tolerance ?? 0.1);
  const down = readRules(p, join(bp, "scale_down"), b.get("scale_down"), false, tolerance ?? 0.1);

  const step = readStep(p, join(path, "step"), o.get("step"));
  const composite = readComposite(p, join(path, "composite"), o.get("composite"));
  const routeCosts = readRouteCosts(p, join(path, "route_costs"), o.get("route_costs"));
  const defaultCost = readNumber(p, join(path, "default_route_cost"), o.get("default_route_cost"), 0, 1e6, 1);

  let rpsTarget: number | undefined;
  for (const m of metrics) {
    if (m.metric === "requests_per_second" && m.kind === "average") {
      rpsTarget = m.value;
      break;
    }
  }
  const predictive = readPredictive(p, join(path, "predictive"), o.get("predictive"), rpsTarget);
  const trend = readTrend(p, join(path, "trend"), o.get("trend"), rpsTarget);
  const zero = readScaleToZero(p, join(path, "scale_to_zero"), o.get("scale_to_zero"));

  if (metricsOk && metrics.length === 0 && o.get("step") === undefined && o.get("composite") === undefined) {
    p.add(join(path, "target"), "expected a target, metrics, step or composite: something to scale on");
  }

  if (p.list.length > before) return undefined;
  if (min === undefined || max === undefined || interval === undefined || window === undefined || tolerance === undefined || up === undefined || down === undefined || defaultCost === undefined) {
    return undefined;
  }
  const first = metrics[0];
  return {
    min_replicas: min,
    max_replicas: max,
    interval,
    window,
    target: first,
    metrics,
    tolerance,
    behavior: { scale_up: up, scale_down: down },
    step,
    composite,
    route_costs: routeCosts,
    default_route_cost: defaultCost,
    predictive: predictive !== undefined && predictive.enabled ? predictive : undefined,
    trend: trend !== undefined && trend.enabled ? trend : undefined,
    scale_to_zero: zero !== undefined && zero.enabled ? zero : undefined,
  };
}

/** validatePolicy for Lua callers and tools: the policy (or undefined) and every problem. */
export function checkPolicy(raw: Json, path: string): LuaMultiReturn<[PolicyConfig | undefined, string[]]> {
  const p = new Problems();
  const cfg = validatePolicy(p, path, raw);
  return $multi(cfg, p.list);
}
