// A weighted composite score over several metrics, and per-route request cost weights.
import { CompositeConfig } from "./schema";

/**
 * The weighted mean of each term's value over its own target: 1 means every term sits on its
 * target, 2 means the pool as a whole is twice as loaded. `values[i]` is the term's value,
 * already per replica for "average" terms; undefined values are left out.
 */
export function compositeScore(cfg: CompositeConfig, values: LuaTable<number, number | undefined>): number | undefined {
  let sum = 0;
  let weights = 0;
  let i = 0;
  for (const term of cfg.terms) {
    i += 1;
    const v = values.get(i);
    if (v !== undefined && term.weight > 0) {
      sum += (term.weight * v) / term.value;
      weights += term.weight;
    }
  }
  if (weights === 0) return undefined;
  return sum / weights;
}

/**
 * The cost-weighted request rate: sum over routes of rate x cost, where a route without a
 * configured cost counts `defaultCost` per request.
 */
export function weightedRequestRate(rates: LuaTable<string, number>, costs: LuaTable<string, number> | undefined, defaultCost: number): number {
  let total = 0;
  for (const [route, rate] of pairs(rates)) {
    const cost = costs === undefined ? undefined : costs.get(route);
    total += rate * (cost ?? defaultCost);
  }
  return total;
}
