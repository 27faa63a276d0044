// The balancing capability in the gateway: the balancer phase (pick, retries on another peer),
// the log-phase feedback (response time or failure back to the algorithm and the outlier
// detector), and a 0.25 s refresh per worker that follows the shared membership (weights, adds,
// removals, drains, health verdicts), slow-start ramps and ejections.
// The algorithms and their maths live in src/balancer; this module only wires them to nginx.
// Hot path (balance, feedback): no closures, no string building, no shared-dict access.
import { get_last_failure, set_current_peer, set_more_tries } from "ngx.balancer";
import { algorithm } from "../balancer/algorithms";
import { PeerStatus, multipliers } from "../balancer/effective";
import { MemberPeer, PoolMembers } from "../balancer/membership";
import * as outlier from "../balancer/outlier";
import { BalancerOptions } from "../balancer/schema";
import { ramping } from "../balancer/slow_start";
import { Algorithm, BalancedPeer, PeerSpec } from "../balancer/types";
import { EwmaPeer } from "../balancer/algorithms/peak_ewma";
import * as store from "./membership_store";
import { startHealthChecks } from "./health_checker";
import { RequestContext, currentContext, newContext } from "./request_context";
import { GatewayState, PeerRuntime, PoolRuntime, getState, newPeerRuntime } from "./state";
import { peerTryStarted, windows } from "./metrics";
import { WindowFigures } from "../metrics/counters";

/** How often each worker looks for a new membership version (a change reaches it within this). */
export const REFRESH_INTERVAL = 0.25;
const NGX_BUSY = -3;

/** One pool's balancer in one worker. */
export interface PoolBalancer {
  name: string;
  pool: PoolRuntime;
  options: BalancerOptions;
  algo: Algorithm<any>;
  /** The algorithm's state (peer records with their learned costs and in-flight counts). */
  state: unknown;
  /** Membership version this worker applied. */
  version: number;
  members: MemberPeer[];
  /** Passive outlier detection of this worker; undefined when disabled. */
  outlier: outlier.OutlierState | undefined;
  /** Upstream statuses that count as a failed try. */
  failureStatus: LuaTable<number, boolean>;
  /** set_more_tries argument on a first try (tries - 1). */
  moreTries: number;
  /** Some peer is still in its slow-start ramp: recompute multipliers on every refresh. */
  ramping: boolean;
  /** Every peer left up is unhealthy or ejected: health is ignored (see balancer/effective.ts). */
  panic: boolean;
  /** Multipliers of `members`, same order (for the status page). */
  multipliers: number[];
  /** Members currently draining (their in-flight counts are published). */
  draining: number;
}

// --- Per request ----------------------------------------------------------------------------

/** Hands one finished try back to the algorithm and the outlier detector. */
function finishTry(b: PoolBalancer, peer: BalancedPeer, rtt: number, failed: boolean, now: number): void {
  b.algo.after(b.state, peer, now, rtt, failed);
  const o = b.outlier;
  if (o !== undefined && outlier.record(o, peer.key, now, failed, rtt)) resync(b, now);
}

/**
 * A retry: nginx comes back to the balancer after a failed try. get_last_failure says why:
 * "failed" is a connection error or timeout, "next" a status that proxy_next_upstream retries.
 */
function previousTryFailed(ctx: RequestContext, now: number): BalancedPeer {
  const previous = ctx.pick!;
  const b = ctx.picker!;
  const [kind, code] = get_last_failure();
  const failed = kind !== "next" || code === undefined || b.failureStatus.get(code) === true;
  finishTry(b, previous, now - ctx.pickedAt!, failed, now);
  return previous;
}

/** balancer_by_lua: picks the peer of this try; a retry goes to another peer when there is one. */
export function balance(poolName: string): void {
  const s = getState();
  const pool = s === undefined ? undefined : s.pools.get(poolName);
  const b = pool === undefined ? undefined : pool.balancer;
  if (b === undefined) {
    ngx.log(ngx.ERR, "autoscale: balancer for unknown pool ", poolName, " (not in the config)");
    return;
  }
  const now = ngx.now();
  // No access phase ran for this location: the balancer makes the request's context (without
  // a route: the log phase resolves it).
  const ctx = currentContext() ?? newContext(undefined);
  let exclude: BalancedPeer | undefined;
  if (ctx.pick !== undefined) {
    exclude = previousTryFailed(ctx, now);
  } else if (b.moreTries > 0) {
    set_more_tries(b.moreTries);
  }
  const peer = b.algo.pick(b.state, now, math.random, exclude);
  if (peer === undefined) {
    ctx.pick = undefined;
    ngx.log(ngx.ERR, "autoscale: pool ", poolName, " has no peer to send to (all removed, drained, down or at weight 0)");
    // NGX_BUSY: nginx's own "no live upstreams" path, a 502 (ngx.ERROR would be a 500).
    return ngx.exit(NGX_BUSY);
  }
  ctx.pick = peer;
  ctx.picker = b;
  ctx.pickedAt = now;
  ctx.tries += 1;
  if (s!.config.metrics.enabled) peerTryStarted(ctx, b.pool.byAddress.get(peer.key));
  const [ok, err] = set_current_peer(peer.host, peer.port);
  if (!ok) ngx.log(ngx.ERR, "autoscale: cannot set peer ", peer.key, ": ", err);
}

/**
 * log phase: the last try's outcome (its time since the pick, `status` a failure or not) goes
 * back to the balancer that made it. Returns the peer's metrics record, undefined when this
 * request made no pick.
 */
export function feedback(ctx: RequestContext, status: number, now: number): PeerRuntime | undefined {
  const peer = ctx.pick;
  if (peer === undefined) return undefined;
  const b = ctx.picker!;
  ctx.pick = undefined;
  finishTry(b, peer, now - ctx.pickedAt!, b.failureStatus.get(status) === true, now);
  return b.pool.byAddress.get(peer.key);
}

// --- Membership, slow start, ejection: off the hot path --------------------------------------

/** Recomputes every member's multiplier and hands the peers to the algorithm. */
function resync(b: PoolBalancer, now: number): void {
  const statuses: PeerStatus[] = [];
  const o = b.outlier;
  for (const m of b.members) {
    const op = o === undefined ? undefined : o.byKey.get(`${m.host}:${m.port}`);
    let since = m.since;
    if (op !== undefined && op.returnedAt > since) since = op.returnedAt;
    statuses.push({ admin: m.state, healthy: m.healthy, ejected: op !== undefined && op.ejected, servingSince: since });
  }
  const mult: number[] = [];
  b.panic = multipliers(statuses, now, b.options.slow_start, mult);
  const specs: PeerSpec[] = [];
  let ramp = false;
  let draining = 0;
  const slow = b.options.slow_start;
  for (let i = 0; i < b.members.length; i++) {
    const m = b.members[i];
    specs.push({ host: m.host, port: m.port, weight: m.weight, multiplier: mult[i] });
    if (slow !== undefined && mult[i] > 0 && ramping(now - statuses[i].servingSince, slow)) ramp = true;
    if (m.state === "draining") draining++;
  }
  b.algo.sync(b.state, specs);
  b.multipliers = mult;
  b.ramping = ramp;
  b.draining = draining;
}

/** Takes a new membership: the pool's peer list (for metrics) and the outlier detector follow. */
function adopt(b: PoolBalancer, m: PoolMembers): void {
  const pool = b.pool;
  const peers: PeerRuntime[] = [];
  const byAddress = new LuaTable<string, PeerRuntime>();
  const keys: string[] = [];
  for (const member of m.peers) {
    const address = `${member.host}:${member.port}`;
    // Peers that remain keep their per-worker counters.
    const peer = pool.byAddress.get(address) ?? newPeerRuntime(b.name, address, member.weight);
    peer.configuredWeight = member.weight;
    peers.push(peer);
    byAddress.set(address, peer);
    keys.push(address);
  }
  pool.peers = peers;
  pool.byAddress = byAddress;
  b.members = m.peers;
  b.version = m.version;
  if (b.outlier !== undefined) outlier.sync(b.outlier, keys);
}

function failureSet(statuses: number[]): LuaTable<number, boolean> {
  const t = new LuaTable<number, boolean>();
  for (const code of statuses) t.set(code, true);
  return t;
}

function createBalancer(pool: PoolRuntime, m: PoolMembers, now: number): PoolBalancer {
  const options = pool.config.balancer;
  const algo = algorithm(options.algorithm);
  const b: PoolBalancer = {
    name: pool.config.name,
    pool,
    options,
    algo,
    state: algo.create([], { tau: options.tau, bias: options.bias, failure_penalty: options.failure_penalty, sample_weight: options.sample_weight }),
    version: 0,
    members: [],
    outlier: options.outlier === undefined ? undefined : outlier.create([], options.outlier, now),
    failureStatus: failureSet(options.failure_statuses),
    moreTries: options.tries - 1,
    ramping: false,
    panic: false,
    multipliers: [],
    draining: 0,
  };
  adopt(b, m);
  resync(b, now);
  return b;
}

/**
 * init_by_lua (master): stores each pool's membership in the shared dict (kept across a
 * reload) and builds the balancers the workers inherit. Returns an error message on failure.
 */
export function init(s: GatewayState): string | undefined {
  const err = store.seed(s);
  if (err !== undefined) return err;
  const now = ngx.now();
  for (const name of s.config.poolNames) {
    const pool = s.pools.get(name);
    const [m, lerr] = store.load(name);
    if (m === undefined) return lerr;
    pool.balancer = createBalancer(pool, m, now);
  }
  return undefined;
}

/** One worker's periodic work for one pool. */
function refresh(b: PoolBalancer, now: number, worker: number): void {
  let changed = false;
  const v = store.version(b.name);
  if (v !== undefined && v !== b.version) {
    const [m, err] = store.load(b.name);
    if (m !== undefined) {
      adopt(b, m);
      changed = true;
    } else {
      ngx.log(ngx.ERR, "autoscale: cannot read the membership of pool ", b.name, ": ", err);
    }
  }
  if (b.outlier !== undefined && outlier.evaluate(b.outlier, now)) changed = true;
  if (changed || b.ramping) resync(b, now);
  if (b.draining > 0) {
    const records = (b.state as { byKey: LuaTable<string, BalancedPeer> }).byKey;
    for (const m of b.members) {
      if (m.state === "draining") {
        const key = `${m.host}:${m.port}`;
        store.publishInflight(b.name, key, worker, records.get(key)?.inflight ?? 0, now);
      }
    }
  }
}

function logFailure(this: void, err: unknown): string {
  return debug.traceback(tostring(err), 2);
}

function refreshAll(this: void, now: number): void {
  const s = getState();
  if (s === undefined) return;
  const worker = ngx.worker.id() ?? 0;
  for (const name of s.config.poolNames) {
    const b = s.pools.get(name).balancer;
    if (b !== undefined) refresh(b, now, worker);
  }
}

function onRefresh(this: void, premature: boolean): void {
  if (premature) return;
  // ngx.now() is taken before any dict read: peerDrained relies on it (membership_store.ts).
  const [ok, err] = xpcall(refreshAll, logFailure, ngx.now());
  if (!ok) ngx.log(ngx.ERR, "autoscale: balancer refresh failed: ", tostring(err));
}

/** init_worker_by_lua: the refresh timer of this worker and the gateway's health checker. */
export function initWorker(s: GatewayState): void {
  const [ok, err] = ngx.timer.every(REFRESH_INTERVAL, onRefresh);
  if (!ok) ngx.log(ngx.ERR, "autoscale: cannot start the balancer refresh timer: ", err);
  startHealthChecks(s);
}

// --- Status --------------------------------------------------------------------------------

export interface PoolBalancingStatus {
  algorithm: string;
  membership_version: number;
  panic: boolean;
  peers: unknown[];
}

/**
 * The pool's peers as this worker sees them. `share` is the measured share of the pool's tries
 * over the shortest metrics window (all workers); `effective_weight` = weight x multiplier
 * (slow start, health, ejection, drain); `inflight` and `cost_ms` (peak-EWMA) are this worker's.
 */
export function poolStatus(s: GatewayState, pool: PoolRuntime, now: number): PoolBalancingStatus {
  const b = pool.balancer!;
  const span = `${s.config.metrics.windows[0]}s`;
  const records = (b.state as { byKey: LuaTable<string, BalancedPeer> }).byKey;
  const figures: LuaTable<string, WindowFigures>[] = [];
  let total = 0;
  for (const peer of pool.peers) {
    const w = windows(s, peer.series, now);
    figures.push(w);
    total += w.get(span).requests;
  }
  const peers: unknown[] = [];
  for (let i = 0; i < b.members.length; i++) {
    const m = b.members[i];
    const key = `${m.host}:${m.port}`;
    const rec = records.get(key) as EwmaPeer | undefined;
    const mult = b.multipliers[i] ?? 0;
    const w = figures[i];
    const requests = w.get(span).requests;
    const drained = m.state === "draining" ? store.peerDrained(b.name, key)[0] : undefined;
    peers.push({
      address: key,
      host: m.host,
      port: m.port,
      weight: m.weight,
      state: m.state,
      drained,
      healthy: m.healthy,
      ejected: b.outlier !== undefined && outlier.isEjected(b.outlier, key),
      multiplier: mult,
      effective_weight: m.weight * mult,
      share: total > 0 ? requests / total : 0,
      inflight: rec?.inflight ?? 0,
      cost_ms: rec?.cost === undefined ? undefined : rec.cost * 1000,
      windows: w,
    });
  }
  return { algorithm: b.options.algorithm, membership_version: b.version, panic: b.panic, peers };
}
