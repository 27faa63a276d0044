// The Redis path of cluster-wide rate limits, and its circuit breaker. Requests ask Redis only
// while this worker believes it healthy; the first failed call switches the worker to local
// shares (logged once), after which no request touches Redis: the 1 s admission timer probes it
// (PING, after a backoff of 1 s doubling up to 8 s) and switches back when it answers. So a dead
// or hanging Redis costs a timeout only to the requests already waiting on it when it failed.
import * as redis from "../net/redis";
import { RedisConfig } from "../config/redis_schema";
import { newRedisHealth, onRedisFailure, onRedisSuccess } from "../admission/fallback";
import { SLIDING_WINDOW_SCRIPT, TOKEN_BUCKET_SCRIPT } from "../admission/redis_scripts";
import { RuleRuntime } from "./admission_runtime";

export const health = newRedisHealth();
/** When the current mode began (status), and the last error seen. */
export const redisStatus = { since: 0, lastError: undefined as string | undefined, instances: 1 };

let options: redis.RedisOptions | undefined;
let tokenBucketSha = "";
let slidingWindowSha = "";

const BACKOFF_BASE = 1;
const BACKOFF_MAX = 8;

/** Set in init_by_lua with the password already read (the master still has its environment). */
export function configureRedis(cfg: RedisConfig | undefined, password: string | undefined, now: number): void {
  if (cfg === undefined) {
    options = undefined;
    return;
  }
  options = { host: cfg.host, port: cfg.port, timeoutMs: cfg.timeout_ms, password, db: cfg.db, poolSize: 64 };
  redisStatus.since = now;
  redisStatus.instances = cfg.instances;
  tokenBucketSha = redis.scriptSha1(TOKEN_BUCKET_SCRIPT);
  slidingWindowSha = redis.scriptSha1(SLIDING_WINDOW_SCRIPT);
}

export function redisConfigured(): boolean {
  return options !== undefined;
}

export function redisAddress(): string {
  return options === undefined ? "" : `${options.host}:${options.port}`;
}

export function connectRedis(): LuaMultiReturn<[redis.RedisConnection | undefined, string | undefined]> {
  if (options === undefined) return $multi(undefined, "no redis section in the config");
  return redis.connect(options);
}

export function releaseRedis(conn: redis.RedisConnection): void {
  redis.release(conn);
}

/** Records a failed call; the switch to local limits is logged once per worker. */
export function markRedisFailure(err: string, now: number): void {
  redisStatus.lastError = err;
  if (onRedisFailure(health, now, BACKOFF_BASE, BACKOFF_MAX)) {
    redisStatus.since = now;
    ngx.log(ngx.ERR, "autoscale: Redis ", redisAddress(), " unreachable (", err, "): cluster-wide rate limits now use local shares (limit / ", redisStatus.instances, ") until it answers again");
  }
}

function markRedisSuccess(now: number): void {
  if (onRedisSuccess(health)) {
    redisStatus.since = now;
    ngx.log(ngx.NOTICE, "autoscale: Redis ", redisAddress(), " answers again: cluster-wide rate limits are shared through it");
  }
}

/**
 * Runs one cluster rule's script. Returns (admitted 1|0, remaining, seconds) where seconds is
 * the reset time for an admission and the wait for a refusal; (undefined, ..., error) on failure.
 */
export function redisDecide(conn: redis.RedisConnection, r: RuleRuntime, key: string): LuaMultiReturn<[number | undefined, number, number, string | undefined]> {
  const lim = r.rule.limiter;
  let reply: redis.RedisReply;
  let err: string | undefined;
  if (lim.kind === "token_bucket") {
    [reply, err] = redis.evalScript(conn, TOKEN_BUCKET_SCRIPT, tokenBucketSha, [key], [lim.interval * 1000, lim.tolerance * 1000, 1]);
  } else {
    [reply, err] = redis.evalScript(conn, SLIDING_WINDOW_SCRIPT, slidingWindowSha, [key], [lim.limit, lim.window * 1000, 1]);
  }
  if (err !== undefined) return $multi(undefined, 0, 0, err);
  if (type(reply) !== "table") return $multi(undefined, 0, 0, "redis: unexpected script reply");
  const t = reply as number[];
  return $multi(t[0], t[1] ?? 0, (t[2] ?? 0) / 1000, undefined);
}

/** From the 1 s timer: while in local mode and the backoff is over, asks Redis whether it is back. */
export function probeRedis(now: number): void {
  if (options === undefined || health.mode === "cluster" || now < health.retryAt) return;
  const [conn, cerr] = connectRedis();
  if (conn === undefined) return markRedisFailure(cerr ?? "connect failed", now);
  const [, err] = redis.command(conn, ["PING"]);
  releaseRedis(conn); // a no-op when the socket was closed by the failure
  if (err !== undefined) return markRedisFailure(err, now);
  markRedisSuccess(now);
}
