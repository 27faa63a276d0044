// Peak-EWMA with power of two choices (Finagle's design), counting what ingress-nginx and APISIX
// leave out: in-flight requests and failures.
// - cost: a time-decayed average of response times. A sample above the cost replaces it at once
//   (the "peak": a peer that turns slow is avoided after one slow response); otherwise
//   cost = cost x w + sample x (1 - w), w = exp(-dt / tau), dt = time since the last sample,
//   with w at most 1 - sample_weight (default 0.05): every sample moves the cost at least 5 %
//   toward itself. Pure time decay (sample_weight 0, Finagle) leaves a fast peer priced at
//   one tail sample for about tau x ln(peak / mean) seconds at any request rate; the floor
//   lets it recover within some twenty samples, while a truly slow peer, whose every sample
//   is slow, stays expensive (the simulation spec: p99 1.2x instead of 1.6x of the fast pool).
// - At pick time the cost is read decayed toward zero by exp(-(now - stamp) / tau), without
//   storing it: a peer that got no traffic for a while looks cheaper again and gets re-probed.
// - load = cost x (in-flight + 1) / (weight x multiplier); of two random eligible peers the lower
//   load wins.
// - A failed try (connect error, timeout, a configured 5xx) is a penalty sample of
//   max(its own time, failure_penalty, 2 x current cost), capped at 16 x failure_penalty: a peer
//   that fails fast must not look fast, and one that keeps failing looks worse each time.
// - A new peer starts from the pool's average cost, so it is neither flooded nor starved.
import { AlgorithmOptions, BalancedPeer, PeerSpec, RandomFn } from "../types";
import { PeerListState, drawTwo, syncPeers } from "./peer_list";

export interface EwmaPeer extends BalancedPeer {
  /** Seconds; 0 until the first sample (or the seed). */
  cost: number;
  /** Time of the last sample (seconds, the shell's clock); 0 = never. */
  stamp: number;
}

export interface EwmaState extends PeerListState<EwmaPeer> {
  tau: number;
  penalty: number;
  /** Largest w a sample may get: 1 - sample_weight. */
  maxKeep: number;
}

/** Tie-breaker for peers without samples: their load still grows with in-flight requests. */
const COST_FLOOR = 1e-6;
const PENALTY_CAP_FACTOR = 16;

function newRecord(this: void, key: string, spec: PeerSpec): EwmaPeer {
  return { key, host: spec.host, port: spec.port, weight: spec.weight, multiplier: 1, inflight: 0, cost: 0, stamp: 0 };
}

/** Seeds new peers with the pool's average cost, taken at the latest sample time. */
function seed(state: EwmaState, added: EwmaPeer[]): void {
  if (added.length === 0) return;
  let latest = 0;
  for (const peer of state.peers) {
    if (peer.stamp > latest) latest = peer.stamp;
  }
  if (latest === 0) return;
  let sum = 0;
  let count = 0;
  for (const peer of state.peers) {
    if (peer.stamp > 0) {
      sum += peer.cost * math.exp(-(latest - peer.stamp) / state.tau);
      count++;
    }
  }
  const average = sum / count;
  for (const peer of added) {
    peer.cost = average;
    peer.stamp = latest;
  }
}

export function create(peers: PeerSpec[], options?: AlgorithmOptions): EwmaState {
  const state: EwmaState = {
    peers: [],
    byKey: new LuaTable(),
    eligible: [],
    slot: new LuaTable(),
    tau: options?.tau ?? 10,
    penalty: options?.failure_penalty ?? 1,
    maxKeep: 1 - (options?.sample_weight ?? 0.05),
  };
  syncPeers(state, peers, newRecord);
  return state;
}

/** Membership, weight or multiplier change; remaining peers keep cost and in-flight counts. */
export function sync(state: EwmaState, peers: PeerSpec[]): void {
  seed(state, syncPeers(state, peers, newRecord));
}

/** The cost as seen at `now`: decayed toward zero since the last sample. */
export function currentCost(state: EwmaState, peer: EwmaPeer, now: number): number {
  const dt = now - peer.stamp;
  if (dt <= 0) return peer.cost;
  return peer.cost * math.exp(-dt / state.tau);
}

export function load(state: EwmaState, peer: EwmaPeer, now: number): number {
  let cost = currentCost(state, peer, now);
  if (cost < COST_FLOOR) cost = COST_FLOOR;
  return (cost * (peer.inflight + 1)) / (peer.weight * peer.multiplier);
}

export function pick(state: EwmaState, now: number, random: RandomFn, exclude?: BalancedPeer): BalancedPeer | undefined {
  const [a, b] = drawTwo(state, random, exclude);
  if (a === undefined) return undefined;
  let chosen = a;
  if (b !== undefined && load(state, b, now) < load(state, a, now)) chosen = b;
  chosen.inflight++;
  return chosen;
}

/** The sample a failed try counts as. */
export function penaltySample(state: EwmaState, peer: EwmaPeer, now: number, rtt: number): number {
  let sample = 2 * currentCost(state, peer, now);
  if (sample < state.penalty) sample = state.penalty;
  if (sample > state.penalty * PENALTY_CAP_FACTOR) sample = state.penalty * PENALTY_CAP_FACTOR;
  return rtt > sample ? rtt : sample;
}

export function after(state: EwmaState, peer: BalancedPeer, now: number, rtt: number, failed: boolean): void {
  const p = peer as EwmaPeer;
  if (p.inflight > 0) p.inflight--;
  const sample = failed ? penaltySample(state, p, now, rtt) : rtt;
  if (p.stamp === 0 || sample > p.cost) {
    p.cost = sample;
  } else {
    const dt = now - p.stamp;
    let w = dt > 0 ? math.exp(-dt / state.tau) : 1;
    if (w > state.maxKeep) w = state.maxKeep;
    p.cost = p.cost * w + sample * (1 - w);
  }
  if (now > p.stamp) p.stamp = now;
}
