// The admission capability in the gateway (docs/admission.md). Access phase, in order:
// 1. rate rules of the route, all or nothing (429 + Retry-After + RateLimit-*);
// 2. the route's breaker, then the pool's (503 + Retry-After while open);
// 3. the pool's adaptive concurrency limit with priority shedding (503 + Retry-After, or a wait
//    in the pool's bounded queue).
// Log phase: the concurrency limit's sample and the breakers' results.
// Everything here is per worker except the rate counters (shared dict, or Redis for cluster
// rules): no closure, no string building for route-keyed rules, no lualib helper.
import * as rate from "../admission/rate";
import * as breakers from "../admission/breaker";
import * as concurrency from "../admission/concurrency";
import * as shedding from "../admission/shedding";
import * as keys from "../admission/keys";
import { remainingValue, resetSeconds, retryAfterSeconds } from "../admission/headers";
import { RequestContext } from "./request_context";
import { RateLimiter } from "../admission/rate";
import { CounterStore } from "../admission/store";
import { LIMITS_DICT, PoolGuard, RouteGuard, RuleRuntime, getAdmission } from "./admission_runtime";
import { connectRedis, health, markRedisFailure, redisDecide, releaseRedis } from "./admission_redis";

/** Seconds between two looks of a queued request at its pool. */
const QUEUE_POLL = 0.002;
/** Retry-After of a request shed by the concurrency limit. */
const SHED_RETRY_AFTER = 1;

let dict: CounterStore | undefined;

/** The limits dict: an ngx.shared dict has the CounterStore methods (incr with init_ttl, get, expire). */
function limitsDict(): CounterStore {
  if (dict === undefined) dict = ngx.shared[LIMITS_DICT] as unknown as CounterStore;
  return dict;
}

/** The bucket key of a rule for this request: the route's, or the consumer's when it has one. */
function localKey(r: RuleRuntime): string {
  const from = r.from;
  if (from === "route") return r.routeKey;
  const v = consumer(r);
  return v === undefined ? r.routeKey : r.keyPrefix + v;
}

function consumer(r: RuleRuntime): string | undefined {
  const from = r.from;
  if (from === "header" || from === "arg") return keys.fromHeader(ngx.var[r.varName])[0];
  if (from === "client_address") return keys.fromAddress(ngx.var.remote_addr)[0];
  if (from === "jwt_claim") return keys.fromJwtClaim(ngx.var.http_authorization, r.claim)[0];
  return undefined;
}

function redisKey(r: RuleRuntime): string {
  if (r.from === "route") return r.redisRouteKey;
  const v = consumer(r);
  return v === undefined ? r.redisRouteKey : r.redisKeyPrefix + v + "}";
}

function setRateHeaders(limiter: RateLimiter, policy: string, remaining: number, reset: number): void {
  const h = ngx.header;
  h["RateLimit-Limit"] = rate.quota(limiter);
  h["RateLimit-Remaining"] = remainingValue(remaining);
  h["RateLimit-Reset"] = resetSeconds(reset);
  h["RateLimit-Policy"] = policy;
}

function refuseRate(limiter: RateLimiter, policy: string, wait: number): never {
  ngx.header["Retry-After"] = retryAfterSeconds(wait);
  setRateHeaders(limiter, policy, 0, wait);
  return ngx.exit(429);
}

/** Local mode: every rule in the shared dict (cluster rules by their local share). No I/O, no yield. */
function checkLocal(g: RouteGuard, now: number): void {
  const n = g.ruleCount;
  let delay: number | undefined;
  let reason: string | undefined;
  let remaining: number;
  let reset: number;
  let decider = 0;
  if (n === 1) {
    // One rule, the common case, without a loop: a loop anywhere in the access phase's call tree
    // stops LuaJIT from compiling the phase as one trace, and it runs interpreted.
    [delay, reason, remaining, reset] = rate.incoming(g.localLimiters[0], limitsDict(), localKey(g.rules[0]), now, 1, true);
  } else {
    const ks = g.localKeys;
    for (const i of $range(0, n - 1)) ks[i] = localKey(g.rules[i]);
    [delay, reason, remaining, reset, decider] = rate.combine(g.localLimiters, ks, n, limitsDict(), now, 1);
  }
  const r = g.rules[decider];
  if (g.hasCluster && health.mode === "local") g.counts.redis_fallback += 1;
  if (delay === undefined) {
    if (reason !== "rejected") {
      // The dict failed (full): admitting is the safe side for a limiter.
      ngx.log(ngx.ERR, "autoscale: rate limit store ", LIMITS_DICT, " failed: ", reason, " (request admitted)");
      return;
    }
    g.counts.rejected += 1;
    refuseRate(g.localLimiters[decider], r.cluster ? r.fallbackPolicy : r.rule.policy, reset);
  }
  if (reason === "would_reject") g.counts.would_reject += 1;
  if (g.headersOnAdmitted) setRateHeaders(g.localLimiters[decider], r.cluster ? r.fallbackPolicy : r.rule.policy, remaining, reset);
}

/**
 * Cluster mode: local rules in the dict first, then cluster rules in Redis, in order. A Redis
 * failure switches this worker to local shares for the rest of this request and the next ones.
 * A refusal gives back what the local rules took (Redis scripts take nothing when they refuse,
 * but an earlier cluster rule's admission stays counted).
 */
function checkCluster(g: RouteGuard, now: number): void {
  const store = limitsDict();
  const n = g.ruleCount;
  const takenLimiters: RateLimiter[] = [];
  const takenKeys: string[] = [];
  let best = -1;
  let bestRemaining = 0;
  let bestReset = 0;
  let bestLimiter: RateLimiter = g.rules[0].rule.limiter;
  let bestPolicy = "";
  let conn: ReturnType<typeof connectRedis>[0];
  let refusedWait = -1;
  let refusedLimiter: RateLimiter = bestLimiter;
  let refusedPolicy = "";
  for (const i of $range(0, n - 1)) {
    const r = g.rules[i];
    let admitted: boolean;
    let remaining: number;
    let reset: number;
    let limiter: RateLimiter = r.rule.limiter;
    let policy = r.rule.policy;
    let viaRedis = false;
    if (r.cluster && health.mode === "cluster") {
      let err: string | undefined;
      if (conn === undefined) [conn, err] = connectRedis();
      if (conn !== undefined) {
        const [ok, rem, secs, rerr] = redisDecide(conn, r, redisKey(r));
        err = rerr;
        if (ok !== undefined) {
          viaRedis = true;
          admitted = ok === 1;
          remaining = rem;
          reset = secs;
          if (!admitted && limiter.dryRun) {
            admitted = true;
            g.counts.would_reject += 1;
          }
        }
      }
      if (!viaRedis) {
        g.counts.redis_errors += 1;
        markRedisFailure(err ?? "unknown error", now);
        if (conn !== undefined) releaseRedis(conn);
        conn = undefined;
      }
    }
    if (!viaRedis) {
      if (r.cluster) {
        limiter = r.fallback!;
        policy = r.fallbackPolicy;
        g.counts.redis_fallback += 1;
      }
      const key = localKey(r);
      const [delay, reason, rem, rst] = rate.incoming(limiter, store, key, now, 1, true);
      if (delay === undefined && reason !== "rejected") {
        ngx.log(ngx.ERR, "autoscale: rate limit store ", LIMITS_DICT, " failed: ", reason, " (rule admitted)");
        continue;
      }
      admitted = delay !== undefined;
      remaining = rem;
      reset = rst;
      if (reason === "would_reject") g.counts.would_reject += 1;
      if (admitted) {
        takenLimiters.push(limiter);
        takenKeys.push(key);
      }
    }
    if (!admitted!) {
      refusedWait = reset!;
      refusedLimiter = limiter;
      refusedPolicy = policy;
      break;
    }
    if (best < 0 || remaining! < bestRemaining) {
      best = i;
      bestRemaining = remaining!;
      bestReset = reset!;
      bestLimiter = limiter;
      bestPolicy = policy;
    }
  }
  if (conn !== undefined) releaseRedis(conn);
  if (refusedWait >= 0) {
    for (let j = takenLimiters.length - 1; j >= 0; j--) rate.uncommit(takenLimiters[j], store, takenKeys[j], now, 1);
    g.counts.rejected += 1;
    refuseRate(refusedLimiter, refusedPolicy, refusedWait);
  }
  if (best >= 0 && g.headersOnAdmitted) setRateHeaders(bestLimiter, bestPolicy, bestRemaining, bestReset);
}

function refuseUnavailable(wait: number): never {
  ngx.header["Retry-After"] = retryAfterSeconds(wait);
  return ngx.exit(503);
}

/** A half-open probe slot taken by a request refused later is given back. */
function releaseProbe(b: breakers.Breaker | undefined, probe: boolean | undefined): void {
  if (probe === true && b !== undefined && b.probesInFlight > 0) b.probesInFlight = b.probesInFlight - 1;
}

/** Waits in the pool's queue until its priority has room (true) or the timeout passes (false). */
function waitInQueue(pg: PoolGuard, critical: boolean, priority: shedding.Priority, start: number): boolean {
  const policy = pg.shedding!;
  const limit = pg.limit!;
  if (critical) pg.queuedCritical += 1;
  else pg.queuedNormal += 1;
  let admitted = false;
  while (true) {
    ngx.sleep(QUEUE_POLL);
    if (shedding.mayLeaveQueue(policy, priority, pg.inflight, concurrency.currentLimit(limit), critical ? 0 : pg.queuedCritical)) {
      admitted = true;
      break;
    }
    if (shedding.queueExpired(policy, start, ngx.now())) break;
  }
  if (critical) pg.queuedCritical -= 1;
  else pg.queuedNormal -= 1;
  return admitted;
}

/** access_by_lua: refuses (ngx.exit) or returns with the request admitted. */
export function admit(ctx: RequestContext): void {
  const rt = getAdmission();
  if (rt === undefined) return;
  const g = rt.routes.get(ctx.route);
  if (g === undefined) return;
  const now = ngx.now();
  if (g.ruleCount > 0) {
    if (g.hasCluster && health.mode === "cluster") checkCluster(g, now);
    else checkLocal(g, now);
  }

  const rb = g.breaker;
  if (rb !== undefined) {
    const [ok, probe] = breakers.allow(rb, g.breakerOptions!, now);
    if (!ok) {
      g.counts.breaker_open += 1;
      refuseUnavailable(breakers.retryAfter(rb, g.breakerOptions!, now));
    }
    ctx.admRouteProbe = probe;
  }
  const pg = g.pool;
  if (pg === undefined) {
    if (rb !== undefined) ctx.admGuard = g;
    return;
  }
  const pb = pg.breaker;
  if (pb !== undefined) {
    const [ok, probe] = breakers.allow(pb, pg.breakerOptions!, now);
    if (!ok) {
      releaseProbe(rb, ctx.admRouteProbe);
      g.counts.breaker_open += 1;
      refuseUnavailable(breakers.retryAfter(pb, pg.breakerOptions!, now));
    }
    ctx.admPoolProbe = probe;
  }
  const limit = pg.limit;
  if (limit !== undefined) {
    const policy = pg.shedding!;
    const priority = g.priority;
    const decision = shedding.decide(policy, priority, pg.inflight, concurrency.currentLimit(limit), pg.queuedCritical + pg.queuedNormal);
    if (decision !== "admit") {
      let admitted = false;
      if (decision === "queue") {
        g.counts.queued += 1;
        admitted = waitInQueue(pg, priority === "critical", priority, now);
        if (admitted) ctx.admStart = ngx.now();
      }
      if (!admitted) {
        releaseProbe(rb, ctx.admRouteProbe);
        releaseProbe(pb, ctx.admPoolProbe);
        g.counts.shed += 1;
        refuseUnavailable(SHED_RETRY_AFTER);
      }
    }
    pg.inflight += 1;
    ctx.admInflight = pg.inflight;
  } else if (pb === undefined && rb === undefined) {
    return;
  }
  ctx.admGuard = g;
}

/** log_by_lua: feeds the concurrency limit and the breakers with an admitted request's outcome (its status, at `now`). */
export function finish(ctx: RequestContext, status: number, now: number): void {
  const g = ctx.admGuard;
  if (g === undefined) return;
  const ok = status < 500;
  const inflight = ctx.admInflight;
  const pg = g.pool;
  if (inflight !== undefined && pg !== undefined) {
    pg.inflight -= 1;
    const start = ctx.admStart ?? ngx.req.start_time();
    // 503 and 504 say the backend is overloaded or too slow: a drop for the limit.
    concurrency.onSample(pg.limit!, start, now - start, inflight, status === 503 || status === 504);
  }
  if (g.breaker !== undefined) breakers.onResult(g.breaker, g.breakerOptions!, now, ok, ctx.admRouteProbe === true);
  if (pg !== undefined && pg.breaker !== undefined) breakers.onResult(pg.breaker, pg.breakerOptions!, now, ok, ctx.admPoolProbe === true);
}
