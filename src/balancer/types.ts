// The balancer family's one interface (ingress-nginx habit: every algorithm module has the same
// functions, so the phase shell dispatches by name and knows none of the maths).
// Pure: time and randomness come in as arguments.

/** What the shell hands to create/sync: a peer of the pool and its current multiplier. */
export interface PeerSpec {
  host: string;
  port: number;
  /** Configured weight (0 takes the peer out of rotation). */
  weight: number;
  /**
   * Effective-weight multiplier in [0, 1] from slow start, health, ejection and drain (see
   * effective.ts). 0 means "send nothing". Absent means 1.
   */
  multiplier?: number;
}

/** The per-peer record an algorithm keeps; pick returns it, after takes it back. */
export interface BalancedPeer {
  /** "host:port", the identity that sync uses to keep learned state. */
  key: string;
  host: string;
  port: number;
  weight: number;
  multiplier: number;
  /** Requests this worker sent to the peer that have not reached `after` yet. */
  inflight: number;
}

/** Tuning that the algorithms read; schema.ts fills in the defaults. */
export interface AlgorithmOptions {
  /** Peak-EWMA decay time constant, seconds. */
  tau?: number;
  /** Least-request: score = weight / (active + 1)^bias. */
  bias?: number;
  /** Peak-EWMA: the smallest cost a failed try counts as, seconds. */
  failure_penalty?: number;
  /** Peak-EWMA: the smallest weight one sample gets in the average (0 = pure time decay). */
  sample_weight?: number;
}

/** A uniform random number in [0, 1): `math.random` in the shell, a seeded generator in tests. */
export type RandomFn = (this: void) => number;

/** The interface every algorithm module satisfies. */
export interface Algorithm<S = unknown> {
  create(this: void, peers: PeerSpec[], options?: AlgorithmOptions): S;
  sync(this: void, state: S, peers: PeerSpec[]): void;
  pick(this: void, state: S, now: number, random: RandomFn, exclude?: BalancedPeer): BalancedPeer | undefined;
  after(this: void, state: S, peer: BalancedPeer, now: number, rttSeconds: number, failed: boolean): void;
}

export function peerKey(host: string, port: number): string {
  return `${host}:${port}`;
}
