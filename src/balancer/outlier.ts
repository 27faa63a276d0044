// Passive outlier ejection, after Envoy: a peer is taken out of rotation for a while when it
// fails `consecutive_failures` tries in a row, or when its success rate over an interval falls
// below mean - success_rate_stdev_factor x stddev of the pool's peers that saw enough requests.
// - Ejection time = base_ejection_time x (times ejected), at most max_ejection_time; the count
//   drops by one for each interval a peer goes without being ejected.
// - At most max_ejection_percent of the pool is ejected at once, rounded down but at least one
//   peer, and never the last serving peer of the pool.
// - Latency outliers (ours; Envoy has none, AWS ALB's anomaly mitigation is the precedent): a
//   peer whose mean latency of successful tries is above latency_factor x the median of the
//   pool's peers (at least latency_minimum_hosts peers with latency_request_volume tries each,
//   counted since the interval began) is ejected the same way. Peak-EWMA alone still sends a 5x
//   slower peer a few percent of the requests at high concurrency (load = cost x (in-flight + 1)
//   ties at 4 in-flight requests on a fast peer), and those few percent are the pool's p99. The
//   median is robust: when the whole pool slows down, nobody is an outlier.
// - `record` runs per request (log phase): one table lookup and a few counters. `evaluate`
//   runs from a timer (every 0.25 s): un-ejects peers whose time passed, runs the latency rule
//   and, once per interval, the success-rate analysis.

export interface OutlierOptions {
  /** 0 disables the consecutive-failures rule. */
  consecutive_failures: number;
  /** Seconds between success-rate analyses (and counter resets). */
  interval: number;
  base_ejection_time: number;
  max_ejection_time: number;
  max_ejection_percent: number;
  /** 0 disables the success-rate rule. */
  success_rate_stdev_factor: number;
  /** Fewer qualifying peers than this: no success-rate analysis (the statistics mean nothing). */
  success_rate_minimum_hosts: number;
  /** Requests a peer needs in the interval to take part in the analysis. */
  success_rate_request_volume: number;
  /** A peer this many times slower than the pool's median is ejected; 0 disables the rule. */
  latency_factor: number;
  /** Fewer qualifying peers than this: no latency analysis. */
  latency_minimum_hosts: number;
  /** Successful tries a peer needs since the interval began to take part in the latency analysis. */
  latency_request_volume: number;
}

export const OUTLIER_DEFAULTS: OutlierOptions = {
  consecutive_failures: 5,
  interval: 10,
  base_ejection_time: 30,
  max_ejection_time: 300,
  max_ejection_percent: 10,
  success_rate_stdev_factor: 1.9,
  success_rate_minimum_hosts: 5,
  success_rate_request_volume: 100,
  latency_factor: 3,
  latency_minimum_hosts: 3,
  latency_request_volume: 20,
};

export interface OutlierPeer {
  key: string;
  consecutive: number;
  requests: number;
  successes: number;
  ejected: boolean;
  ejectedUntil: number;
  timesEjected: number;
  /** Ejected during the current interval (so its count does not decay). */
  ejectedThisInterval: boolean;
  /** When it last came back from an ejection (slow start starts here); 0 = never ejected. */
  returnedAt: number;
  /** Successful tries since the interval began (or it came back), and the sum of their latencies. */
  latencyCount: number;
  latencySum: number;
}

export interface OutlierState {
  options: OutlierOptions;
  peers: OutlierPeer[];
  byKey: LuaTable<string, OutlierPeer>;
  ejectedCount: number;
  intervalEnd: number;
}

function newPeer(key: string): OutlierPeer {
  return { key, consecutive: 0, requests: 0, successes: 0, ejected: false, ejectedUntil: 0, timesEjected: 0, ejectedThisInterval: false, returnedAt: 0, latencyCount: 0, latencySum: 0 };
}

export function create(keys: string[], options: OutlierOptions, now: number): OutlierState {
  const state: OutlierState = { options, peers: [], byKey: new LuaTable(), ejectedCount: 0, intervalEnd: now + options.interval };
  sync(state, keys);
  return state;
}

/** Membership change: peers that remain keep their counters and ejection. */
export function sync(state: OutlierState, keys: string[]): void {
  const byKey = new LuaTable<string, OutlierPeer>();
  const peers: OutlierPeer[] = [];
  let ejected = 0;
  for (const key of keys) {
    if (byKey.has(key)) continue;
    const peer = state.byKey.get(key) ?? newPeer(key);
    byKey.set(key, peer);
    peers.push(peer);
    if (peer.ejected) ejected++;
  }
  state.peers = peers;
  state.byKey = byKey;
  state.ejectedCount = ejected;
}

/** How many peers may be ejected at once in a pool of `n`. */
export function ejectionLimit(n: number, percent: number): number {
  let limit = math.floor((n * percent) / 100);
  if (limit < 1) limit = 1;
  if (limit > n - 1) limit = n - 1;
  return limit;
}

function eject(state: OutlierState, peer: OutlierPeer, now: number): boolean {
  const o = state.options;
  if (peer.ejected || state.ejectedCount >= ejectionLimit(state.peers.length, o.max_ejection_percent)) return false;
  peer.timesEjected++;
  let time = o.base_ejection_time * peer.timesEjected;
  const cap = o.max_ejection_time > o.base_ejection_time ? o.max_ejection_time : o.base_ejection_time;
  if (time > cap) time = cap;
  peer.ejected = true;
  peer.ejectedUntil = now + time;
  peer.ejectedThisInterval = true;
  state.ejectedCount++;
  return true;
}

/**
 * One finished try of `latency` seconds. Returns true when this failure ejected the peer (the
 * shell then re-syncs the balancer so the peer gets nothing from the next pick on).
 */
export function record(state: OutlierState, key: string, now: number, failed: boolean, latency: number): boolean {
  const peer = state.byKey.get(key);
  if (peer === undefined) return false;
  peer.requests++;
  if (!failed) {
    peer.successes++;
    peer.consecutive = 0;
    peer.latencyCount++;
    peer.latencySum += latency;
    return false;
  }
  peer.consecutive++;
  const limit = state.options.consecutive_failures;
  if (limit > 0 && peer.consecutive >= limit && !peer.ejected) {
    peer.consecutive = 0;
    return eject(state, peer, now);
  }
  return false;
}

export function isEjected(state: OutlierState, key: string): boolean {
  const peer = state.byKey.get(key);
  return peer !== undefined && peer.ejected;
}

function successRatePass(state: OutlierState, now: number): boolean {
  const o = state.options;
  if (o.success_rate_stdev_factor <= 0) return false;
  let count = 0;
  let sum = 0;
  let sumSquares = 0;
  for (const peer of state.peers) {
    if (!peer.ejected && peer.requests >= o.success_rate_request_volume) {
      const rate = peer.successes / peer.requests;
      count++;
      sum += rate;
      sumSquares += rate * rate;
    }
  }
  if (count < o.success_rate_minimum_hosts || count === 0) return false;
  const mean = sum / count;
  let variance = sumSquares / count - mean * mean;
  if (variance < 0) variance = 0;
  const threshold = mean - o.success_rate_stdev_factor * math.sqrt(variance);
  let changed = false;
  for (const peer of state.peers) {
    if (!peer.ejected && peer.requests >= o.success_rate_request_volume && peer.successes / peer.requests < threshold) {
      if (eject(state, peer, now)) changed = true;
    }
  }
  return changed;
}

/** The median of a short list (sorted in place). */
function median(xs: number[]): number {
  table.sort(xs);
  const n = xs.length;
  const mid = math.floor(n / 2);
  return n % 2 === 1 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2;
}

function latencyPass(state: OutlierState, now: number): boolean {
  const o = state.options;
  if (o.latency_factor <= 0) return false;
  const means: number[] = [];
  for (const peer of state.peers) {
    if (!peer.ejected && peer.latencyCount >= o.latency_request_volume) means.push(peer.latencySum / peer.latencyCount);
  }
  if (means.length < o.latency_minimum_hosts || means.length === 0) return false;
  const threshold = o.latency_factor * median(means);
  let changed = false;
  for (const peer of state.peers) {
    if (!peer.ejected && peer.latencyCount >= o.latency_request_volume && peer.latencySum / peer.latencyCount > threshold) {
      if (eject(state, peer, now)) {
        peer.latencyCount = 0;
        peer.latencySum = 0;
        changed = true;
      }
    }
  }
  return changed;
}

/**
 * Timer work: un-ejects peers whose time is up, runs the latency rule and, when the interval
 * ends, the success-rate analysis, decays ejection counts and resets the interval counters.
 * Returns true when any peer changed state.
 */
export function evaluate(state: OutlierState, now: number): boolean {
  let changed = false;
  for (const peer of state.peers) {
    if (peer.ejected && now >= peer.ejectedUntil) {
      peer.ejected = false;
      peer.consecutive = 0;
      peer.returnedAt = now;
      peer.latencyCount = 0;
      peer.latencySum = 0;
      state.ejectedCount--;
      changed = true;
    }
  }
  if (latencyPass(state, now)) changed = true;
  if (now < state.intervalEnd) return changed;
  if (successRatePass(state, now)) changed = true;
  for (const peer of state.peers) {
    if (!peer.ejected && !peer.ejectedThisInterval && peer.timesEjected > 0) peer.timesEjected--;
    peer.ejectedThisInterval = false;
    peer.requests = 0;
    peer.successes = 0;
    peer.latencyCount = 0;
    peer.latencySum = 0;
  }
  state.intervalEnd = now + state.options.interval;
  return changed;
}
