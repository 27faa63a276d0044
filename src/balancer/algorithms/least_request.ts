// Least-request with power of two choices (Envoy's habit): draw two eligible peers at random,
// keep the one with the higher score = weight x multiplier / (active + 1)^bias. Active counts
// this worker's in-flight requests (pick adds one, after takes it back). Two random draws keep
// the cost O(1) and avoid the herd that a strict "least" causes when workers see stale counts.
import { AlgorithmOptions, BalancedPeer, PeerSpec, RandomFn } from "../types";
import { PeerListState, drawTwo, syncPeers } from "./peer_list";

export interface LeastRequestState extends PeerListState<BalancedPeer> {
  bias: number;
}

function newRecord(this: void, key: string, spec: PeerSpec): BalancedPeer {
  return { key, host: spec.host, port: spec.port, weight: spec.weight, multiplier: 1, inflight: 0 };
}

export function create(peers: PeerSpec[], options?: AlgorithmOptions): LeastRequestState {
  const state: LeastRequestState = { peers: [], byKey: new LuaTable(), eligible: [], slot: new LuaTable(), bias: options?.bias ?? 1 };
  syncPeers(state, peers, newRecord);
  return state;
}

/** Membership, weight or multiplier change; remaining peers keep their in-flight counts. */
export function sync(state: LeastRequestState, peers: PeerSpec[]): void {
  syncPeers(state, peers, newRecord);
}

export function score(peer: BalancedPeer, bias: number): number {
  const w = peer.weight * peer.multiplier;
  if (bias === 1) return w / (peer.inflight + 1);
  if (bias === 0) return w;
  return w / math.pow(peer.inflight + 1, bias);
}

export function pick(state: LeastRequestState, _now: number, random: RandomFn, exclude?: BalancedPeer): BalancedPeer | undefined {
  const [a, b] = drawTwo(state, random, exclude);
  if (a === undefined) return undefined;
  let chosen = a;
  if (b !== undefined && score(b, state.bias) > score(a, state.bias)) chosen = b;
  chosen.inflight++;
  return chosen;
}

export function after(_state: LeastRequestState, peer: BalancedPeer, _now: number, _rtt: number, _failed: boolean): void {
  if (peer.inflight > 0) peer.inflight--;
}
