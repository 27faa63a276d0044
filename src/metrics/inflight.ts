// In-flight requests of one worker, robust to requests whose end is never seen.
//
// A request is counted as started in the slot of its start second and finished in that same
// slot (the log phase knows the start second). A ring of `size` one-second slots keeps the
// difference; a slot is reused (and its count forgotten) once its second is `size` seconds old.
// So a request whose log phase never runs (an internal redirect to a location without the log
// handler, a crash of the request's Lua code) stops being counted after at most `size` seconds,
// and a request that really lasts longer than that is no longer counted either. Pure: times come
// in as arguments.

export interface InflightRing {
  /** Slots in the ring (seconds a start stays counted); 0 until first use. */
  size: number;
  /** Second each slot counts for. */
  stamps: number[];
  /** Requests started in that second and not finished. */
  counts: number[];
}

export function newInflight(): InflightRing {
  return { size: 0, stamps: [], counts: [] };
}

function prepare(r: InflightRing, size: number): void {
  r.size = size;
  for (const i of $range(0, size - 1)) {
    r.stamps[i] = -1;
    r.counts[i] = 0;
  }
}

/** A request that started in second `second` (whole seconds). */
export function started(r: InflightRing, second: number, size: number): void {
  if (r.size !== size) prepare(r, size);
  const slot = second % size;
  if (r.stamps[slot] !== second) {
    r.stamps[slot] = second;
    r.counts[slot] = 1;
  } else {
    r.counts[slot] += 1;
  }
}

/** The request that started in second `second` has finished. */
export function finished(r: InflightRing, second: number): void {
  const size = r.size;
  if (size === 0) return;
  const slot = second % size;
  if (r.stamps[slot] === second && r.counts[slot] > 0) r.counts[slot] -= 1;
}

/** Requests started within the last `size` seconds up to `nowSecond` and not finished. */
export function inflight(r: InflightRing, nowSecond: number): number {
  let n = 0;
  const size = r.size;
  for (const i of $range(0, size - 1)) {
    const age = nowSecond - r.stamps[i];
    if (age >= 0 && age < size) n += r.counts[i];
  }
  return n;
}
