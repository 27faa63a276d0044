// Graceful scale-in, pure part: which peers to drain before the orchestrator removes replicas.
// Draining applies only when the pool's serving peers are the replicas being scaled (as many
// "up" peers as the current replica count): then the newest `current - desired` up peers are
// drained (last in the membership list: added last, so the warmest caches stay), never the last
// one serving.

export interface DrainCandidate {
  address: string;
  state: string;
}

/** Addresses to drain for a scale-in from `current` to `desired`; empty when draining does not apply. */
export function drainVictims(peers: DrainCandidate[], current: number, desired: number): string[] {
  const out: string[] = [];
  if (desired >= current) return out;
  let up = 0;
  for (const p of peers) if (p.state === "up") up++;
  if (up !== current) return out;
  const n = math.min(current - desired, up - 1);
  for (let i = peers.length - 1; i >= 0 && out.length < n; i--) {
    if (peers[i].state === "up") out.push(peers[i].address);
  }
  return out;
}
