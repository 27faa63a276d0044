// Shared by the algorithms: rebuilding a peer list on sync while keeping the records (and so the
// learned state) of peers that remain, and the eligible list that power-of-two-choices draws from.
import { BalancedPeer, PeerSpec, peerKey } from "../types";

export interface PeerListState<P extends BalancedPeer> {
  peers: P[];
  byKey: LuaTable<string, P>;
  /** Peers with weight x multiplier > 0, in the order of `peers`. */
  eligible: P[];
  /** Position of each eligible peer in `eligible` (0-based), -1 for others. */
  slot: LuaTable<P, number>;
}

/** Fresh record factory: module-level functions only, so sync creates no closure. */
export type NewRecord<P extends BalancedPeer> = (this: void, key: string, spec: PeerSpec) => P;

/**
 * Rebuilds `state` from `specs`: records of remaining peers are kept (weight and multiplier
 * updated), new ones come from `make`. Returns the new records (the caller may seed them).
 */
export function syncPeers<P extends BalancedPeer>(state: PeerListState<P>, specs: PeerSpec[], make: NewRecord<P>): P[] {
  const byKey = new LuaTable<string, P>();
  const peers: P[] = [];
  const added: P[] = [];
  for (const spec of specs) {
    const key = peerKey(spec.host, spec.port);
    if (byKey.has(key)) continue; // a duplicate is ignored: membership.ts refuses them anyway
    let rec = state.byKey.get(key);
    if (rec === undefined) {
      rec = make(key, spec);
      added.push(rec);
    }
    rec.weight = spec.weight;
    rec.multiplier = spec.multiplier ?? 1;
    byKey.set(key, rec);
    peers.push(rec);
  }
  state.peers = peers;
  state.byKey = byKey;
  const eligible: P[] = [];
  const slot = new LuaTable<P, number>();
  for (const rec of peers) {
    if (rec.weight * rec.multiplier > 0) {
      slot.set(rec, eligible.length);
      eligible.push(rec);
    }
  }
  state.eligible = eligible;
  state.slot = slot;
  return added;
}

function clampIndex(i: number, n: number): number {
  return i >= n ? n - 1 : i;
}

/**
 * Draws two distinct eligible peers, never `exclude` (the previous try's peer) unless it is the
 * only one left. Returns (first, second); second is undefined when only one peer qualifies, both
 * are undefined when none does. O(1), no allocation.
 */
export function drawTwo<P extends BalancedPeer>(state: PeerListState<P>, random: (this: void) => number, exclude: BalancedPeer | undefined): LuaMultiReturn<[P | undefined, P | undefined]> {
  const eligible = state.eligible;
  const m = eligible.length;
  const x = exclude === undefined ? -1 : state.slot.get(exclude as P) ?? -1;
  const count = x >= 0 ? m - 1 : m;
  if (count <= 0) {
    // Nothing but the excluded peer (or nothing at all): trying it again beats failing.
    return $multi(x >= 0 ? eligible[x] : undefined, undefined);
  }
  if (count === 1) {
    return $multi(eligible[x === 0 ? 1 : 0], undefined);
  }
  let i = clampIndex(math.floor(random() * count), count);
  if (x >= 0 && i >= x) i++;
  let j = clampIndex(math.floor(random() * (count - 1)), count - 1);
  // Skip the taken positions in increasing order so j stays uniform over the rest.
  const lo = x >= 0 && x < i ? x : i;
  const hi = x >= 0 && x < i ? i : x;
  if (j >= lo) j++;
  if (hi >= 0 && hi !== lo && j >= hi) j++;
  return $multi(eligible[i], eligible[j]);
}
