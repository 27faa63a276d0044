// The gateway's in-memory state, built once from the validated config in init_by_lua and
// inherited by every worker. Counters in it are per worker (each worker has its own copy after
// fork); everything shared between workers lives in the shared dicts.
import { Config, PoolConfig, RouteConfig } from "../config/config";
import { SwrrPeer } from "../balancer/swrr";
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
  configuredWeight: number;
  balance: SwrrPeer;
  counters: Counters;
  series: string;
}

export interface PoolRuntime {
  config: PoolConfig;
  peers: PeerRuntime[];
  balancePeers: SwrrPeer[];
  /** "host:port" → peer, to attribute $upstream_addr to a peer. */
  byAddress: LuaTable<string, PeerRuntime>;
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

function buildPool(config: PoolConfig): PoolRuntime {
  const pool: PoolRuntime = { config, peers: [], balancePeers: [], byAddress: new LuaTable() };
  for (const p of config.peers) {
    const address = `${p.host}:${p.port}`;
    const balance: SwrrPeer = { host: p.host, port: p.port, weight: p.weight, current: 0 };
    const peer: PeerRuntime = { address, configuredWeight: p.weight, balance, counters: newCounters(), series: peerSeries(config.name, address) };
    pool.peers.push(peer);
    pool.balancePeers.push(balance);
    pool.byAddress.set(address, peer);
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
