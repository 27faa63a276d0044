// The top-level `redis` section: where the gateway's shared Redis is (leader lease, cluster-wide
// metrics, queue-depth sources). The password is a secret reference, never inline.
import { Json, Problems, join, readInteger, readObject, readString, rejectUnknownKeys } from "./check";
import { SecretRef, readSecretRef } from "../actuators/schema";

export interface RedisConfig {
  host: string;
  port: number;
  password?: SecretRef;
  db: number;
  timeout_ms: number;
}

/** Validates `redis`; undefined when absent or invalid (problems recorded in `p`). */
export function validateRedis(p: Problems, path: string, raw: Json): RedisConfig | undefined {
  if (raw === undefined) return undefined;
  const o = readObject(p, path, raw, true);
  if (o === undefined) return undefined;
  const before = p.list.length;
  rejectUnknownKeys(p, path, o, ["host", "port", "password", "db", "timeout_ms"]);
  const host = readString(p, join(path, "host"), o.get("host"), false, "^[%w%.%-:]+$", "a host name or IP address") ?? "127.0.0.1";
  const port = readInteger(p, join(path, "port"), o.get("port"), 1, 65535, 6379);
  const password = readSecretRef(p, join(path, "password"), o.get("password"), false);
  const db = readInteger(p, join(path, "db"), o.get("db"), 0, 15, 0);
  const timeout = readInteger(p, join(path, "timeout_ms"), o.get("timeout_ms"), 1, 60000, 500);
  if (p.list.length > before || port === undefined || db === undefined || timeout === undefined) return undefined;
  return { host, port, password, db, timeout_ms: timeout };
}
