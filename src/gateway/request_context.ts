// What the access phase learns about a request and the log phase needs again: one table per
// request in ngx.ctx, created by the access phase (or by the balancer when no access_by_lua
// handler runs for the location).
import { BalancedPeer } from "../balancer/types";
import type { PoolBalancer } from "./balancing";
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
}

/** The context the access phase stored, if it ran for this request. */
export function currentContext(): RequestContext | undefined {
  return ngx.ctx.autoscale as RequestContext | undefined;
}
