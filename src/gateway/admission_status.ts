// Admission control's start-up, its 1 s timer (adaptive rate, Redis probe, flush of per-worker
// figures into the limits dict) and its part of the status document.
import * as cjson from "cjson.safe";
import * as adaptiveRate from "../admission/adaptive_rate";
import * as concurrency from "../admission/concurrency";
import { retune } from "../admission/token_bucket";
import { quota } from "../admission/rate";
import { readSecret } from "../actuators/credentials";
import { systemIo } from "../actuators/credentials";
import { readWindow } from "../metrics/counters";
import { GatewayState, METRICS_DICT, getState } from "./state";
import { AdmissionRuntime, COUNT_NAMES, LIMITS_DICT, RouteGuard, buildAdmission, getAdmission, setAdmission } from "./admission_runtime";
import { configureRedis, health, probeRedis, redisAddress, redisConfigured, redisStatus } from "./admission_redis";

/** How long a worker's flushed figures stay readable after it stops flushing. */
const WORKER_TTL = 10;

function needsDict(s: GatewayState): boolean {
  for (const r of s.config.routes) if (r.limits !== undefined) return true;
  return false;
}

/** init_by_lua: builds the guards and reads the Redis password (the master still has its environment). */
export function prepareAdmission(s: GatewayState): void {
  if (needsDict(s) && ngx.shared[LIMITS_DICT] === undefined) {
    error(`lua-resty-autoscale: rate limits need "lua_shared_dict ${LIMITS_DICT} <size>;" in the http block (include nginx/autoscale.conf)`, 0);
  }
  const now = ngx.now();
  const cfg = s.config.redis;
  let password: string | undefined;
  if (cfg !== undefined && cfg.password !== undefined) {
    const [value, err] = readSecret(cfg.password, systemIo());
    if (value === undefined) error(`lua-resty-autoscale: redis.password: ${err}`, 0);
    password = value;
  }
  configureRedis(cfg, password, now);
  setAdmission(buildAdmission(s, now));
}

function adaptRates(s: GatewayState, rt: AdmissionRuntime, now: number): void {
  const metrics = ngx.shared[METRICS_DICT]!;
  const span = s.config.metrics.windows[0];
  for (const g of rt.routeList) {
    const a = g.adaptive;
    const pool = g.poolRuntime;
    if (a === undefined || pool === undefined) continue;
    // The backend's health: what the pool's peers answered (not this route's own 429/503).
    let requests = 0;
    let errors = 0;
    let latency = 0;
    for (const p of pool.peers) {
      const w = readWindow(metrics, p.series, now, span);
      requests += w.requests;
      errors += w.errors;
      latency += (w.meanLatency ?? 0) * w.requests;
    }
    const r = adaptiveRate.next(a, requests > 0 ? errors / requests : 0, requests > 0 ? latency / requests : 0, now);
    for (let i = 0; i < g.adaptiveBuckets.length; i++) {
      retune(g.adaptiveBuckets[i], r);
      const f = g.adaptiveFallbacks[i];
      if (f !== undefined) retune(f, r / rt.instances);
    }
  }
}

function flushFigures(rt: AdmissionRuntime, now: number): void {
  const dict = ngx.shared[LIMITS_DICT];
  if (dict === undefined) return;
  const wid = ngx.worker.id() ?? 0;
  for (const g of rt.routeList) {
    const c = g.counts;
    for (const name of COUNT_NAMES) {
      const v = c[name];
      if (v !== 0) {
        dict.incr(`count|${g.name}|${name}`, v, 0);
        c[name] = 0;
      }
    }
    const [line] = cjson.encode({ breaker: g.breaker?.state, rate: g.adaptive?.rate, stressed: g.adaptive?.stressed });
    dict.set(`worker|${wid}|route|${g.name}`, line ?? "{}", WORKER_TTL);
  }
  for (const pg of rt.pools) {
    const l = pg.limit;
    const [line] = cjson.encode({
      limit: l === undefined ? undefined : concurrency.currentLimit(l),
      min_rtt_ms: l === undefined ? undefined : concurrency.minRtt(l) * 1000,
      inflight: pg.inflight,
      queued: pg.queuedCritical + pg.queuedNormal,
      breaker: pg.breaker?.state,
      breaker_opened: pg.breaker?.timesOpened,
    });
    dict.set(`worker|${wid}|pool|${pg.name}`, line ?? "{}", WORKER_TTL);
  }
  if (redisConfigured()) {
    const [line] = cjson.encode({ mode: health.mode, since: redisStatus.since, error: health.mode === "local" ? redisStatus.lastError : undefined });
    dict.set(`worker|${wid}|redis`, line ?? "{}", WORKER_TTL);
  }
  void now;
}

function logFailure(this: void, err: unknown): string {
  return debug.traceback(tostring(err), 2);
}

function work(this: void, now: number): void {
  const s = getState();
  const rt = getAdmission();
  if (s === undefined || rt === undefined) return;
  if (rt.anyCluster || redisConfigured()) probeRedis(now);
  adaptRates(s, rt, now);
  flushFigures(rt, now);
}

function onTick(this: void, premature: boolean): void {
  if (premature) return;
  const [ok, err] = xpcall(work, logFailure, ngx.now());
  if (!ok) ngx.log(ngx.ERR, "autoscale: admission tick failed: ", tostring(err));
}

/** init_worker_by_lua: the 1 s admission timer of this worker. */
export function startAdmission(): void {
  const rt = getAdmission();
  if (rt === undefined || (rt.routeList.length === 0 && !redisConfigured())) return;
  const [ok, err] = ngx.timer.every(1, onTick);
  if (!ok) ngx.log(ngx.ERR, "autoscale: cannot start the admission timer: ", err);
}

function workerFigures(dict: NgxSharedDict, kind: string, name: string): LuaTable<string, unknown>[] {
  const out: LuaTable<string, unknown>[] = [];
  for (const wid of $range(0, ngx.worker.count() - 1)) {
    const line = dict.get(`worker|${wid}|${kind}${name}`)[0];
    if (type(line) !== "string") continue;
    const [doc] = cjson.decode(line as string);
    if (type(doc) === "table") {
      (doc as LuaTable<string, unknown>).set("worker", wid);
      out.push(doc as LuaTable<string, unknown>);
    }
  }
  return out;
}

/** The worst breaker state over the workers: open, then half_open, then closed. */
function worstState(workers: LuaTable<string, unknown>[]): string | undefined {
  let worst: string | undefined;
  for (const w of workers) {
    const st = w.get("breaker") as string | undefined;
    if (st === "open" || (st === "half_open" && worst !== "open") || (st === "closed" && worst === undefined)) worst = st;
  }
  return worst;
}

function ruleStatus(g: RouteGuard, rt: AdmissionRuntime): unknown[] {
  const out: unknown[] = [];
  const local = health.mode === "local";
  for (const r of g.rules) {
    const lim = r.rule.limiter;
    out.push({
      algorithm: lim.kind,
      scope: r.rule.scope,
      key: r.rule.key.from,
      key_name: r.rule.key.name === "" ? undefined : r.rule.key.name,
      quota: quota(lim),
      rate: lim.kind === "token_bucket" ? lim.rate : undefined,
      window: lim.kind === "sliding_window" ? lim.window : undefined,
      policy: r.rule.policy,
      dry_run: lim.dryRun,
      // Where this rule is enforced now (as seen by the worker answering).
      enforced: !r.cluster ? "local" : local ? "local_share" : "redis",
      local_share: r.fallback === undefined ? undefined : { quota: quota(r.fallback), policy: r.fallbackPolicy, instances: rt.instances },
    });
  }
  return out;
}

/** The "admission" part of the status document. */
export function admissionStatus(): unknown {
  const rt = getAdmission();
  const dict = ngx.shared[LIMITS_DICT];
  if (rt === undefined || dict === undefined) return undefined;
  const routes = new LuaTable<string, unknown>();
  for (const g of rt.routeList) {
    const counts = new LuaTable<string, number>();
    for (const name of COUNT_NAMES) counts.set(name, (dict.get(`count|${g.name}|${name}`)[0] as number | undefined) ?? 0);
    const workers = workerFigures(dict, "route|", g.name);
    routes.set(g.name, {
      priority: g.priority,
      pool: g.pool?.name,
      rate: g.rules.length > 0 ? ruleStatus(g, rt) : undefined,
      adaptive: g.adaptive === undefined ? undefined : { rate: g.adaptive.rate, stressed: g.adaptive.stressed, min_rate: g.adaptive.minRate, max_rate: g.adaptive.maxRate },
      breaker: g.breaker === undefined ? undefined : { state: worstState(workers) ?? g.breaker.state, workers },
      counts,
    });
  }
  const pools = new LuaTable<string, unknown>();
  for (const pg of rt.pools) {
    const workers = workerFigures(dict, "pool|", pg.name);
    let limit = 0;
    let inflight = 0;
    let queued = 0;
    let minRtt = 0;
    for (const w of workers) {
      limit += (w.get("limit") as number | undefined) ?? 0;
      inflight += (w.get("inflight") as number | undefined) ?? 0;
      queued += (w.get("queued") as number | undefined) ?? 0;
      minRtt = math.max(minRtt, (w.get("min_rtt_ms") as number | undefined) ?? 0);
    }
    pools.set(pg.name, {
      concurrency: pg.limit === undefined ? undefined : { algorithm: pg.limit.kind, limit, inflight, queued, min_rtt_ms: minRtt },
      breaker: pg.breaker === undefined ? undefined : { state: worstState(workers) ?? pg.breaker.state },
      workers,
    });
  }
  let redis: unknown;
  if (redisConfigured()) {
    const workers: LuaTable<string, unknown>[] = [];
    let mode = "cluster";
    for (const wid of $range(0, ngx.worker.count() - 1)) {
      const line = dict.get(`worker|${wid}|redis`)[0];
      if (type(line) !== "string") continue;
      const [doc] = cjson.decode(line as string);
      if (type(doc) !== "table") continue;
      const w = doc as LuaTable<string, unknown>;
      w.set("worker", wid);
      if (w.get("mode") === "local") mode = "local";
      workers.push(w);
    }
    if (health.mode === "local") mode = "local";
    redis = { address: redisAddress(), instances: rt.instances, mode, workers };
  }
  return { redis, routes, pools };
}
