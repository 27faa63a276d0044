// The top-level `sources` section: external metric values a policy can scale on (metric
// "external" with the source's name). One interface for every source type (source.ts).
import { Json, Problems, join, readEnum, readInteger, readNumber, readObject, readString, rejectUnknownKeys } from "../config/check";
import { SecretRef, readSecretRef } from "../actuators/schema";

interface SourceCommon {
  name: string;
  timeout_ms: number;
  /** Seconds between fetches. */
  interval: number;
  /** Seconds a value stays usable after it was fetched; older, it counts as missing. */
  max_age: number;
}

export interface PrometheusSource extends SourceCommon {
  type: "prometheus";
  /** Base URL of the Prometheus server, e.g. http://prometheus:9090 */
  url: string;
  query: string;
  token?: SecretRef;
}

export interface RedisListSource extends SourceCommon {
  type: "redis_list";
  /** List whose length (LLEN) is the value; read through the top-level `redis` section. */
  key: string;
}

export interface JsonUrlSource extends SourceCommon {
  type: "json_url";
  url: string;
  /** Dotted path to the value, array indexes 0-based: "queue.depth", "items.0.value". */
  path: string;
  token?: SecretRef;
}

export type SourceConfig = PrometheusSource | RedisListSource | JsonUrlSource;

export const SOURCE_TYPES = ["prometheus", "redis_list", "json_url"] as const;

const NAME_PATTERN = "^[%w_%.%-:/]+$";

function readUrl(p: Problems, path: string, v: Json): string | undefined {
  return readString(p, path, v, true, "^https?://[^/%s]+[^%s]*$", "an http:// or https:// URL");
}

/** Validates `sources`; an empty table when absent. `hasRedis`: a redis section exists. */
export function validateSources(p: Problems, path: string, raw: Json, hasRedis: boolean): LuaTable<string, SourceConfig> | undefined {
  const out = new LuaTable<string, SourceConfig>();
  if (raw === undefined) return out;
  const o = readObject(p, path, raw, true);
  if (o === undefined) return undefined;
  const before = p.list.length;
  for (const [name, v] of pairs(o)) {
    const sp = join(path, name);
    if (string.match(name, NAME_PATTERN)[0] === undefined) {
      p.add(sp, "expected a source name of letters, digits, '_', '.', '-', ':' or '/'");
      continue;
    }
    const s = readObject(p, sp, v, true);
    if (s === undefined) continue;
    const kind = readEnum(p, join(sp, "type"), s.get("type"), SOURCE_TYPES, undefined);
    const timeout = readInteger(p, join(sp, "timeout_ms"), s.get("timeout_ms"), 1, 60000, 1000);
    const interval = readNumber(p, join(sp, "interval"), s.get("interval"), 0.2, 3600, 5);
    const maxAge = readNumber(p, join(sp, "max_age"), s.get("max_age"), 0.5, 86400, 30);
    if (kind === undefined || timeout === undefined || interval === undefined || maxAge === undefined) continue;
    const common = { name, timeout_ms: timeout, interval, max_age: maxAge };
    const commonKeys = ["type", "timeout_ms", "interval", "max_age"];
    if (kind === "prometheus") {
      rejectUnknownKeys(p, sp, s, [...commonKeys, "url", "query", "token"]);
      const url = readUrl(p, join(sp, "url"), s.get("url"));
      const query = readString(p, join(sp, "query"), s.get("query"), true, "%S", "a PromQL expression");
      const token = readSecretRef(p, join(sp, "token"), s.get("token"), false);
      if (url !== undefined && query !== undefined) out.set(name, { ...common, type: "prometheus", url, query, token });
    } else if (kind === "redis_list") {
      rejectUnknownKeys(p, sp, s, [...commonKeys, "key"]);
      const key = readString(p, join(sp, "key"), s.get("key"), true, "^[^%s]+$", "a Redis key without spaces");
      if (!hasRedis) p.add(sp, 'a redis_list source needs the top-level "redis" section');
      else if (key !== undefined) out.set(name, { ...common, type: "redis_list", key });
    } else {
      rejectUnknownKeys(p, sp, s, [...commonKeys, "url", "path", "token"]);
      const url = readUrl(p, join(sp, "url"), s.get("url"));
      const vpath = readString(p, join(sp, "path"), s.get("path"), true, "^[^%s]+$", "a dotted path such as queue.depth");
      const token = readSecretRef(p, join(sp, "token"), s.get("token"), false);
      if (url !== undefined && vpath !== undefined) out.set(name, { ...common, type: "json_url", url, path: vpath, token });
    }
  }
  return p.list.length > before ? undefined : out;
}
