// The top-level "redis" section: one Redis server shared by the gateway instances, for
// cluster-wide rate limits and for anything else that needs shared state across instances
// (leader election). Generic on purpose: no capability's options live here.
//   "redis": {"host": "127.0.0.1", "port": 6379, "password": {"env": "REDIS_PASSWORD"},
//             "db": 0, "timeout_ms": 200, "instances": 2}
import { Json, Problems, join, readInteger, readObject, readString, rejectUnknownKeys } from "./check";
import { SecretRef, readSecretRef } from "../actuators/schema";

export interface RedisConfig {
  host: string;
  port: number;
  /** Read in init_by_lua (the master still has its environment); never written in the config. */
  password?: SecretRef;
  db: number;
  /** Connect, send and read timeout of each Redis call, in milliseconds. */
  timeout_ms: number;
  /** How many gateway instances share this Redis: a cluster-wide limit falls back to limit / instances per instance. */
  instances: number;
}

/** Validates the section; undefined (no problem recorded) when it is absent. */
export function validateRedis(p: Problems, path: string, raw: Json): RedisConfig | undefined {
  const o = readObject(p, path, raw, false);
  if (o === undefined) return undefined;
  const before = p.list.length;
  rejectUnknownKeys(p, path, o, ["host", "port", "password", "db", "timeout_ms", "instances"]);
  const host = readString(p, join(path, "host"), o.get("host"), false, "^[%w%.%-:%[%]]+$", "a host name or IP address") ?? "127.0.0.1";
  const port = readInteger(p, join(path, "port"), o.get("port"), 1, 65535, 6379);
  const password = readSecretRef(p, join(path, "password"), o.get("password"), false);
  const db = readInteger(p, join(path, "db"), o.get("db"), 0, 1000, 0);
  const timeout = readInteger(p, join(path, "timeout_ms"), o.get("timeout_ms"), 1, 60000, 200);
  const instances = readInteger(p, join(path, "instances"), o.get("instances"), 1, 10000, 1);
  if (p.list.length > before || port === undefined || db === undefined || timeout === undefined || instances === undefined) return undefined;
  return { host, port, password, db, timeout_ms: timeout, instances };
}

/** Rate rules with scope "cluster" need the redis section: names each such rule when it is missing. */
export function requireRedisForClusterScope(p: Problems, routes: readonly { limits?: { rate: { scope: string }[] } }[], redis: RedisConfig | undefined): void {
  if (redis !== undefined) return;
  for (let i = 0; i < routes.length; i++) {
    const limits = routes[i].limits;
    if (limits === undefined) continue;
    for (let j = 0; j < limits.rate.length; j++) {
      if (limits.rate[j].scope === "cluster") p.add(`routes[${i}].limits.rate[${j}].scope`, 'scope "cluster" needs the top-level "redis" section');
    }
  }
}
