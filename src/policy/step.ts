// AWS-style step scaling: the breach (metric - threshold) picks a step adjustment; scale-outs
// are "in progress" during the warm-up (a bigger breach only adds the difference, scale-in
// waits), and a step scale-in is followed by a cooldown before the next one.
import { StepAdjustment, StepConfig } from "./schema";

export interface StepState {
  /** Until when the last scale-out counts as in progress. */
  warmUntil: number;
  /** Capacity before the scale-out in progress: bigger steps are applied to it, not on top. */
  base: number;
  /** The capacity the in-progress scale-out asked for. */
  inProgress: number;
  lastScaleIn: number;
}

export function newStepState(): StepState {
  return { warmUntil: -math.huge, base: 0, inProgress: 0, lastScaleIn: -math.huge };
}

/**
 * The step whose range holds `breach`. Above the threshold a range includes its lower bound and
 * excludes its upper one; below it, the other way round (as AWS does).
 */
export function findStep(steps: StepAdjustment[], breach: number): StepAdjustment | undefined {
  for (const s of steps) {
    const lower = s.lower ?? -math.huge;
    const upper = s.upper ?? math.huge;
    if (breach >= 0 ? lower <= breach && breach < upper : lower < breach && breach <= upper) return s;
  }
  return undefined;
}

/** The capacity an adjustment gives from `base`, with AWS rounding of percent changes. */
export function applyAdjustment(cfg: StepConfig, base: number, adjustment: number): number {
  if (cfg.adjustment_type === "exact_capacity") return math.max(0, adjustment);
  let change = adjustment;
  if (cfg.adjustment_type === "percent_change_in_capacity") {
    const raw = (base * adjustment) / 100;
    if (raw > 0 && raw < 1) change = 1;
    else if (raw < 0 && raw > -1) change = -1;
    else if (raw >= 1) change = math.floor(raw);
    else change = math.ceil(raw);
    if (math.abs(change) < cfg.min_adjustment_magnitude) change = change < 0 ? -cfg.min_adjustment_magnitude : cfg.min_adjustment_magnitude;
  }
  return math.max(0, base + change);
}

/** The step rule's recommendation and why. Updates the state as if the result is applied. */
export function stepRecommend(cfg: StepConfig, s: StepState, now: number, current: number, value: number): LuaMultiReturn<[number, string, number]> {
  const breach = value - cfg.threshold;
  const step = findStep(cfg.steps, breach);
  if (step === undefined) return $multi(current, "no step for this breach", 0);
  const adj = step.adjustment;
  if (adj === 0 && cfg.adjustment_type !== "exact_capacity") return $multi(current, "step adjustment 0", adj);
  const warming = now < s.warmUntil;
  const target = applyAdjustment(cfg, warming ? s.base : current, adj);
  if (target > current || (warming && adj > 0)) {
    // Scale out. While one is in progress only the difference to it is added.
    const rec = warming ? math.max(current, target, s.inProgress) : target;
    if (rec > current) {
      if (!warming) s.base = current;
      s.inProgress = rec;
      s.warmUntil = now + cfg.warmup;
      return $multi(rec, warming ? "step scale-out on top of the one in progress" : "step scale-out", adj);
    }
    return $multi(current, "scale-out already in progress", adj);
  }
  if (target < current) {
    if (warming) return $multi(current, "scale-in waits for the scale-out warm-up", adj);
    if (now < s.lastScaleIn + cfg.cooldown) return $multi(current, "scale-in cooldown", adj);
    s.lastScaleIn = now;
    return $multi(target, "step scale-in", adj);
  }
  return $multi(current, "step keeps the capacity", adj);
}
