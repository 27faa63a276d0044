// What the access phase learns about a request and the later phases need again: one table per
// request, made by the access phase (or by the balancer when no access_by_lua handler runs for
// the location) and dropped by the log phase.
//
// The tables live in a per-worker table keyed by the request (resty.core's get_request: the
// ngx_http_request_t pointer, as a number, since a cdata key is a new key every call), not in
// ngx.ctx: ngx.ctx makes a second table per request,
// registers and unregisters it, and crosses into C on every read, together the largest cost of
// the balancer's request path (bench/: about 0.6 us a request at the reference's scale).
// A pointer is reused by later requests, so each context carries its request's start time and a
// context whose start time is not the current request's is stale: its log phase never ran here
// (an internal redirect to a location without the bundle's log handler, a subrequest). Stale
// contexts are ignored, replaced, and swept once a second after `maxAge` seconds.
import { get_request } from "resty.core.base";
import * as ffi from "ffi";
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
  /** ngx.req.start_time() of the request: tells this request's context from a stale one. */
  startedAt: number;
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

/** This worker's requests, by request address, between their access (or balancer) phase and their log phase. */
const active = new LuaTable<number, RequestContext>();

/** The current request's address (0 outside a request). Compiled by the JIT without allocation. */
function requestKey(): number {
  const r = get_request();
  if (r === undefined) return 0;
  return tonumber(ffi.cast("uintptr_t", r))!;
}

/**
 * A context for the current request. The fields every request sets are named here, so the table
 * is created at that size; admission adds its own only to the requests it guards.
 */
export function newContext(route: RouteRuntime | undefined): RequestContext {
  const ctx: RequestContext = {
    route: route as RouteRuntime,
    startedAt: ngx.req.start_time(),
    pick: undefined,
    picker: undefined,
    pickedAt: undefined,
    tries: 0,
    startSecond: undefined,
    peer: undefined,
    peerSecond: undefined,
  };
  const r = requestKey();
  if (r !== 0) active.set(r, ctx);
  return ctx;
}

/** The context the access phase (or the balancer) made for the current request, if any. */
export function currentContext(): RequestContext | undefined {
  const ctx = active.get(requestKey());
  if (ctx === undefined || ctx.startedAt !== ngx.req.start_time()) return undefined;
  return ctx;
}

/** log phase: the current request's context, removed from the table (nothing reads it after). */
export function takeContext(): RequestContext | undefined {
  const r = requestKey();
  const ctx = active.get(r);
  if (ctx === undefined) return undefined;
  active.delete(r);
  return ctx.startedAt === ngx.req.start_time() ? ctx : undefined;
}

/**
 * Timer: drops contexts whose log phase never came, `maxAge` seconds after their start, and
 * returns how many are left: the worker's requests between their access and log phases.
 */
export function sweepContexts(now: number, maxAge: number): number {
  let live = 0;
  for (const [r, ctx] of active) {
    if (now - ctx.startedAt > maxAge) active.delete(r);
    else live += 1;
  }
  return live;
}

/** Where each worker leaves its count of live contexts for the status document (a few seconds' life). */
const LIVE_KEY = "request_contexts:";

/** Timer: this worker's count of live contexts, for `liveContexts` in any worker. */
export function publishLiveContexts(dict: NgxSharedDict, worker: number, live: number): void {
  dict.set(LIVE_KEY + worker, live, 5);
}

/**
 * Status: live contexts per worker (-1 when a worker has not told in the last seconds). A count
 * above the requests in flight means contexts wait for their sweep: a location runs the bundle's
 * access handler but not its log handler.
 */
export function liveContexts(dict: NgxSharedDict, workers: number): number[] {
  const out: number[] = [];
  for (const w of $range(0, workers - 1)) {
    const v = dict.get(LIVE_KEY + w)[0];
    out.push(type(v) === "number" ? (v as number) : -1);
  }
  return out;
}
