// The control loop's Redis: one short-lived pooled connection per use, configured by the
// top-level `redis` section (password from a secret reference).
import { RedisConfig } from "../../config/redis_schema";
import { RedisConnection, RedisReply, command, connect, evalScript, pipeline, release, scriptSha1 } from "../../net/redis";
import { SecretCache, newSecretCache, readSecret, systemIo } from "../../actuators/credentials";

const secrets: SecretCache = newSecretCache();

export function open(cfg: RedisConfig, timeoutMs?: number): LuaMultiReturn<[RedisConnection | undefined, string | undefined]> {
  let password: string | undefined;
  if (cfg.password !== undefined) {
    const [pw, err] = secrets.get(cfg.password, systemIo(), ngx.now());
    if (pw === undefined) return $multi(undefined, `redis password: ${err}`);
    password = pw;
  }
  return connect({ host: cfg.host, port: cfg.port, timeoutMs: timeoutMs ?? cfg.timeout_ms, password, db: cfg.db });
}

/** One command on a fresh (or pooled) connection. */
export function once(cfg: RedisConfig, args: (string | number)[], timeoutMs?: number): LuaMultiReturn<[RedisReply, string | undefined]> {
  const [conn, err] = open(cfg, timeoutMs);
  if (conn === undefined) return $multi(undefined, err);
  const [reply, cerr] = command(conn, args);
  if (cerr === undefined || string.sub(cerr, 1, 7) === "redis: ") release(conn);
  return $multi(reply, cerr);
}

const shas = new LuaTable<string, string>();

export function runScript(conn: RedisConnection, script: string, keys: string[], args: (string | number)[]): LuaMultiReturn<[RedisReply, string | undefined]> {
  let sha = shas.get(script);
  if (sha === undefined) {
    sha = scriptSha1(script);
    shas.set(script, sha);
  }
  return evalScript(conn, script, sha, keys, args);
}

export { pipeline, release, command, readSecret };
