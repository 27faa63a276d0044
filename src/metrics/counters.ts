// Per-worker request counters and their sliding windows in a shared dict.
//
// The log phase only adds to plain Lua tables of the worker (no shared-dict lock per request);
// a 1 s timer flushes them into per-second buckets of the shared dict with one atomic `incr`
// per non-zero counter, and window figures are summed from those buckets, over all workers.
// A request is attributed to the second of the flush that carries it: at most 1 s late.

/** What one worker has counted for one route or peer since its last flush. */
export interface Counters {
  requests: number;
  errors: number;
  /** Sum of latencies in seconds. */
  latency: number;
}

export function newCounters(): Counters {
  return { requests: 0, errors: 0, latency: 0 };
}

/** The subset of ngx.shared.DICT the store needs, so specs can pass a table-backed fake. */
export interface CounterDict {
  incr(this: CounterDict, key: string, value: number, init?: number, initTtl?: number): LuaMultiReturn<[number | undefined, string | undefined, boolean]>;
  get(this: CounterDict, key: string): LuaMultiReturn<[ShdictValue | undefined, number | undefined]>;
}

/** Figures of one route or peer over a window, summed over all workers. */
export interface WindowFigures {
  requests: number;
  errors: number;
  /** Requests per second over the window. */
  rate: number;
  errorRatio: number;
  /** Mean latency in seconds, or undefined without requests. */
  meanLatency: number | undefined;
}

/**
 * Adds a worker's counters to the bucket of second `second` and zeroes them.
 * `base` names the series, e.g. "route|api". Returns an error message when the dict is full.
 */
export function flushCounters(dict: CounterDict, base: string, c: Counters, second: number, ttl: number): string | undefined {
  if (c.requests === 0) return undefined;
  const suffix = `|${second}`;
  let [, err] = dict.incr(`${base}|n${suffix}`, c.requests, 0, ttl);
  if (err === undefined && c.errors > 0) [, err] = dict.incr(`${base}|e${suffix}`, c.errors, 0, ttl);
  if (err === undefined) [, err] = dict.incr(`${base}|l${suffix}`, c.latency, 0, ttl);
  c.requests = 0;
  c.errors = 0;
  c.latency = 0;
  return err;
}

function bucket(dict: CounterDict, key: string): number {
  const v = dict.get(key)[0];
  return type(v) === "number" ? (v as number) : 0;
}

/** Sums the `span` complete seconds before `now` (the current second is still filling). */
export function readWindow(dict: CounterDict, base: string, now: number, span: number): WindowFigures {
  const last = math.floor(now) - 1;
  let requests = 0;
  let errors = 0;
  let latency = 0;
  for (const s of $range(last - span + 1, last)) {
    const n = bucket(dict, `${base}|n|${s}`);
    if (n > 0) {
      requests += n;
      errors += bucket(dict, `${base}|e|${s}`);
      latency += bucket(dict, `${base}|l|${s}`);
    }
  }
  return {
    requests,
    errors,
    rate: requests / span,
    errorRatio: requests > 0 ? errors / requests : 0,
    meanLatency: requests > 0 ? latency / requests : undefined,
  };
}

export function routeSeries(route: string): string {
  return `route|${route}`;
}

export function peerSeries(pool: string, address: string): string {
  return `peer|${pool}|${address}`;
}
