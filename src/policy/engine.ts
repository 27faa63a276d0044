// The policy engine: one evaluation turns the pool's replicas and metrics into the desired
// replica count and an explanation of every rule. Pure: time comes in `input.now`; the state
// is a plain table the caller keeps between evaluations (newPolicyState).
//
// Order of an evaluation:
//  1. HPA guards: above max_replicas -> max; below min_replicas -> min (unless at zero on purpose).
//  2. Scale to zero: idle for `idle` seconds -> 0; at zero, traffic above the activation -> 1.
//  3. Reactive: every target-tracking metric and the composite score, HPA formula with
//     tolerance; the largest wins.
//  4. Predictive: replicas for the forecast at now + provisioning delay + buffer, plus a margin
//     (a multiple of the typical error, or a quantile of the measured errors); combined by
//     max, so the forecast can raise or hold capacity but never scale in on its own.
//     Trend: the current rate projected along a sustained ramp over a horizon; also by max.
//  5. HPA stabilization windows, then the behavior rate limits and min/max.
//  6. Step scaling (own warm-up and cooldown); the larger of step and the above wins.
import { compositeScore, weightedRequestRate } from "./composite";
import { ErrorWindow, errorQuantile, meanAbsError, newErrorWindow, pushError } from "./errors";
import { HpaState, limitRate, newHpaState, recordScaleEvent, replicasForMetric, stabilize, withinTolerance } from "./hpa";
import { HoltWinters, forecast, forecastError, historyMinutes, newHoltWinters, observe } from "./holtwinters";
import { PolicyConfig, PolicyMetric, PredictiveConfig, TargetKind } from "./schema";
import { StepState, newStepState, stepRecommend } from "./step";
import { MinuteMeans, newMinuteMeans, project, pushMinute, rampGrowth } from "./trend";

export interface PolicyInput {
  /** Seconds (any epoch; the forecaster's daily season follows now / 60 modulo 1440). */
  now: number;
  /** Replicas asked for (ready or starting). */
  current: number;
  /** Replicas serving. */
  ready: number;
  requests_per_second?: number;
  in_flight?: number;
  p99_latency_ms?: number;
  error_ratio?: number;
  /** External metric values by name. */
  external?: LuaTable<string, number>;
  /** Request rate per route: with route_costs configured, the cost-weighted sum replaces requests_per_second. */
  route_rates?: LuaTable<string, number>;
  /**
   * An external forecast of requests_per_second at now + provision_delay + buffer (replaces the
   * model); without it, `external[predictive.forecast_source]` when configured.
   */
  forecast?: number;
}

/** One rule's line of the explanation. */
export interface RuleExplanation {
  rule: string;
  metric?: string;
  value?: number;
  target?: number;
  ratio?: number;
  desired?: number;
  /** Trend only: the per-minute growth projected (1: no sustained rise). */
  growth?: number;
  note?: string;
}

export interface Explanation {
  time: number;
  /** The inputs the decision saw (the time is `time`; route rates show as requests_per_second). */
  inputs: Omit<PolicyInput, "now" | "route_rates">;
  rules: RuleExplanation[];
  /** The largest recommendation before stabilization and rate limits. */
  proposal: number;
  stabilized: number;
  desired: number;
  /** The rule whose recommendation set the proposal (or the guard that decided). */
  winner: string;
  reason: string;
}

export interface PolicyState {
  hpa: HpaState;
  step: StepState;
  history?: HoltWinters;
  /** Accumulates the current minute's request rate for the history. */
  minute: number;
  minuteSum: number;
  minuteCount: number;
  /** Complete minutes' mean rates (the trend term). */
  means: MinuteMeans;
  /** Smoothed per-minute level (the forecast before a season of history, warm_up "level"). */
  level: number;
  levelSeen: boolean;
  /** Forecasts issued when each minute began, by slot of the minute they are for (error measurement). */
  issued: LuaTable<number, number>;
  issuedFor: LuaTable<number, number>;
  issuedSlots: number;
  /** Measured forecast errors (actual - forecast) at the predictive horizon. */
  errors: ErrorWindow;
  /** The quantile of the measured errors (0 until there are enough). */
  errorMargin: number;
  /** Last time traffic was above the activation threshold (scale to zero). */
  busySince: number;
  started: boolean;
  /** Reused every evaluation: encode or copy it before the next one. */
  explanation: Explanation;
  /** Per composite term, the value of this evaluation (reused). */
  termValues: LuaTable<number, number | undefined>;
}

export function newPolicyState(cfg: PolicyConfig): PolicyState {
  const rules: RuleExplanation[] = [];
  for (const m of cfg.metrics) rules.push({ rule: "target", metric: m.name ?? m.metric, target: m.value });
  if (cfg.composite !== undefined) rules.push({ rule: "composite", target: cfg.composite.target });
  if (cfg.predictive !== undefined) rules.push({ rule: "predictive", target: cfg.predictive.target });
  if (cfg.trend !== undefined) rules.push({ rule: "trend", target: cfg.trend.target });
  if (cfg.step !== undefined) rules.push({ rule: "step", metric: cfg.step.name ?? cfg.step.metric, target: cfg.step.threshold });
  const p = cfg.predictive;
  return {
    hpa: newHpaState(),
    step: newStepState(),
    history: p === undefined || p.model !== "holt_winters" ? undefined : newHoltWinters(p),
    means: newMinuteMeans(cfg.trend === undefined ? 2 : cfg.trend.minutes + 1),
    level: 0,
    levelSeen: false,
    issued: new LuaTable<number, number>(),
    issuedFor: new LuaTable<number, number>(),
    issuedSlots: p === undefined ? 1 : math.ceil((p.provision_delay + p.buffer) / 60) + 3,
    errors: newErrorWindow(p === undefined ? 1 : p.error_window),
    errorMargin: 0,
    minute: -1,
    minuteSum: 0,
    minuteCount: 0,
    busySince: 0,
    started: false,
    explanation: { time: 0, inputs: { current: 0, ready: 0 }, rules, proposal: 0, stabilized: 0, desired: 0, winner: "", reason: "" },
    termValues: new LuaTable<number, number | undefined>(),
  };
}

/** A metric's raw value from the input (pool totals for rate and in-flight). */
export function metricValue(input: PolicyInput, rps: number | undefined, metric: PolicyMetric, name: string | undefined): number | undefined {
  if (metric === "requests_per_second") return rps;
  if (metric === "in_flight") return input.in_flight;
  if (metric === "p99_latency_ms") return input.p99_latency_ms;
  if (metric === "error_ratio") return input.error_ratio;
  const ext = input.external;
  return ext === undefined || name === undefined ? undefined : ext.get(name);
}

/** The value compared with a per-replica threshold: totals are divided by the ready replicas. */
function perReplica(kind: TargetKind, v: number, ready: number): number {
  return kind === "average" ? v / (ready > 0 ? ready : 1) : v;
}

function clearRule(r: RuleExplanation): void {
  r.value = undefined;
  r.ratio = undefined;
  r.desired = undefined;
  r.growth = undefined;
  r.note = undefined;
}

/** A complete minute's mean: feeds the history, the level, the trend and the error measurement. */
function closeMinute(cfg: PolicyConfig, s: PolicyState, minute: number, mean: number): void {
  pushMinute(s.means, minute, mean);
  const pred = cfg.predictive;
  if (pred === undefined) return;
  if (s.history !== undefined) observe(s.history, minute, mean);
  s.level = s.levelSeen ? pred.alpha * mean + (1 - pred.alpha) * s.level : mean;
  s.levelSeen = true;
  const slot = (minute % s.issuedSlots) + 1;
  if (s.issuedFor.get(slot) === minute) {
    pushError(s.errors, mean - s.issued.get(slot));
    if (pred.quantile > 0) {
      const q = errorQuantile(s.errors, pred.quantile);
      s.errorMargin = q !== undefined && q > 0 ? q : 0;
    }
  }
}

/**
 * Folds the request rate into per-minute means. Returns true when this evaluation begins a new
 * minute (the previous one is complete).
 */
function recordHistory(cfg: PolicyConfig, s: PolicyState, now: number, rps: number | undefined): boolean {
  if (rps === undefined) return false;
  const minute = math.floor(now / 60);
  let began = false;
  if (minute !== s.minute) {
    if (s.minuteCount > 0 && s.minute >= 0) {
      closeMinute(cfg, s, s.minute, s.minuteSum / s.minuteCount);
      began = true;
    }
    s.minute = minute;
    s.minuteSum = 0;
    s.minuteCount = 0;
  }
  s.minuteSum += rps;
  s.minuteCount += 1;
  return began;
}

/** The point forecast for the horizon minute: external, Holt-Winters, or (warming up) the level. */
function pointForecast(pred: PredictiveConfig, s: PolicyState, horizonMinute: number, external: number | undefined): number | undefined {
  if (external !== undefined) return external;
  const h = s.history;
  const f = h === undefined ? undefined : forecast(h, horizonMinute);
  if (f !== undefined) return f;
  return (h === undefined || pred.warm_up === "level") && s.levelSeen ? s.level : undefined;
}

function finish(cfg: PolicyConfig, s: PolicyState, now: number, current: number, desired: number, winner: string, reason: string): LuaMultiReturn<[number, Explanation]> {
  const e = s.explanation;
  e.desired = desired;
  e.winner = winner;
  e.reason = reason;
  if (desired !== current) recordScaleEvent(s.hpa, now, desired - current, cfg.behavior.scale_up, cfg.behavior.scale_down);
  return $multi(desired, e);
}

/**
 * One evaluation. Returns the desired replicas and the explanation (a table reused by the next
 * evaluation; it encodes to one JSON line with cjson). Assumes the caller applies the result,
 * as the HPA controller does: scale events feed the behavior rate limits.
 */
export function evaluate(cfg: PolicyConfig, s: PolicyState, input: PolicyInput): LuaMultiReturn<[number, Explanation]> {
  const now = input.now;
  const current = input.current;
  const ready = input.ready;
  let rps = input.requests_per_second;
  if (cfg.route_costs !== undefined && input.route_rates !== undefined) {
    rps = weightedRequestRate(input.route_rates, cfg.route_costs, cfg.default_route_cost);
  }
  const e = s.explanation;
  e.time = now;
  const inputs = e.inputs;
  inputs.current = current;
  inputs.ready = ready;
  inputs.requests_per_second = rps;
  inputs.in_flight = input.in_flight;
  inputs.p99_latency_ms = input.p99_latency_ms;
  inputs.error_ratio = input.error_ratio;
  inputs.external = input.external;
  // An external forecaster: the input's value, else the configured source's (when fresh).
  const pred = cfg.predictive;
  let externalForecast = input.forecast;
  const forecastSource = pred === undefined ? undefined : pred.forecast_source;
  if (externalForecast === undefined && forecastSource !== undefined && input.external !== undefined) {
    externalForecast = input.external.get(forecastSource);
  }
  inputs.forecast = externalForecast;
  for (const r of e.rules) clearRule(r);
  e.proposal = current;
  e.stabilized = current;
  const minuteBegan = recordHistory(cfg, s, now, rps);
  if (!s.started) {
    s.started = true;
    s.busySince = now;
  }

  // The forecast (and its uncertainty margin) at now + provisioning delay + buffer.
  let predicted: number | undefined;
  let predNote: string | undefined;
  if (pred !== undefined) {
    const horizonMinute = math.floor((now + pred.provision_delay + pred.buffer) / 60);
    predicted = pointForecast(pred, s, horizonMinute, externalForecast);
    if (predicted === undefined) {
      predNote = s.history !== undefined ? `history ${historyMinutes(s.history)} of ${pred.season} minutes` : "no complete minute yet";
    } else {
      if (externalForecast !== undefined) predNote = "external forecast";
      else if (forecastSource !== undefined) predNote = `no value from ${forecastSource}: built-in forecast`;
      if (minuteBegan) {
        // Remembered to measure the error once that minute is complete.
        const slot = (horizonMinute % s.issuedSlots) + 1;
        s.issued.set(slot, predicted);
        s.issuedFor.set(slot, horizonMinute);
      }
      if (pred.quantile > 0) predicted += s.errorMargin;
      else if (pred.margin > 0) predicted += pred.margin * (s.history !== undefined ? forecastError(s.history) : meanAbsError(s.errors));
    }
  }
  // Traffic expected at the horizon: a forecast above the tolerance's share of one replica.
  const expected = pred !== undefined && predicted !== undefined && predicted > pred.target * cfg.tolerance;

  // 1-2. Guards and scale to zero.
  if (current > cfg.max_replicas) return finish(cfg, s, now, current, cfg.max_replicas, "max_replicas", "current replicas above max_replicas");
  const zero = cfg.scale_to_zero;
  if (zero !== undefined) {
    const busy = (rps !== undefined && rps > zero.activation) || (input.in_flight !== undefined && input.in_flight > 0);
    if (busy) s.busySince = now;
    if (current === 0) {
      if (busy) return finish(cfg, s, now, current, math.max(1, cfg.min_replicas), "scale_to_zero", "activation: traffic at zero replicas");
      if (expected) return finish(cfg, s, now, current, math.max(1, cfg.min_replicas), "scale_to_zero", "activation: the forecast expects traffic");
      return finish(cfg, s, now, current, 0, "scale_to_zero", "idle at zero");
    }
    // Idle long enough, and the forecast (when there is one) expects nothing either.
    if (now - s.busySince >= zero.idle && !expected) return finish(cfg, s, now, current, 0, "scale_to_zero", `idle for ${zero.idle} s`);
  }
  if (current < cfg.min_replicas) return finish(cfg, s, now, current, cfg.min_replicas, "min_replicas", "current replicas below min_replicas");
  const upTolerance = cfg.behavior.scale_up.tolerance;
  const downTolerance = cfg.behavior.scale_down.tolerance;

  // 3. Reactive rules.
  let best = -1;
  let winner = "none";
  let ri = 0;
  for (const m of cfg.metrics) {
    const r = e.rules[ri];
    ri += 1;
    const v = metricValue(input, rps, m.metric, m.name);
    if (v === undefined) {
      r.note = "no value";
      continue;
    }
    const [d, ratio] = replicasForMetric(m.kind, v, m.value, current, ready, upTolerance, downTolerance);
    r.value = v;
    r.ratio = ratio;
    r.desired = d;
    if (current > 0 && withinTolerance(ratio, upTolerance, downTolerance)) r.note = "within tolerance";
    if (d > best) {
      best = d;
      winner = m.metric === "external" ? m.name! : m.metric;
    }
  }
  const comp = cfg.composite;
  if (comp !== undefined) {
    const r = e.rules[ri];
    ri += 1;
    let i = 0;
    for (const term of comp.terms) {
      i += 1;
      const v = metricValue(input, rps, term.metric, term.name);
      s.termValues.set(i, v === undefined ? undefined : perReplica(term.kind, v, ready));
    }
    const score = compositeScore(comp, s.termValues);
    if (score === undefined) {
      r.note = "no value";
    } else {
      const [d, ratio] = replicasForMetric("value", score, comp.target, current, ready, upTolerance, downTolerance);
      r.value = score;
      r.ratio = ratio;
      r.desired = d;
      if (d > best) {
        best = d;
        winner = "composite";
      }
    }
  }
  if (best < 0) {
    best = current;
    winner = "none";
  }

  // 4. Predictive.
  if (pred !== undefined) {
    const r = e.rules[ri];
    ri += 1;
    r.note = predNote;
    if (predicted !== undefined) {
      // The forecast is one more average metric, with the same tolerance.
      const [d, ratio] = replicasForMetric("average", predicted, pred.target, current, ready, upTolerance, downTolerance);
      r.value = predicted;
      r.ratio = ratio;
      r.desired = d;
      if (d > best) {
        best = d;
        winner = "predictive";
      }
    }
  }

  // Trend: the current rate carried along a sustained ramp to the horizon (never scales in alone).
  const trend = cfg.trend;
  if (trend !== undefined) {
    const r = e.rules[ri];
    ri += 1;
    if (rps === undefined) {
      r.note = "no value";
    } else {
      const growth = rampGrowth(s.means, trend.minutes, trend.max_growth);
      const projected = project(rps, growth, trend.horizon);
      const [d, ratio] = replicasForMetric("average", projected, trend.target, current, ready, upTolerance, downTolerance);
      r.value = projected;
      r.ratio = ratio;
      r.growth = growth;
      r.desired = d;
      if (growth <= 1) r.note = "no sustained rise";
      if (d > best) {
        best = d;
        winner = "trend";
      }
    }
  }

  // 5. Stabilization, rate limits, min/max.
  e.proposal = best;
  const up = cfg.behavior.scale_up;
  const down = cfg.behavior.scale_down;
  const stabilized = stabilize(s.hpa, now, current, best, up.stabilization_window, down.stabilization_window);
  e.stabilized = stabilized;
  const [limited, limitReason] = limitRate(s.hpa, now, current, stabilized, up, down, cfg.min_replicas, cfg.max_replicas);
  let desired = limited;
  let reason: string;
  if (limitReason !== "") reason = `limited by ${limitReason}`;
  else if (stabilized !== best) reason = stabilized > best ? "held by the scale-down stabilization window" : "held by the scale-up stabilization window";
  else if (desired === current) reason = "no change";
  else reason = desired > current ? "scale up" : "scale down";

  // 6. Step scaling.
  const step = cfg.step;
  if (step !== undefined) {
    const r = e.rules[ri];
    const raw = metricValue(input, rps, step.metric, step.name);
    if (raw === undefined) {
      r.note = "no value";
    } else {
      const v = perReplica(step.metric === "requests_per_second" || step.metric === "in_flight" ? "average" : "value", raw, ready);
      const [d, why, adjustment] = stepRecommend(step, s.step, now, current, v);
      const bounded = math.min(cfg.max_replicas, math.max(cfg.min_replicas, d));
      r.value = v;
      r.ratio = adjustment;
      r.desired = bounded;
      r.note = why;
      if (bounded > desired || winner === "none") {
        // The larger capacity wins; with no other rule to weigh against, step decides alone.
        desired = bounded;
        winner = "step";
        reason = why;
      }
    }
  }
  return finish(cfg, s, now, current, desired, winner, reason);
}
