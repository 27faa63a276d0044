// The trend term: how fast the request rate is climbing, from the last complete minutes, and
// where the current ramp leads after a horizon. Only a sustained rise counts (every one of the
// last k minutes above the one before), and the smallest of those rises is projected, so one
// noisy minute on a sparse pool is not mistaken for a surge.

export interface MinuteMeans {
  /** Ring of per-minute mean rates, slots 1..size. */
  values: LuaTable<number, number>;
  size: number;
  /** Consecutive minutes held (a gap starts over), at most size. */
  count: number;
  /** Slot of the newest minute. */
  newest: number;
  /** The newest minute's number (-1: none). */
  minute: number;
}

export function newMinuteMeans(size: number): MinuteMeans {
  return { values: new LuaTable<number, number>(), size, count: 0, newest: 0, minute: -1 };
}

/** Adds a complete minute's mean; a minute that does not follow the newest starts a new run. */
export function pushMinute(r: MinuteMeans, minute: number, mean: number): void {
  if (r.minute >= 0 && minute !== r.minute + 1) r.count = 0;
  r.newest = (r.newest % r.size) + 1;
  r.values.set(r.newest, mean);
  r.minute = minute;
  if (r.count < r.size) r.count += 1;
}

/** The mean `back` minutes before the newest (0: the newest). */
function meanAt(r: MinuteMeans, back: number): number {
  return r.values.get(((r.newest - 1 - back + r.size) % r.size) + 1);
}

/**
 * The per-minute growth factor of a ramp: the smallest of the last `minutes` minute-over-minute
 * ratios when all of them rise, capped at maxGrowth; 1 when there is no sustained rise (or not
 * enough minutes, or a rise from zero, which is a burst and not a ramp).
 */
export function rampGrowth(r: MinuteMeans, minutes: number, maxGrowth: number): number {
  if (r.count < minutes + 1) return 1;
  let growth = math.huge;
  for (const back of $range(0, minutes - 1)) {
    const before = meanAt(r, back + 1);
    if (before <= 0) return 1;
    const ratio = meanAt(r, back) / before;
    if (ratio <= 1) return 1;
    if (ratio < growth) growth = ratio;
  }
  return growth < maxGrowth ? growth : maxGrowth;
}

/** The rate after `horizon` seconds if it keeps growing by `growth` per minute. */
export function project(rate: number, growth: number, horizon: number): number {
  return growth > 1 ? rate * growth ** (horizon / 60) : rate;
}
