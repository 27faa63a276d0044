// One multiplier per peer, the only way health, ejection, drain and slow start reach the
// algorithms: effective weight = weight x multiplier. Computed off the hot path (on a version
// change or a timer tick), then handed to the algorithm's sync.
import { SlowStartOptions, factor } from "./slow_start";

export type AdminState = "up" | "down" | "draining";

export interface PeerStatus {
  admin: AdminState;
  /** Active health check verdict (true when checks are off). */
  healthy: boolean;
  /** Passive outlier ejection verdict. */
  ejected: boolean;
  /** When the peer last started serving: added, marked up, healthy again or un-ejected. */
  servingSince: number;
}

/** The multiplier of one peer, ignoring the pool (see `multipliers` for the panic rule). */
export function multiplier(status: PeerStatus, now: number, slowStart: SlowStartOptions | undefined, ignoreHealth: boolean): number {
  if (status.admin !== "up") return 0;
  if (!ignoreHealth && (!status.healthy || status.ejected)) return 0;
  if (slowStart === undefined) return 1;
  return factor(now - status.servingSince, slowStart);
}

/**
 * Fills `out` (0-based, same order as `statuses`) with each peer's multiplier. Panic rule (as
 * Envoy's panic threshold at 0 %): when every peer an operator left up is unhealthy or ejected,
 * health is ignored, because trying a peer that may be down beats refusing every request.
 * Returns true in panic.
 */
export function multipliers(statuses: PeerStatus[], now: number, slowStart: SlowStartOptions | undefined, out: number[]): boolean {
  let up = 0;
  let serving = 0;
  for (const s of statuses) {
    if (s.admin === "up") {
      up++;
      if (s.healthy && !s.ejected) serving++;
    }
  }
  const panic = up > 0 && serving === 0;
  for (let i = 0; i < statuses.length; i++) {
    out[i] = multiplier(statuses[i], now, slowStart, panic);
  }
  return panic;
}
