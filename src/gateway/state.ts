// The gateway's in-memory state, built once from the validated config in init_by_lua and
// inherited by every worker. Counters in it are per worker (each worker has its own copy after
// fork); everything shared between workers lives in the shared dicts.
import { Config, PoolConfig, RouteConfig } from "../config/config";
import type { PoolBalancer } from "./balancing";
import { Counters, newCounters, peerSeries, routeSeries } from "../metrics/counters";
import { RouteMatcher, buildMatcher } from "../metrics/route_match";

export const METRICS_DICT = "autoscale_metrics";
export const STATE_DICT = "autoscale_state";
/** Key in STATE_DICT: when the gateway (its shared dicts) started, set once across reloads. */
export const STARTED_KEY = "started";
/** Name under which requests that match no route are counted. */
export const UNMATCHED = "unmatched";

export interface PeerRuntime {
  address: string;
  /** The peer's weight in the pool's membership (runtime changes included). */
  configuredWeight: number;
  counters: Counters;
  series: string;
}

export interface PoolRuntime {
  config: PoolConfig;
  /** The pool's current members (balancing.ts rebuilds the list when the membership changes). */
  peers: PeerRuntime[];
  /** "host:port" → peer, to attribute $upstream_addr to a peer. */
  byAddress: LuaTable<string, PeerRuntime>;
  /** This worker's balancer; set by balancing.init before any request. */
  balancer?: PoolBalancer;
}

export interface RouteRuntime {
  name: string;
  config: RouteConfig | undefined;
  pool: PoolRuntime | undefined;
  counters: Counters;
  series: string;
}

export interface GatewayState {
  config: Config;
  configPath: string;
  matcher: RouteMatcher;
  routes: LuaTable<string, RouteRuntime>;
  /** Routes in config order, then "unmatched". */
  routeList: RouteRuntime[];
  unmatched: RouteRuntime;
  pools: LuaTable<string, PoolRuntime>;
  /** Seconds a per-second bucket lives: the longest window plus slack for slow readers. */
  bucketTtl: number;
}

export function newPeerRuntime(pool: string, address: string, weight: number): PeerRuntime {
  return { address, configuredWeight: weight, counters: newCounters(), series: peerSeries(pool, address) };
}

function buildPool(config: PoolConfig): PoolRuntime {
  const pool: PoolRuntime = { config, peers: [], byAddress: new LuaTable() };
  for (const p of config.peers) {
    const peer = newPeerRuntime(config.name, `${p.host}:${p.port}`, p.weight);
    pool.peers.push(peer);
    pool.byAddress.set(peer.address, peer);
  }
  return pool;
}

export function buildState(config: Config, configPath: string): GatewayState {
  const pools = new LuaTable<string, PoolRuntime>();
  for (const name of config.poolNames) pools.set(name, buildPool(config.pools.get(name)));
  const routes = new LuaTable<string, RouteRuntime>();
  const routeList: RouteRuntime[] = [];
  for (const r of config.routes) {
    const rt: RouteRuntime = { name: r.name, config: r, pool: pools.get(r.pool), counters: newCounters(), series: routeSeries(r.name) };
    routes.set(r.name, rt);
    routeList.push(rt);
  }
  const unmatched: RouteRuntime = { name: UNMATCHED, config: undefined, pool: undefined, counters: newCounters(), series: routeSeries(UNMATCHED) };
  routeList.push(unmatched);
  let longest = 0;
  for (const w of config.metrics.windows) longest = math.max(longest, w);
  return { config, configPath, matcher: buildMatcher(config.routes), routes, routeList, unmatched, pools, bucketTtl: longest + 5 };
}

let current: GatewayState | undefined;

export function setState(s: GatewayState): void {
  current = s;
}

export function getState(): GatewayState | undefined {
  return current;
}
