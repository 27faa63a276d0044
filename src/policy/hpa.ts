// Target tracking with the Kubernetes HPA algorithm (autoscaling/v2): the replica count per
// metric, the stabilization windows and the behavior rate limits. Pure functions of their
// arguments plus a state table the caller keeps (HPA keeps the same in controller memory).
import { RatePolicy, ScalingRules, TargetKind } from "./schema";
import { ExtremeWindow, evictUntil, extreme, newExtremeWindow, pushSample } from "./window";

/** Ceil that ignores float noise: 10 * 1.2 / 1 is 12.000000000000002, not a reason for 13. */
export function ceilReplicas(x: number): number {
  return math.ceil(x - 1e-9);
}

/**
 * Whether a usage ratio is close enough to 1 to leave the count alone (per-direction tolerances).
 * Written as HPA's Tolerances.isWithin, bounds first: `ratio - 1 <= 0.1` would differ at the
 * boundary (1.1 - 1 is 0.10000000000000009), so 550 on a target of 100 x 5 would scale.
 */
export function withinTolerance(ratio: number, upTolerance: number, downTolerance: number): boolean {
  return 1 - downTolerance <= ratio && ratio <= 1 + upTolerance;
}

/**
 * HPA's replica count for one metric. "average": `value` is the pool total and `target` the
 * per-replica average (AverageValue): ratio = value / (target x current), desired =
 * ceil(value / target). "value": ratio = value / target, desired = ceil(ratio x ready).
 * Within the tolerance (ratio - 1 <= upTolerance above 1, 1 - ratio <= downTolerance below;
 * one tolerance for both unless told, as before Kubernetes 1.33) the answer is `current`.
 * Returns the replicas and the usage ratio.
 */
export function replicasForMetric(
  kind: TargetKind,
  value: number,
  target: number,
  current: number,
  ready: number,
  upTolerance: number,
  downTolerance?: number,
): LuaMultiReturn<[number, number]> {
  const down = downTolerance ?? upTolerance;
  if (kind === "average") {
    if (current === 0) return $multi(ceilReplicas(value / target), value / target);
    const ratio = value / (target * current);
    if (withinTolerance(ratio, upTolerance, down)) return $multi(current, ratio);
    return $multi(ceilReplicas(value / target), ratio);
  }
  const ratio = value / target;
  if (current === 0) return $multi(ceilReplicas(ratio), ratio);
  if (withinTolerance(ratio, upTolerance, down)) return $multi(current, ratio);
  // HPA multiplies by the ready pods; with none ready yet we fall back to the requested count.
  return $multi(ceilReplicas(ratio * (ready > 0 ? ready : current)), ratio);
}

export interface HpaState {
  /** Smallest recommendation within the scale-up window. */
  upWindow: ExtremeWindow;
  /** Largest recommendation within the scale-down window. */
  downWindow: ExtremeWindow;
  seeded: boolean;
  /** Scale events (time, signed change) in a ring; only those within the longest period count. */
  eventTimes: LuaTable<number, number>;
  eventChanges: LuaTable<number, number>;
  eventHead: number;
  eventSize: number;
  eventCap: number;
}

export function newHpaState(): HpaState {
  const eventTimes = new LuaTable<number, number>();
  const eventChanges = new LuaTable<number, number>();
  for (const i of $range(1, 16)) {
    eventTimes.set(i, 0);
    eventChanges.set(i, 0);
  }
  return {
    upWindow: newExtremeWindow(false, 16),
    downWindow: newExtremeWindow(true, 64),
    seeded: false,
    eventTimes,
    eventChanges,
    eventHead: 1,
    eventSize: 0,
    eventCap: 16,
  };
}

/**
 * Stabilization (HPA stabilizeRecommendationWithBehaviors): the result is `current` pulled up to
 * the smallest recommendation of the scale-up window and down to the largest of the
 * scale-down window, both windows including `desired` itself. Records `desired`.
 */
export function stabilize(s: HpaState, now: number, current: number, desired: number, upWindow: number, downWindow: number): number {
  if (!s.seeded) {
    // HPA seeds the window with the replica count it found, so a restart does not scale in at once.
    pushSample(s.upWindow, now, current);
    pushSample(s.downWindow, now, current);
    s.seeded = true;
  }
  evictUntil(s.upWindow, now - upWindow);
  evictUntil(s.downWindow, now - downWindow);
  const upRec = math.min(desired, extreme(s.upWindow, desired));
  const downRec = math.max(desired, extreme(s.downWindow, desired));
  let rec = current;
  if (rec < upRec) rec = upRec;
  if (rec > downRec) rec = downRec;
  pushSample(s.upWindow, now, desired);
  pushSample(s.downWindow, now, desired);
  return rec;
}

function longestPeriod(rules: ScalingRules, longest: number): number {
  for (const p of rules.policies) {
    if (p.period > longest) longest = p.period;
  }
  return longest;
}

/** Replicas added and removed by scale events within the last `period` seconds. */
function changesWithin(s: HpaState, now: number, period: number): LuaMultiReturn<[number, number]> {
  let added = 0;
  let removed = 0;
  const cutoff = now - period;
  for (const i of $range(0, s.eventSize - 1)) {
    const slot = ((s.eventHead - 1 + i) % s.eventCap) + 1;
    if (s.eventTimes.get(slot) > cutoff) {
      const c = s.eventChanges.get(slot);
      if (c > 0) added += c;
      else removed -= c;
    }
  }
  return $multi(added, removed);
}

/** HPA calculateScaleUpLimitWithScalingRules. */
export function scaleUpLimit(s: HpaState, now: number, current: number, rules: ScalingRules): number {
  if (rules.select_policy === "disabled") return current;
  const pickMin = rules.select_policy === "min";
  let result = pickMin ? math.huge : -math.huge;
  for (const p of rules.policies) {
    const proposed = proposeUp(s, now, current, p);
    result = pickMin ? math.min(result, proposed) : math.max(result, proposed);
  }
  return result;
}

function proposeUp(s: HpaState, now: number, current: number, p: RatePolicy): number {
  const [added, removed] = changesWithin(s, now, p.period);
  const start = current - added + removed;
  if (p.type === "pods") return start + p.value;
  // Rounded up so that a small pool can always grow.
  return math.ceil(start * (1 + p.value / 100));
}

/** HPA calculateScaleDownLimitWithBehaviors. */
export function scaleDownLimit(s: HpaState, now: number, current: number, rules: ScalingRules): number {
  if (rules.select_policy === "disabled") return current;
  const pickMin = rules.select_policy === "min";
  // "min" selects the smallest change, which for scaling down is the largest count.
  let result = pickMin ? -math.huge : math.huge;
  for (const p of rules.policies) {
    const [added, removed] = changesWithin(s, now, p.period);
    const start = current - added + removed;
    const proposed = p.type === "pods" ? start - p.value : math.floor(start * (1 - p.value / 100));
    result = pickMin ? math.max(result, proposed) : math.min(result, proposed);
  }
  return result;
}

/**
 * HPA convertDesiredReplicasWithBehaviorRate: bounds `desired` by the rate limits and by
 * min/max replicas. Returns the replicas and the limiting reason ("" when none).
 */
export function limitRate(
  s: HpaState,
  now: number,
  current: number,
  desired: number,
  up: ScalingRules,
  down: ScalingRules,
  minReplicas: number,
  maxReplicas: number,
): LuaMultiReturn<[number, string]> {
  if (desired > current) {
    let limit = scaleUpLimit(s, now, current, up);
    if (limit < current) limit = current;
    let allowed = maxReplicas;
    let reason = "max_replicas";
    if (allowed > limit) {
      allowed = limit;
      reason = "scale_up_limit";
    }
    if (desired > allowed) return $multi(allowed, reason);
  } else if (desired < current) {
    let limit = scaleDownLimit(s, now, current, down);
    if (limit > current) limit = current;
    let allowed = minReplicas;
    let reason = "min_replicas";
    if (allowed < limit) {
      allowed = limit;
      reason = "scale_down_limit";
    }
    if (desired < allowed) return $multi(allowed, reason);
  }
  return $multi(desired, "");
}

/** Records an applied change, as HPA does after each rescale; drops events older than any period. */
export function recordScaleEvent(s: HpaState, now: number, change: number, up: ScalingRules, down: ScalingRules): void {
  const keep = longestPeriod(down, longestPeriod(up, 0));
  while (s.eventSize > 0 && s.eventTimes.get(s.eventHead) <= now - keep) {
    s.eventHead = (s.eventHead % s.eventCap) + 1;
    s.eventSize -= 1;
  }
  if (s.eventSize === s.eventCap) {
    const times = new LuaTable<number, number>();
    const changes = new LuaTable<number, number>();
    const cap = s.eventCap * 2;
    for (const i of $range(1, cap)) {
      if (i <= s.eventSize) {
        const slot = ((s.eventHead - 2 + i) % s.eventCap) + 1;
        times.set(i, s.eventTimes.get(slot));
        changes.set(i, s.eventChanges.get(slot));
      } else {
        times.set(i, 0);
        changes.set(i, 0);
      }
    }
    s.eventTimes = times;
    s.eventChanges = changes;
    s.eventHead = 1;
    s.eventCap = cap;
  }
  const slot = ((s.eventHead - 1 + s.eventSize) % s.eventCap) + 1;
  s.eventTimes.set(slot, now);
  s.eventChanges.set(slot, change);
  s.eventSize += 1;
}
