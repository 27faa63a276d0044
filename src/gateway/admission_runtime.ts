// Per-worker runtime of admission control, built once from the validated config in init_by_lua
// (inherited by every worker): each route's rate rules with their precomputed keys, adaptive
// rate and breaker; each pool's concurrency limit, in-flight count, queue and breaker.
// Limits and breakers are per worker (each worker sees its share of the traffic); counters are
// per worker and flushed to the limits dict every second for status.
import { RouteRuntime, GatewayState } from "./state";
import { RateRule } from "../admission/schema";
import { RateLimiter, quota } from "../admission/rate";
import { TokenBucket } from "../admission/token_bucket";
import { localShare } from "../admission/fallback";
import { policyValue } from "../admission/headers";
import { Priority, ShedPolicy } from "../admission/shedding";
import { Breaker, BreakerOptions, newBreaker } from "../admission/breaker";
import { ConcurrencyLimit } from "../admission/concurrency";
import { AdaptiveRate, newAdaptiveRate } from "../admission/adaptive_rate";
import { PoolRuntime } from "./state";

export const LIMITS_DICT = "autoscale_limits";

export interface RuleRuntime {
  rule: RateRule;
  index: number;
  from: RateRule["key"]["from"];
  /** Claim name for jwt_claim. */
  claim: string;
  /** ngx.var name for header ("http_x_api_key") and arg ("arg_user") keys. */
  varName: string;
  /** Dict key of the route-keyed bucket, and prefix of consumer buckets ("rl|api|1|"). */
  routeKey: string;
  keyPrefix: string;
  /** The same in Redis, with a hash tag so one bucket's keys share a Redis Cluster slot. */
  redisRouteKey: string;
  redisKeyPrefix: string;
  cluster: boolean;
  /** Cluster rules: the share this instance enforces alone while Redis is unreachable. */
  fallback: RateLimiter | undefined;
  fallbackPolicy: string;
}

export interface AdmissionCounts {
  /** 429: a rate rule refused. */
  rejected: number;
  /** Dry-run rules that would have refused. */
  would_reject: number;
  /** 503: over the pool's concurrency share for this priority (or the queue timed out). */
  shed: number;
  /** 503: a breaker (route's or pool's) is open. */
  breaker_open: number;
  /** Waited in the pool's queue (then admitted or shed). */
  queued: number;
  /** Cluster rules decided locally because Redis was unreachable. */
  redis_fallback: number;
  /** Failed Redis calls. */
  redis_errors: number;
}

export const COUNT_NAMES: (keyof AdmissionCounts)[] = ["rejected", "would_reject", "shed", "breaker_open", "queued", "redis_fallback", "redis_errors"];

export interface PoolGuard {
  name: string;
  limit: ConcurrencyLimit | undefined;
  shedding: ShedPolicy | undefined;
  inflight: number;
  queuedCritical: number;
  queuedNormal: number;
  breaker: Breaker | undefined;
  breakerOptions: BreakerOptions | undefined;
}

export interface RouteGuard {
  name: string;
  priority: Priority;
  rules: RuleRuntime[];
  ruleCount: number;
  /** RateLimit-* headers on admitted answers too (limits.headers = "all"). */
  headersOnAdmitted: boolean;
  hasCluster: boolean;
  /** rules[i].rule.limiter, or its fallback share for cluster rules (local mode). */
  localLimiters: RateLimiter[];
  /** Filled per request and used before anything yields (the combine runs without I/O). */
  localKeys: string[];
  adaptive: AdaptiveRate | undefined;
  /** Route-keyed token buckets the adaptive rate retunes, with their fallback shares (or undefined). */
  adaptiveBuckets: TokenBucket[];
  adaptiveFallbacks: (TokenBucket | undefined)[];
  breaker: Breaker | undefined;
  breakerOptions: BreakerOptions | undefined;
  pool: PoolGuard | undefined;
  poolRuntime: PoolRuntime | undefined;
  counts: AdmissionCounts;
}

export interface AdmissionRuntime {
  routes: LuaTable<RouteRuntime, RouteGuard>;
  routeList: RouteGuard[];
  pools: PoolGuard[];
  /** Redis instances sharing the cluster limits (fallback share divisor). */
  instances: number;
  anyCluster: boolean;
}

export function newCounts(): AdmissionCounts {
  return { rejected: 0, would_reject: 0, shed: 0, breaker_open: 0, queued: 0, redis_fallback: 0, redis_errors: 0 };
}

/** "X-Api-Key" -> "http_x_api_key" (how ngx.var names a request header). */
function headerVar(name: string): string {
  return "http_" + string.gsub(string.lower(name), "-", "_")[0];
}

function buildRule(route: string, rule: RateRule, i: number, instances: number): RuleRuntime {
  const cluster = rule.scope === "cluster";
  const fallback = cluster ? localShare(rule.limiter, instances) : undefined;
  const from = rule.key.from;
  return {
    rule,
    index: i,
    from,
    claim: rule.key.name,
    varName: from === "header" ? headerVar(rule.key.name) : from === "arg" ? "arg_" + rule.key.name : "",
    routeKey: `rl|${route}|${i}`,
    keyPrefix: `rl|${route}|${i}|`,
    redisRouteKey: `autoscale:{rl:${route}:${i}}`,
    redisKeyPrefix: `autoscale:{rl:${route}:${i}:`,
    cluster,
    fallback,
    fallbackPolicy: fallback === undefined ? rule.policy : policyValue(quota(fallback), fallback.kind === "token_bucket" ? fallback.burst / fallback.rate : fallback.window),
  };
}

function buildPool(pool: PoolRuntime, now: number): PoolGuard {
  const c = pool.config;
  return {
    name: c.name,
    limit: c.concurrency?.limit,
    shedding: c.concurrency?.shedding,
    inflight: 0,
    queuedCritical: 0,
    queuedNormal: 0,
    breaker: c.breaker === undefined ? undefined : newBreaker(now),
    breakerOptions: c.breaker,
  };
}

/** Builds the guards of every route that has limits, a breaker, or a guarded pool. */
export function buildAdmission(s: GatewayState, now: number): AdmissionRuntime {
  const instances = s.config.redis?.instances ?? 1;
  const rt: AdmissionRuntime = { routes: new LuaTable(), routeList: [], pools: [], instances, anyCluster: false };
  const pools = new LuaTable<string, PoolGuard>();
  for (const name of s.config.poolNames) {
    const p = s.pools.get(name);
    if (p.config.concurrency === undefined && p.config.breaker === undefined) continue;
    const g = buildPool(p, now);
    pools.set(name, g);
    rt.pools.push(g);
  }
  for (const r of s.routeList) {
    const c = r.config;
    if (c === undefined) continue;
    const pool = pools.get(c.pool);
    if (c.limits === undefined && c.breaker === undefined && pool === undefined) continue;
    const rules: RuleRuntime[] = [];
    const localLimiters: RateLimiter[] = [];
    const localKeys: string[] = [];
    const adaptiveBuckets: TokenBucket[] = [];
    const adaptiveFallbacks: (TokenBucket | undefined)[] = [];
    let hasCluster = false;
    const ruleConfigs = c.limits?.rate ?? [];
    for (let i = 0; i < ruleConfigs.length; i++) {
      const rule = buildRule(r.name, ruleConfigs[i], i + 1, instances);
      rules.push(rule);
      localLimiters.push(rule.fallback ?? rule.rule.limiter);
      localKeys.push(rule.routeKey);
      if (rule.cluster) hasCluster = true;
      const lim = rule.rule.limiter;
      if (lim.kind === "token_bucket" && rule.from === "route") {
        adaptiveBuckets.push(lim);
        adaptiveFallbacks.push(rule.fallback as TokenBucket | undefined);
      }
    }
    if (hasCluster) rt.anyCluster = true;
    const adaptive = c.limits?.adaptive;
    const g: RouteGuard = {
      name: r.name,
      priority: c.limits?.priority ?? "normal",
      rules,
      ruleCount: rules.length,
      headersOnAdmitted: c.limits?.headers === "all",
      hasCluster,
      localLimiters,
      localKeys,
      adaptive: adaptive === undefined ? undefined : newAdaptiveRate(adaptive, now),
      adaptiveBuckets,
      adaptiveFallbacks,
      breaker: c.breaker === undefined ? undefined : newBreaker(now),
      breakerOptions: c.breaker,
      pool,
      poolRuntime: r.pool,
      counts: newCounts(),
    };
    rt.routes.set(r, g);
    rt.routeList.push(g);
  }
  return rt;
}

let current: AdmissionRuntime | undefined;

export function setAdmission(rt: AdmissionRuntime): void {
  current = rt;
}

export function getAdmission(): AdmissionRuntime | undefined {
  return current;
}
