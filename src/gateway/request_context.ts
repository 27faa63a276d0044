// What the access phase learns about a request and the log phase needs again: one table per
// request in ngx.ctx, created only when an access_by_lua handler runs.
import { PeerRuntime, RouteRuntime } from "./state";

export interface RequestContext {
  route: RouteRuntime;
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
