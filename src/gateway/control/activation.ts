// Scale to zero, request side: a request to a pool without a serving peer (scaled to zero) is
// held in the access phase until the first replica joins the pool, as the KEDA HTTP add-on's
// interceptor does, up to the pool's scale_to_zero.hold_timeout; then it gets a 503 with
// Retry-After. The held request is already counted in flight on its route (the access phase
// counts it before calling this), so the control loop sees demand at its next evaluation and
// asks for a replica (loop.ts: localFigures takes a peerless pool's route figures).
import { RouteRuntime, PoolRuntime } from "../state";

/** Seconds between two looks at the pool while holding (this worker's balancer refreshes every second). */
const HOLD_POLL = 0.2;

/** True when this worker's balancer of `pool` has a peer it may pick. */
export function hasServingPeer(pool: PoolRuntime): boolean {
  const b = pool.balancer;
  if (b === undefined) return true;
  const mult = b.multipliers;
  for (let i = 0; i < mult.length; i++) if (mult[i] > 0) return true;
  return b.panic && b.members.length > 0;
}

/**
 * access phase, after the in-flight count and admission: returns at once unless the route's pool
 * scales to zero and has no serving peer; then waits for one (ngx.sleep, the worker keeps
 * serving) and returns, or ends the request with 503 and Retry-After once hold_timeout passed.
 */
export function holdForPeer(route: RouteRuntime): void {
  const pool = route.pool;
  if (pool === undefined) return;
  const zero = pool.config.scaling?.scale_to_zero;
  if (zero === undefined || hasServingPeer(pool)) return;
  const deadline = ngx.now() + zero.hold_timeout;
  while (ngx.now() < deadline) {
    ngx.sleep(HOLD_POLL);
    if (hasServingPeer(pool)) return;
    if (ngx.worker.exiting()) break;
  }
  ngx.header["Retry-After"] = math.max(1, math.ceil(zero.hold_timeout));
  ngx.exit(503);
}
