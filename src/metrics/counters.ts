// Per-worker request counters, their per-second windows and running totals in a shared dict.
//
// The log phase only adds to plain Lua tables of the worker (no shared-dict lock per request).
// A 1 s timer flushes each series (a route or a peer) that saw requests:
// - into its window bucket: one `safe_set` of one string per series, per second and per worker
//   (key "<series>|<second>|<worker>", expiring after the longest window), holding the counts
//   and the sparse latency histogram of that second. Readers add the buckets of every worker:
//   windows, rates and percentiles are merged over workers. A request is attributed to the
//   second of the flush that carries it: at most 1 s late.
// - into its totals (Prometheus counters): one `incr` per non-zero field.
// - its in-flight gauge: one `set` per worker while non-zero.
// Nothing here evicts: values are written with safe_set / safe_add, so a dict that is too small
// loses the newest figures (and says so) instead of dropping live ones.
// Pure: the dict comes in as an argument (specs pass a table-backed fake).
import { Histogram, decodeInto, encode, mergeInto, percentiles, prometheusSlot, PROMETHEUS_SLOTS } from "./histogram";
import { InflightRing, inflight, newInflight } from "./inflight";

/** The additive figures of a route or peer: per worker between flushes, or running totals. */
export interface Figures {
  requests: number;
  /** 5xx answers (and, for peers, tries that failed to connect or timed out). */
  errors: number;
  /** Sum of latencies in seconds. */
  latency: number;
  /** Answers by status class: 1xx (and statuses outside 100-599 are 5xx), 2xx, 3xx, 4xx, 5xx. */
  c1: number;
  c2: number;
  c3: number;
  c4: number;
  c5: number;
  /** Upstream tries that could not connect, and that timed out. */
  connectFailures: number;
  timeouts: number;
  /** Bytes received from the client (or sent to the peer) and sent to the client (or received from the peer). */
  bytesIn: number;
  bytesOut: number;
}

/** What one worker has counted for one route or peer since its last flush. */
export interface Counters extends Figures {
  hist: Histogram;
  inflight: InflightRing;
  /** Dict admission of the series: 0 not decided yet, 1 own series, -1 counted under the overflow series. */
  admitted: number;
  /** Second of this worker's last window write, and what it wrote (to add to it within the same second). */
  lastSecond: number;
  lastInflight: number;
}

export function newCounters(): Counters {
  return {
    requests: 0,
    errors: 0,
    latency: 0,
    c1: 0,
    c2: 0,
    c3: 0,
    c4: 0,
    c5: 0,
    connectFailures: 0,
    timeouts: 0,
    bytesIn: 0,
    bytesOut: 0,
    hist: new LuaTable(),
    inflight: newInflight(),
    admitted: 0,
    lastSecond: -1,
    lastInflight: 0,
  };
}

/** Adds `from`'s counts (not its in-flight ring) into `into` and zeroes them in `from`. */
export function moveCounts(into: Counters, from: Counters): void {
  into.requests += from.requests;
  into.errors += from.errors;
  into.latency += from.latency;
  into.c1 += from.c1;
  into.c2 += from.c2;
  into.c3 += from.c3;
  into.c4 += from.c4;
  into.c5 += from.c5;
  into.connectFailures += from.connectFailures;
  into.timeouts += from.timeouts;
  into.bytesIn += from.bytesIn;
  into.bytesOut += from.bytesOut;
  mergeInto(into.hist, from.hist);
  zeroCounts(from);
}

function zeroCounts(c: Counters): void {
  c.requests = 0;
  c.errors = 0;
  c.latency = 0;
  c.c1 = 0;
  c.c2 = 0;
  c.c3 = 0;
  c.c4 = 0;
  c.c5 = 0;
  c.connectFailures = 0;
  c.timeouts = 0;
  c.bytesIn = 0;
  c.bytesOut = 0;
  c.hist = new LuaTable();
}

/** The subset of ngx.shared.DICT the store needs, so specs can pass a table-backed fake. */
export interface CounterDict {
  incr(this: CounterDict, key: string, value: number, init?: number, initTtl?: number): LuaMultiReturn<[number | undefined, string | undefined, boolean]>;
  get(this: CounterDict, key: string): LuaMultiReturn<[ShdictValue | undefined, number | undefined]>;
  set(this: CounterDict, key: string, value: ShdictValue | undefined, exptime?: number, flags?: number): LuaMultiReturn<[boolean, string | undefined, boolean]>;
  safe_set(this: CounterDict, key: string, value: ShdictValue, exptime?: number, flags?: number): LuaMultiReturn<[boolean, string | undefined]>;
  safe_add(this: CounterDict, key: string, value: ShdictValue, exptime?: number, flags?: number): LuaMultiReturn<[boolean, string | undefined]>;
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
  /** Answers by class, "2xx" → count. */
  responses: { "1xx": number; "2xx": number; "3xx": number; "4xx": number; "5xx": number };
  connectFailures: number;
  timeouts: number;
  bytesIn: number;
  bytesOut: number;
  /** Mean number of requests in progress over the window (Little's law: latency sum / span). */
  concurrency: number;
  /** Latency percentiles in seconds (only when asked for; undefined without requests). */
  p50?: number;
  p90?: number;
  p99?: number;
}

let defaultWorkers = 1;

/** How many workers write window buckets (the gateway sets ngx.worker.count() in every worker). */
export function setWorkerCount(n: number): void {
  defaultWorkers = n;
}

const WINDOW_PATTERN = "^([^ |]+) ([^ |]+) ([^ |]+) ([^ |]+) ([^ |]+) ([^ |]+) ([^ |]+) ([^ |]+) ([^ |]+) ([^ |]+) ([^ |]+) ([^ |]+)|?(.*)$";

function windowText(c: Counters): string {
  return `${c.requests} ${c.errors} ${c.latency} ${c.c1} ${c.c2} ${c.c3} ${c.c4} ${c.c5} ${c.connectFailures} ${c.timeouts} ${c.bytesIn} ${c.bytesOut}|${encode(c.hist)}`;
}

/** Parses a window bucket into `into` (counts only; the histogram when `hist` is given). */
function addWindowText(into: Counters, text: string, hist: Histogram | undefined): void {
  const [n, e, l, c1, c2, c3, c4, c5, cf, to, bi, bo, h] = string.match(text, WINDOW_PATTERN);
  if (n === undefined) return;
  into.requests += tonumber(n) ?? 0;
  into.errors += tonumber(e) ?? 0;
  into.latency += tonumber(l) ?? 0;
  into.c1 += tonumber(c1) ?? 0;
  into.c2 += tonumber(c2) ?? 0;
  into.c3 += tonumber(c3) ?? 0;
  into.c4 += tonumber(c4) ?? 0;
  into.c5 += tonumber(c5) ?? 0;
  into.connectFailures += tonumber(cf) ?? 0;
  into.timeouts += tonumber(to) ?? 0;
  into.bytesIn += tonumber(bi) ?? 0;
  into.bytesOut += tonumber(bo) ?? 0;
  if (hist !== undefined && h !== undefined && h !== "") decodeInto(hist, h);
}

export function windowKey(base: string, second: number, worker: number): string {
  return `${base}|${second}|${worker}`;
}

const TOTAL_FIELDS = ["n", "e", "l", "c1", "c2", "c3", "c4", "c5", "cf", "to", "bi", "bo"];

function totalKey(base: string, field: string): string {
  return `${base}|t|${field}`;
}

function addTotal(dict: CounterDict, key: string, n: number): string | undefined {
  if (n === 0) return undefined;
  const [, err] = dict.incr(key, n);
  if (err === undefined) return undefined;
  if (err !== "not found") return err;
  // First count of this total: created without ever evicting (a racing worker may create it first).
  const [ok, addErr] = dict.safe_add(key, n);
  if (ok) return undefined;
  if (addErr === "exists") return dict.incr(key, n)[1];
  return addErr;
}

/**
 * Writes a worker's counters of one series: its window bucket of second `second` (expiring
 * after `ttl` s) and its totals; zeroes the counts. Returns an error message when the dict is full.
 */
export function flushCounters(dict: CounterDict, base: string, c: Counters, second: number, ttl: number, worker = 0): string | undefined {
  if (c.requests === 0) return undefined;
  const key = windowKey(base, second, worker);
  let text: string;
  if (c.lastSecond === second) {
    // A second flush within the same second (timer jitter): add to what this worker wrote.
    const acc = newCounters();
    const prev = dict.get(key)[0];
    if (type(prev) === "string") addWindowText(acc, prev as string, acc.hist);
    const saved = c.hist;
    acc.requests += c.requests;
    acc.errors += c.errors;
    acc.latency += c.latency;
    acc.c1 += c.c1;
    acc.c2 += c.c2;
    acc.c3 += c.c3;
    acc.c4 += c.c4;
    acc.c5 += c.c5;
    acc.connectFailures += c.connectFailures;
    acc.timeouts += c.timeouts;
    acc.bytesIn += c.bytesIn;
    acc.bytesOut += c.bytesOut;
    mergeInto(acc.hist, saved);
    text = windowText(acc);
  } else {
    text = windowText(c);
  }
  c.lastSecond = second;
  const [, setErr] = dict.safe_set(key, text, ttl);
  let err: string | undefined = setErr;

  const values = [c.requests, c.errors, c.latency, c.c1, c.c2, c.c3, c.c4, c.c5, c.connectFailures, c.timeouts, c.bytesIn, c.bytesOut];
  for (const i of $range(1, TOTAL_FIELDS.length)) err = addTotal(dict, totalKey(base, TOTAL_FIELDS[i - 1]), values[i - 1]) ?? err;
  const slots: number[] = [];
  for (const i of $range(1, PROMETHEUS_SLOTS)) slots[i - 1] = 0;
  for (const [b, n] of c.hist) slots[prometheusSlot(b) - 1] += n;
  for (const i of $range(1, PROMETHEUS_SLOTS)) err = addTotal(dict, totalKey(base, `h${i}`), slots[i - 1]) ?? err;
  zeroCounts(c);
  return err;
}

/**
 * Writes this worker's in-flight count of a series (a gauge that expires after `ttl` s, so a
 * worker that died stops counting) when it is non-zero or just became zero.
 */
export function flushInflight(dict: CounterDict, base: string, c: Counters, nowSecond: number, ttl: number, worker = 0): string | undefined {
  const n = inflight(c.inflight, nowSecond);
  if (n === 0 && c.lastInflight === 0) return undefined;
  c.lastInflight = n;
  return dict.safe_set(`${base}|i|${worker}`, n, ttl)[1];
}

/** In-flight requests of a series, summed over workers. */
export function readInflight(dict: CounterDict, base: string, workers = defaultWorkers): number {
  let n = 0;
  for (const w of $range(0, workers - 1)) {
    const v = dict.get(`${base}|i|${w}`)[0];
    if (type(v) === "number") n += v as number;
  }
  return n;
}

/**
 * Sums the `span` complete seconds before `now` (the current second is still filling) over
 * `workers` workers; with `withPercentiles`, also merges the latency histograms (into
 * `histOut` when given, for callers that need the buckets).
 */
export function readWindow(dict: CounterDict, base: string, now: number, span: number, workers = defaultWorkers, withPercentiles = false, histOut?: Histogram): WindowFigures {
  const last = math.floor(now) - 1;
  const acc = newCounters();
  if (histOut !== undefined) acc.hist = histOut;
  const hist = withPercentiles || histOut !== undefined ? acc.hist : undefined;
  for (const s of $range(last - span + 1, last)) {
    for (const w of $range(0, workers - 1)) {
      const v = dict.get(windowKey(base, s, w))[0];
      if (type(v) === "string") addWindowText(acc, v as string, hist);
    }
  }
  const requests = acc.requests;
  const figures: WindowFigures = {
    requests,
    errors: acc.errors,
    rate: requests / span,
    errorRatio: requests > 0 ? acc.errors / requests : 0,
    meanLatency: requests > 0 ? acc.latency / requests : undefined,
    responses: { "1xx": acc.c1, "2xx": acc.c2, "3xx": acc.c3, "4xx": acc.c4, "5xx": acc.c5 },
    connectFailures: acc.connectFailures,
    timeouts: acc.timeouts,
    bytesIn: acc.bytesIn,
    bytesOut: acc.bytesOut,
    concurrency: acc.latency / span,
  };
  if (withPercentiles) {
    const p = percentiles(acc.hist, requests);
    figures.p50 = p.p50;
    figures.p90 = p.p90;
    figures.p99 = p.p99;
  }
  return figures;
}

/** Running totals of a series since the dict was created (Prometheus counters). */
export interface Totals extends Figures {
  /** Count per Prometheus bucket slot (not cumulative), 1..PROMETHEUS_SLOTS. */
  slots: number[];
}

function total(dict: CounterDict, key: string): number {
  const v = dict.get(key)[0];
  return type(v) === "number" ? (v as number) : 0;
}

export function readTotals(dict: CounterDict, base: string): Totals {
  const slots: number[] = [];
  for (const i of $range(1, PROMETHEUS_SLOTS)) slots[i - 1] = total(dict, totalKey(base, `h${i}`));
  return {
    requests: total(dict, totalKey(base, "n")),
    errors: total(dict, totalKey(base, "e")),
    latency: total(dict, totalKey(base, "l")),
    c1: total(dict, totalKey(base, "c1")),
    c2: total(dict, totalKey(base, "c2")),
    c3: total(dict, totalKey(base, "c3")),
    c4: total(dict, totalKey(base, "c4")),
    c5: total(dict, totalKey(base, "c5")),
    connectFailures: total(dict, totalKey(base, "cf")),
    timeouts: total(dict, totalKey(base, "to")),
    bytesIn: total(dict, totalKey(base, "bi")),
    bytesOut: total(dict, totalKey(base, "bo")),
    slots,
  };
}

const ADMITTED_COUNT_KEY = "admitted#";

/**
 * Decides, once for all workers, whether a series gets its own keys in the dict: the first
 * `cap` series asking get them, later ones are counted under an overflow series. Returns 1
 * (own keys), -1 (overflow), or 0 when another worker is deciding right now (ask again later).
 */
export function admit(dict: CounterDict, base: string, cap: number): number {
  const key = `admitted|${base}`;
  const known = dict.get(key)[0];
  if (known !== undefined) return known === 1 ? 1 : known === -1 ? -1 : 0;
  // Once the cap is reached, refused series leave no key: the admission keys stay bounded too.
  if (total(dict, ADMITTED_COUNT_KEY) >= cap) return -1;
  const [ok, err] = dict.safe_add(key, 0);
  if (!ok) {
    if (err !== "exists") return 0;
    const v = dict.get(key)[0];
    return v === 1 ? 1 : v === -1 ? -1 : 0;
  }
  const [n] = dict.incr(ADMITTED_COUNT_KEY, 1, 0);
  const verdict = n !== undefined && n <= cap ? 1 : -1;
  dict.safe_set(key, verdict);
  return verdict;
}

/** How many series asked for their own keys before the cap was reached (at most cap + workers). */
export function admittedCount(dict: CounterDict): number {
  return total(dict, ADMITTED_COUNT_KEY);
}

export function routeSeries(route: string): string {
  return `route|${route}`;
}

export function peerSeries(pool: string, address: string): string {
  return `peer|${pool}|${address}`;
}
