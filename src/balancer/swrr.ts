// Smooth weighted round robin (nginx's upstream algorithm): every pick adds each peer's weight
// to its running score, takes the highest score and subtracts the total from it. Peers are
// interleaved evenly (weights 5,1,1 give a a b a c a a, not a a a a a b c) and weights may
// change between picks.

export interface SwrrPeer {
  host: string;
  port: number;
  weight: number;
  /** Running score, kept across picks and weight changes. */
  current: number;
}

/** Picks the next peer; undefined when every weight is zero. `skip` is excluded when possible. */
export function pickSwrr(peers: SwrrPeer[], skip?: SwrrPeer): SwrrPeer | undefined {
  let best: SwrrPeer | undefined;
  let total = 0;
  for (let i = 0; i < peers.length; i++) {
    const p = peers[i];
    if (p.weight > 0 && p !== skip) {
      p.current += p.weight;
      total += p.weight;
      if (best === undefined || p.current > best.current) best = p;
    }
  }
  if (best === undefined) return skip !== undefined && skip.weight > 0 ? skip : undefined;
  best.current -= total;
  return best;
}
