// Smooth weighted round robin, nginx's algorithm: every pick adds each peer's effective weight
// to its running score, takes the highest score and subtracts the total from it. The sequence
// interleaves peers (5:1:1 gives a a b a c a a, not a a a a a b c) and follows weight changes
// at once. Effective weight = weight x multiplier (slow start, health, ejection, drain).
import { AlgorithmOptions, BalancedPeer, PeerSpec, RandomFn } from "../types";
import { PeerListState, syncPeers } from "./peer_list";

export interface RoundRobinPeer extends BalancedPeer {
  /** nginx's current_weight. */
  current: number;
}

export interface RoundRobinState extends PeerListState<RoundRobinPeer> {}

function newRecord(this: void, key: string, spec: PeerSpec): RoundRobinPeer {
  return { key, host: spec.host, port: spec.port, weight: spec.weight, multiplier: 1, inflight: 0, current: 0 };
}

export function create(peers: PeerSpec[], _options?: AlgorithmOptions): RoundRobinState {
  const state: RoundRobinState = { peers: [], byKey: new LuaTable(), eligible: [], slot: new LuaTable() };
  syncPeers(state, peers, newRecord);
  return state;
}

/** Membership, weight or multiplier change; remaining peers keep their running score. */
export function sync(state: RoundRobinState, peers: PeerSpec[]): void {
  syncPeers(state, peers, newRecord);
}

export function pick(state: RoundRobinState, _now: number, _random: RandomFn, exclude?: BalancedPeer): BalancedPeer | undefined {
  const eligible = state.eligible;
  let total = 0;
  let best: RoundRobinPeer | undefined;
  for (const i of $range(1, eligible.length)) {
    const peer = eligible[i - 1];
    if (peer === exclude) continue;
    const w = peer.weight * peer.multiplier;
    peer.current += w;
    total += w;
    if (best === undefined || peer.current > best.current) best = peer;
  }
  if (best === undefined) {
    // Only the excluded peer is left (or none): a second try at it beats no try.
    if (exclude !== undefined && state.slot.get(exclude as RoundRobinPeer) !== undefined) {
      exclude.inflight++;
      return exclude;
    }
    return undefined;
  }
  best.current -= total;
  best.inflight++;
  return best;
}

export function after(_state: RoundRobinState, peer: BalancedPeer, _now: number, _rtt: number, _failed: boolean): void {
  if (peer.inflight > 0) peer.inflight--;
}
