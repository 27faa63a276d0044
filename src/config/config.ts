// The gateway's configuration: its shape, its defaults, and its validation.
// Pure (no ngx): the gateway validates in init_by_lua, `autoscale validate` runs the very same
// compiled Lua under LuaJIT. The published JSON Schema (config/autoscale.schema.json) mirrors
// this file; a test keeps the two in step.
import {
  Json,
  JsonObject,
  Problems,
  index,
  join,
  readArray,
  readInteger,
  readObject,
  readString,
  rejectUnknownKeys,
} from "./check";
import { BalancerOptions, validateBalancer } from "../balancer/schema";
import { PoolConcurrency, RouteAdmission, validateAdmission, validateBreaker, validatePoolConcurrency } from "../admission/schema";
import { BreakerOptions } from "../admission/breaker";
import { PolicyConfig, validatePolicy } from "../policy/schema";
import { ActuatorConfig, validateActuator } from "../actuators/schema";
import { ClusterConfig, validateCluster } from "../control/schema";
import { DiscoveryConfig, validateDiscovery } from "../control/discovery";
import { SourceConfig, validateSources } from "../sources/schema";
import { DEFAULT_WINDOWS, MetricsConfig, validateMetrics } from "../metrics/schema";
import { RedisConfig, requireRedisForClusterScope, validateRedis } from "./redis_schema";

export interface PeerConfig {
  host: string;
  port: number;
  weight: number;
}

/** A pool's scaling policy (src/policy/schema.ts) and where its signals go (src/actuators). */
export type ScalingConfig = PolicyConfig & { actuator: ActuatorConfig };

export interface PoolConfig {
  name: string;
  peers: PeerConfig[];
  balancer: BalancerOptions;
  /** Adaptive concurrency limit and priority shedding (src/admission). */
  concurrency?: PoolConcurrency;
  breaker?: BreakerOptions;
  scaling?: ScalingConfig;
  /** Peers discovered from a Kubernetes Service's EndpointSlices (src/control/discovery.ts). */
  discovery?: DiscoveryConfig;
}

export interface RouteConfig {
  name: string;
  match: { prefix?: string; exact?: string };
  pool: string;
  /** Priority, rate limits and adaptive rate (src/admission). */
  limits?: RouteAdmission;
  breaker?: BreakerOptions;
}

export interface Config {
  listen: number;
  admin: { listen: string; token?: string };
  metrics: MetricsConfig;
  pools: LuaTable<string, PoolConfig>;
  /** Pool names in a stable order (sorted), for status output and iteration. */
  poolNames: string[];
  routes: RouteConfig[];
  /** Shared Redis (cluster-wide limits, leader lease, cluster metrics, queue sources); src/config/redis_schema.ts. */
  redis?: RedisConfig;
  /** Several instances acting as one autoscaler (src/control). */
  cluster?: ClusterConfig;
  /** External metric sources by name (src/sources). */
  sources: LuaTable<string, SourceConfig>;
  /** Directory the workers write state that outlives a restart into (predictive history); default: the nginx prefix. */
  stateDir?: string;
}

const NAME_PATTERN = "^[%w_%.%-]+$";
const NAME_HELP = "a name of letters, digits, '_', '.' or '-' (at most 64)";

function readName(p: Problems, path: string, v: Json): string | undefined {
  const s = readString(p, path, v, true, NAME_PATTERN, NAME_HELP);
  if (s !== undefined && s.length > 64) {
    p.add(path, `expected ${NAME_HELP}, got a name of ${s.length} characters`);
    return undefined;
  }
  return s;
}

/** An IPv4 or IPv6 literal: the balancer phase cannot resolve host names per request. */
function readPeerHost(p: Problems, path: string, v: Json): string | undefined {
  const s = readString(p, path, v, true);
  if (s === undefined) return undefined;
  const [a, b, c, d] = string.match(s, "^(%d+)%.(%d+)%.(%d+)%.(%d+)$");
  if (a !== undefined) {
    if (tonumber(a)! <= 255 && tonumber(b)! <= 255 && tonumber(c)! <= 255 && tonumber(d)! <= 255) return s;
  } else if (string.match(s, "^[%x:]+$")[0] !== undefined && string.find(s, ":", 1, true)[0] !== undefined) {
    return s;
  }
  p.add(path, `expected an IPv4 or IPv6 address (host names are not resolved in the balancer), got ${string.format("%q", s)}`);
  return undefined;
}

/** "127.0.0.1:9180", "[::1]:9180" or a bare port "9180". */
function readListen(p: Problems, path: string, v: Json, fallback: string): string | undefined {
  if (v === undefined) return fallback;
  if (type(v) === "number") v = tostring(v);
  const s = readString(p, path, v, true);
  if (s === undefined) return undefined;
  const port = string.match(s, ":(%d+)$")[0] ?? string.match(s, "^(%d+)$")[0];
  const n = port === undefined ? undefined : tonumber(port);
  if (n === undefined || n < 1 || n > 65535) {
    p.add(path, `expected "host:port" or a port 1-65535, got ${string.format("%q", s)}`);
    return undefined;
  }
  return s;
}

function readPeer(p: Problems, path: string, v: Json): PeerConfig | undefined {
  const o = readObject(p, path, v, true);
  if (o === undefined) return undefined;
  rejectUnknownKeys(p, path, o, ["host", "port", "weight"]);
  const host = readPeerHost(p, join(path, "host"), o.get("host"));
  const port = readInteger(p, join(path, "port"), o.get("port"), 1, 65535, undefined);
  const weight = readInteger(p, join(path, "weight"), o.get("weight"), 0, 1000, 1);
  if (host === undefined || port === undefined || weight === undefined) return undefined;
  return { host, port, weight };
}

function readScaling(p: Problems, path: string, v: Json, windows: number[]): ScalingConfig | undefined {
  if (v === undefined) return undefined;
  const before = p.list.length;
  const policy = validatePolicy(p, path, v);
  const o = readObject(p, path, v, true);
  const actuator = o === undefined ? undefined : validateActuator(p, join(path, "actuator"), o.get("actuator"));
  const window = o === undefined ? undefined : o.get("window");
  if (policy !== undefined && window !== undefined && !windows.includes(policy.window)) {
    p.add(join(path, "window"), `expected one of the metrics windows (${windows.join(", ")}), got ${policy.window}`);
  } else if (policy !== undefined && window === undefined) {
    policy.window = windows[0];
  }
  if (policy === undefined || actuator === undefined || p.list.length > before) return undefined;
  return { ...policy, actuator };
}

function readPool(p: Problems, path: string, name: string, v: Json, windows: number[]): PoolConfig | undefined {
  const o = readObject(p, path, v, true);
  if (o === undefined) return undefined;
  rejectUnknownKeys(p, path, o, ["peers", "balancer", "concurrency", "breaker", "scaling", "discovery"]);
  const peersPath = join(path, "peers");
  const rawPeers = readArray(p, peersPath, o.get("peers"), true);
  const peers: PeerConfig[] = [];
  let ok = rawPeers !== undefined;
  if (rawPeers !== undefined) {
    if (rawPeers.length === 0) {
      p.add(peersPath, "expected at least one peer, got an empty array");
      ok = false;
    }
    const seen = new LuaTable<string, boolean>();
    for (let i = 0; i < rawPeers.length; i++) {
      const peer = readPeer(p, index(peersPath, i), rawPeers[i]);
      if (peer === undefined) {
        ok = false;
        continue;
      }
      const key = `${peer.host}:${peer.port}`;
      if (seen.get(key)) {
        p.add(index(peersPath, i), `duplicate peer ${key}`);
        ok = false;
      }
      seen.set(key, true);
      peers.push(peer);
    }
  }
  const balancer = validateBalancer(p, join(path, "balancer"), o.get("balancer"));
  const concurrency = validatePoolConcurrency(p, join(path, "concurrency"), o.get("concurrency"));
  const breaker = validateBreaker(p, join(path, "breaker"), o.get("breaker"));
  const scaling = readScaling(p, join(path, "scaling"), o.get("scaling"), windows);
  const discovery = validateDiscovery(p, join(path, "discovery"), o.get("discovery"));
  if (!ok || balancer === undefined || (o.get("scaling") !== undefined && scaling === undefined)) return undefined;
  if (o.get("discovery") !== undefined && discovery === undefined) return undefined;
  return { name, peers, balancer, concurrency, breaker, scaling, discovery };
}

function readRoute(p: Problems, path: string, v: Json, pools: JsonObject | undefined): RouteConfig | undefined {
  const o = readObject(p, path, v, true);
  if (o === undefined) return undefined;
  rejectUnknownKeys(p, path, o, ["name", "match", "pool", "limits", "breaker"]);
  const name = readName(p, join(path, "name"), o.get("name"));
  const matchPath = join(path, "match");
  const m = readObject(p, matchPath, o.get("match"), true);
  let match: RouteConfig["match"] | undefined;
  if (m !== undefined) {
    rejectUnknownKeys(p, matchPath, m, ["prefix", "exact"]);
    const prefix = readString(p, join(matchPath, "prefix"), m.get("prefix"), false, "^/", "a path starting with /");
    const exact = readString(p, join(matchPath, "exact"), m.get("exact"), false, "^/", "a path starting with /");
    if ((m.get("prefix") === undefined) === (m.get("exact") === undefined)) {
      p.add(matchPath, "expected exactly one of prefix or exact");
    } else if (prefix !== undefined || exact !== undefined) {
      match = { prefix, exact };
    }
  }
  const pool = readName(p, join(path, "pool"), o.get("pool"));
  if (pool !== undefined && pools !== undefined && pools.get(pool) === undefined) {
    p.add(join(path, "pool"), `unknown pool ${string.format("%q", pool)}`);
    return undefined;
  }
  const limits = validateAdmission(p, join(path, "limits"), o.get("limits"));
  const breaker = validateBreaker(p, join(path, "breaker"), o.get("breaker"));
  if (name === undefined || match === undefined || pool === undefined) return undefined;
  return { name, match, pool, limits, breaker };
}

/** With metrics.enabled false nothing is counted: what decides on the counts cannot work. */
function refuseWhatNeedsMetrics(p: Problems, poolNames: string[], pools: LuaTable<string, PoolConfig>, routes: RouteConfig[]): void {
  const why = "needs the gateway's metrics, and metrics.enabled is false";
  for (const name of poolNames) if (pools.get(name).scaling !== undefined) p.add(join(join("pools", name), "scaling"), why);
  for (let i = 0; i < routes.length; i++) {
    if (routes[i].limits?.adaptive !== undefined) p.add(join(join(index("routes", i), "limits"), "adaptive"), why);
  }
}

/**
 * Validates a decoded config document. Returns the typed config with defaults filled in, or
 * undefined and every problem found.
 */
export function validateConfig(doc: Json): LuaMultiReturn<[Config | undefined, string[]]> {
  const p = new Problems();
  const root = readObject(p, "(root)", doc, true);
  if (root === undefined) return $multi(undefined, p.list);
  rejectUnknownKeys(p, "", root, ["$schema", "listen", "admin", "metrics", "pools", "routes", "redis", "cluster", "sources", "tls", "state_dir"]);
  const stateDir = readString(p, "state_dir", root.get("state_dir"), false, "^/", "an absolute directory path");
  const tlsObj = readObject(p, "tls", root.get("tls"), false);
  if (tlsObj !== undefined) {
    // Read by the nginx.conf generator (lua_ssl_trusted_certificate): only checked here.
    rejectUnknownKeys(p, "tls", tlsObj, ["ca_file"]);
    readString(p, "tls.ca_file", tlsObj.get("ca_file"), false, "^/", "an absolute file path");
  }
  const redis = validateRedis(p, "redis", root.get("redis"));
  const cluster = validateCluster(p, "cluster", root.get("cluster"));
  if (root.get("cluster") !== undefined && root.get("redis") === undefined) p.add("cluster", 'needs the top-level "redis" section');
  const sources = validateSources(p, "sources", root.get("sources"), root.get("redis") !== undefined);

  const listen = readInteger(p, "listen", root.get("listen"), 1, 65535, 8080);

  let admin: Config["admin"] | undefined;
  const a = readObject(p, "admin", root.get("admin"), false) ?? new LuaTable<string, Json>();
  rejectUnknownKeys(p, "admin", a, ["listen", "token"]);
  const adminListen = readListen(p, "admin.listen", a.get("listen"), "127.0.0.1:9180");
  const token = readString(p, "admin.token", a.get("token"), false);
  if (token !== undefined && token.length < 16) p.add("admin.token", `expected at least 16 characters, got ${token.length}`);
  if (adminListen !== undefined) admin = { listen: adminListen, token };

  const metrics = validateMetrics(p, "metrics", root.get("metrics"));
  const windows = metrics?.windows;

  const rawPools = readObject(p, "pools", root.get("pools"), true);
  const pools = new LuaTable<string, PoolConfig>();
  const poolNames: string[] = [];
  if (rawPools !== undefined) {
    for (const [name, raw] of pairs(rawPools)) {
      const path = join("pools", name);
      if (readName(p, `${path} (name)`, name) === undefined) continue;
      const pool = readPool(p, path, name, raw, windows ?? DEFAULT_WINDOWS);
      if (pool !== undefined) {
        pools.set(name, pool);
        poolNames.push(name);
      }
    }
    table.sort(poolNames);
    if (poolNames.length === 0 && p.list.length === 0) p.add("pools", "expected at least one pool");
  }

  const rawRoutes = readArray(p, "routes", root.get("routes"), true);
  const routes: RouteConfig[] = [];
  if (rawRoutes !== undefined) {
    const names = new LuaTable<string, boolean>();
    for (let i = 0; i < rawRoutes.length; i++) {
      const route = readRoute(p, index("routes", i), rawRoutes[i], rawPools);
      if (route === undefined) continue;
      if (names.get(route.name) || route.name === "unmatched") {
        p.add(join(index("routes", i), "name"), `route name ${string.format("%q", route.name)} is already taken`);
        continue;
      }
      names.set(route.name, true);
      routes.push(route);
    }
  }

  // An external forecaster is read through a source: a name that is not one would never forecast.
  if (sources !== undefined) {
    for (const name of poolNames) {
      const fs = pools.get(name).scaling?.predictive?.forecast_source;
      if (fs !== undefined && sources.get(fs) === undefined) p.add(`pools.${name}.scaling.predictive.forecast_source`, `no source named ${string.format("%q", fs)} in "sources"`);
    }
  }
  if (root.get("redis") === undefined) requireRedisForClusterScope(p, routes, redis);
  // Route indices match the config's only when every route was read.
  if (metrics !== undefined && !metrics.enabled && p.list.length === 0) refuseWhatNeedsMetrics(p, poolNames, pools, routes);

  if (p.list.length > 0 || listen === undefined || admin === undefined || metrics === undefined || sources === undefined) {
    return $multi(undefined, p.list);
  }
  return $multi({ listen, admin, metrics, pools, poolNames, routes, redis, cluster, sources, stateDir }, p.list);
}
