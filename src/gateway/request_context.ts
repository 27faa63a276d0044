// What the access phase learns about a request and the later phases need again: one table per
// request in ngx.ctx, made by the access phase (or by the balancer when no access_by_lua handler
// runs for the location).
// (Recycling these tables through a per-worker free list was measured: no gain, or a loss.)
import { BalancedPeer } from "../balancer/types";
import type { PoolBalancer } from "./balancing";
import type { RouteGuard } from "./admission_runtime";
import { PeerRuntime, RouteRuntime } from "./state";

export interface RequestContext {
  /**
   * Resolved by the access phase. Nil at run time when the balancer had to create the context
   * (a location without access_by_lua): the log phase then resolves the route itself.
   */
  route: RouteRuntime;
  /** The peer of the current (or last) try, until the log phase or a retry hands it back. */
  pick?: BalancedPeer;
  /** The balancer that made `pick`. */
  picker?: PoolBalancer;
  /** ngx.now() when `pick` was made: the try's response time is measured from here. */
  pickedAt?: number;
  /** Tries the bundle's balancer made for this request (0 when it made none). */
  tries: number;
  /** Second the request started, when the access phase counted it in flight (metrics). */
  startSecond?: number;
  /** Peer of the current upstream try counted in flight, and the second its try started (metrics). */
  peer?: PeerRuntime;
  peerSecond?: number;
  /** Admission: set when the request passed every check and its outcome feeds a breaker or a limit. */
  admGuard?: RouteGuard;
  /** Admission: set when the request counts in its pool's in-flight requests: the count at admission. */
  admInflight?: number;
  /** Admission: when it left the queue; absent when it never waited (the request's start time counts). */
  admStart?: number;
  /** Admission: the request holds a half-open probe slot of the route's or the pool's breaker. */
  admRouteProbe?: boolean;
  admPoolProbe?: boolean;
}

/**
 * Whether this worker has made a context yet. Until then the log phase does not look in ngx.ctx:
 * reading ngx.ctx creates its table, a cost a metrics-only location (log_by_lua alone, nginx's
 * own balancing) would pay on every request for nothing.
 */
let contextsMade = false;

/**
 * A context for a new request, stored in ngx.ctx. The fields every request sets are named here,
 * so the table is created at that size; admission adds its own only to the requests it guards.
 */
export function newContext(route: RouteRuntime | undefined): RequestContext {
  const ctx: RequestContext = {
    route: route as RouteRuntime,
    pick: undefined,
    picker: undefined,
    pickedAt: undefined,
    tries: 0,
    startSecond: undefined,
    peer: undefined,
    peerSecond: undefined,
  };
  ngx.ctx.autoscale = ctx;
  contextsMade = true;
  return ctx;
}

/** The context the access phase (or the balancer) stored, if one ran for this request. */
export function currentContext(): RequestContext | undefined {
  if (!contextsMade) return undefined;
  return ngx.ctx.autoscale as RequestContext | undefined;
}
