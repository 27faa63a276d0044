// Sliding extreme over a time window: the largest (or smallest) value pushed after a cutoff
// time, in O(1) amortized per push. A monotonic deque kept in a ring buffer of two parallel
// Lua arrays, so a stabilization window of 300 one-second samples allocates nothing per
// evaluation (the ring only grows, by doubling, when it fills).

export interface ExtremeWindow {
  times: LuaTable<number, number>;
  values: LuaTable<number, number>;
  /** Slot (1-based) of the oldest kept sample. */
  head: number;
  size: number;
  cap: number;
  /** true: tracks the largest value; false: the smallest. */
  largest: boolean;
}

export function newExtremeWindow(largest: boolean, cap: number): ExtremeWindow {
  const times = new LuaTable<number, number>();
  const values = new LuaTable<number, number>();
  for (const i of $range(1, cap)) {
    times.set(i, 0);
    values.set(i, 0);
  }
  return { times, values, head: 1, size: 0, cap, largest };
}

function slot(w: ExtremeWindow, offset: number): number {
  return ((w.head - 1 + offset) % w.cap) + 1;
}

function grow(w: ExtremeWindow): void {
  const times = new LuaTable<number, number>();
  const values = new LuaTable<number, number>();
  const cap = w.cap * 2;
  for (const i of $range(1, cap)) {
    if (i <= w.size) {
      const s = slot(w, i - 1);
      times.set(i, w.times.get(s));
      values.set(i, w.values.get(s));
    } else {
      times.set(i, 0);
      values.set(i, 0);
    }
  }
  w.times = times;
  w.values = values;
  w.head = 1;
  w.cap = cap;
}

/** Drops samples taken at or before `cutoff` (a sample counts only when strictly after it). */
export function evictUntil(w: ExtremeWindow, cutoff: number): void {
  while (w.size > 0 && w.times.get(w.head) <= cutoff) {
    w.head = (w.head % w.cap) + 1;
    w.size -= 1;
  }
}

/** Adds a sample; samples it dominates can never be the extreme again and are dropped. */
export function pushSample(w: ExtremeWindow, t: number, v: number): void {
  while (w.size > 0) {
    const tail = w.values.get(slot(w, w.size - 1));
    if (w.largest ? tail <= v : tail >= v) w.size -= 1;
    else break;
  }
  if (w.size === w.cap) grow(w);
  const s = slot(w, w.size);
  w.times.set(s, t);
  w.values.set(s, v);
  w.size += 1;
}

/** The extreme of the kept samples, or `fallback` when there is none. */
export function extreme(w: ExtremeWindow, fallback: number): number {
  return w.size > 0 ? w.values.get(w.head) : fallback;
}

export function clearWindow(w: ExtremeWindow): void {
  w.head = 1;
  w.size = 0;
}
