// The control loop (issues 6-8, shell part). Every worker runs a 0.25 s timer that claims a
// short worker lease in the state dict: the holder runs the loop, and when it dies another worker
// takes over within one second. The holder, per tick:
//  1. cluster (with a `cluster` section, every cluster.interval): renews or acquires the leader
//     lease in Redis, publishes this instance's per-pool windows, and, as leader, reads the sum
//     over live instances;
//  2. starts fetches of external sources that are due (each in its own timer);
//  3. evaluates each pool's policy when its interval has passed, and hands an action to a timer
//     that applies the guard (clamp, idempotency, dry run, breaker, retries with backoff and
//     jitter, fencing) and sends it through the pool's actuator.
import { get_master_pid } from "ngx.process";
import * as cjson from "cjson.safe";
import { GatewayState, METRICS_DICT, PoolRuntime, STATE_DICT, getState } from "../state";
import { readInflight, readWindow } from "../../metrics/counters";
import { Histogram, percentiles } from "../../metrics/histogram";
import { PolicyInput, PolicyState, evaluate, newPolicyState } from "../../policy/engine";
import { HpaState, recordScaleEvent } from "../../policy/hpa";
import { ScalingConfig } from "../../config/config";
import { actuatorFor } from "../../actuators/registry";
import { CircuitBreaker, SendLedger, backoffDelay, newBreaker, newLedger, planAction } from "../../actuators/guard";
import { Actuator, Credentials, Decision } from "../../actuators/actuator";
import { ActuatorConfig } from "../../actuators/schema";
import { SecretCache, newSecretCache, resolveCredentials, secretsOf, systemIo } from "../../actuators/credentials";
import { redact } from "../../actuators/redact";
import { request } from "../../net/http";
import { claimWorkerLease, ACQUIRE_SCRIPT, RELEASE_SCRIPT, LeaderState, newLeaderState, onAcquireReply, isLeader, controlMode, ControlMode, fenceCheck, nextLeaseTry, tokenEpoch, tokenInstance } from "../../control/lease";
import { ClusterFigures, aggregate, encodeSnapshot, epochKey, leaseKey, metricsKey } from "../../control/cluster";
import { SourceEntry, SourceIo, fetchDue, newSourceEntry, reading, recordFetch } from "../../sources/source";
import { sourceFor } from "../../sources/registry";
import * as redisLink from "./redis_link";
import { CLUSTER_KEY, count, logEvent, setLastAction, setLastDecision } from "./report";
import { loadHistory, saveHistory } from "./history";
import * as members from "../membership_store";
import { DrainCandidate, drainVictims } from "../../control/drain";
import { MemberView, asKubernetes, planDiscovery, slicePeers, sliceListUrl } from "../../control/discovery";

/** Longest wait for a drained peer's in-flight requests before the scale-in signal goes anyway. */
const DRAIN_TIMEOUT = 30;

/** Seconds between two claims of the worker lease; the lease lives three of them. */
const TICK = 0.25;
const WORKER_LEASE_KEY = "ctl|worker";
const WORKER_LEASE_TTL = 0.75;
/** Re-read the orchestrator's current replica count this often (actuators that can). */
const RESYNC_SECONDS = 30;
/** A decision line at NOTICE at least this often when nothing changes (the rest at INFO). */
const QUIET_LOG_SECONDS = 60;

interface PoolControl {
  name: string;
  runtime: PoolRuntime;
  scaling: ScalingConfig;
  policy: PolicyState;
  ledger: SendLedger;
  breaker: CircuitBreaker;
  /** Replicas asked for, as last read from the orchestrator or set by us. */
  current?: number;
  currentReadAt: number;
  currentError?: string;
  /** The error of the last failed action (redacted), shown while the breaker holds sends back. */
  lastError?: string;
  lastEval: number;
  lastNotice: number;
  /** An action timer is running for this pool. */
  busy: boolean;
  /** The decision id reused while the same value is retried (one idempotency key). */
  pendingDesired?: number;
  pendingId?: string;
  historyMinute: number;
  sequence: number;
  cluster?: ClusterFigures;
  clusterAt: number;
}

interface Control {
  pools: LuaTable<string, PoolControl>;
  /** Pool names with a scaling section, in config order. */
  order: string[];
  leader: LeaderState;
  sources: LuaTable<string, SourceEntry>;
  fetching: LuaTable<string, boolean>;
  running: boolean;
  /** Time of the next lease renewal or claim (and publication of this instance's windows). */
  nextCluster: number;
  redisUp: boolean;
  redisError?: string;
  wasLeader: boolean;
  mode: ControlMode;
  acting: boolean;
  modeReason: string;
  modeSince: number;
  liveInstances: number;
}

let ctl: Control | undefined;
let instance: string | undefined;
const secretCache: SecretCache = newSecretCache();

/** This gateway's name in Redis and in signals: cluster.instance_id, else "<hostname>:<master pid>". */
export function instanceId(s: GatewayState): string {
  if (instance !== undefined) return instance;
  const configured = s.config.cluster?.instance_id;
  if (configured !== undefined) {
    instance = configured;
    return instance;
  }
  let host = "gateway";
  const [f] = io.open("/proc/sys/kernel/hostname", "r");
  if (f !== undefined) {
    host = string.match((f.read("*l") as string | undefined) ?? "gateway", "^%s*(.-)%s*$")[0] ?? "gateway";
    f.close();
  }
  instance = `${host}:${get_master_pid() ?? ngx.worker.pid()}`;
  return instance;
}

function newPoolControl(pool: PoolRuntime, scaling: ScalingConfig): PoolControl {
  const policy = newPolicyState(scaling);
  if (scaling.predictive !== undefined) {
    const saved = loadHistory(pool.config.name, scaling.predictive);
    if (saved !== undefined) policy.history = saved;
  }
  return {
    name: pool.config.name,
    runtime: pool,
    scaling,
    policy,
    ledger: newLedger(),
    breaker: newBreaker(scaling.actuator.breaker),
    currentReadAt: 0,
    lastEval: 0,
    lastNotice: 0,
    busy: false,
    historyMinute: -1,
    sequence: 0,
    clusterAt: 0,
  };
}

function newControl(s: GatewayState): Control {
  const pools = new LuaTable<string, PoolControl>();
  const order: string[] = [];
  for (const name of s.config.poolNames) {
    const pool = s.pools.get(name);
    if (pool.config.scaling !== undefined) {
      pools.set(name, newPoolControl(pool, pool.config.scaling));
      order.push(name);
    }
  }
  const sources = new LuaTable<string, SourceEntry>();
  for (const [name] of pairs(s.config.sources)) sources.set(name, newSourceEntry());
  const leader = newLeaderState();
  // A worker taking over from a dead one goes on with the instance's lease token.
  const token = ngx.shared[STATE_DICT]!.get("ctl|token")[0];
  if (type(token) === "string") leader.token = token as string;
  return {
    pools,
    order,
    leader,
    sources,
    fetching: new LuaTable(),
    running: false,
    nextCluster: 0,
    redisUp: s.config.cluster === undefined,
    wasLeader: false,
    mode: s.config.cluster === undefined ? "single" : "standby",
    acting: s.config.cluster === undefined,
    modeReason: "starting",
    modeSince: ngx.now(),
    liveInstances: 1,
  };
}

// ---------------------------------------------------------------- pool figures

interface PoolFigures {
  rate: number;
  requests: number;
  errors: number;
  inFlight?: number;
  p99Ms?: number;
}

/**
 * This instance's figures of a pool over `span` seconds: rate, requests and errors summed over
 * its peers, requests in flight now, and the p99 latency of the pool's merged latency histogram.
 */
export function localFigures(pool: PoolRuntime, span: number, now: number): PoolFigures {
  const dict = ngx.shared[METRICS_DICT]!;
  const workers = ngx.worker.count();
  const out: PoolFigures = { rate: 0, requests: 0, errors: 0, inFlight: 0 };
  const hist: Histogram = new LuaTable();
  for (const p of pool.peers) {
    // now + 1: the window ends with the second still filling (flushed buckets of this second
    // count at once), which saves up to a second of reaction to an overload.
    const w = readWindow(dict, p.series, now + 1, span, workers, false, hist);
    out.rate += w.rate;
    out.requests += w.requests;
    out.errors += w.errors;
    out.inFlight! += readInflight(dict, p.series, workers);
  }
  const p99 = percentiles(hist, out.requests).p99;
  out.p99Ms = p99 === undefined ? undefined : p99 * 1000;
  if (out.requests === 0) addRouteDemand(pool, span, now, out);
  return out;
}

/**
 * Activation: a pool whose peers saw no request (scaled to zero, every peer removed or down)
 * still has demand. Its routes count every request they answered (the 502/503 of a pool
 * without a peer included) and every request still in their access phase (e.g. held for the
 * first replica), so those become the pool's rate and in-flight, and the policy wakes it.
 */
function addRouteDemand(pool: PoolRuntime, span: number, now: number, out: PoolFigures): void {
  const s = getState();
  if (s === undefined) return;
  const dict = ngx.shared[METRICS_DICT]!;
  const workers = ngx.worker.count();
  for (const r of s.routeList) {
    if (r.pool !== pool) continue;
    const w = readWindow(dict, r.series, now + 1, span, workers, false);
    out.rate += w.rate;
    out.requests += w.requests;
    out.errors += w.errors;
    out.inFlight! += readInflight(dict, r.series, workers);
  }
}

function routeRates(s: GatewayState, pool: PoolRuntime, span: number, now: number): LuaTable<string, number> {
  const dict = ngx.shared[METRICS_DICT]!;
  const out = new LuaTable<string, number>();
  for (const r of s.routeList) {
    if (r.pool === pool) out.set(r.name, readWindow(dict, r.series, now + 1, span, ngx.worker.count()).rate);
  }
  return out;
}

// ---------------------------------------------------------------- cluster

function publishState(c: Control, s: GatewayState, now: number): void {
  const holder = c.leader.holder;
  const doc = {
    mode: c.mode,
    acting: c.acting,
    reason: c.modeReason,
    since: c.modeSince,
    instance: instanceId(s),
    // The worker running the loop (the one holding the worker lease).
    worker: ngx.worker.pid(),
    leader: holder === undefined ? undefined : tokenInstance(holder),
    fencing_token: c.leader.token === undefined ? undefined : tokenEpoch(c.leader.token),
    redis: s.config.cluster === undefined ? undefined : c.redisUp ? "up" : "down",
    redis_error: c.redisError,
    live_instances: s.config.cluster === undefined ? undefined : c.liveInstances,
    updated: now,
  };
  ngx.shared[STATE_DICT]!.set(CLUSTER_KEY, cjson.encode(doc)[0] ?? "{}");
}

function setMode(c: Control, s: GatewayState, now: number): void {
  const [mode, acting, reason] = controlMode({
    clustered: s.config.cluster !== undefined,
    redisUp: c.redisUp,
    leader: isLeader(c.leader, now),
    fallback: s.config.cluster?.fallback ?? "hold",
    wasLeader: c.wasLeader,
  });
  if (mode !== c.mode || acting !== c.acting) {
    const level = mode === "degraded" ? ngx.ALERT : ngx.NOTICE;
    logEvent(level, { event: "mode", from: c.mode, mode, acting, reason, instance: instanceId(s), redis_error: c.redisError, time: now });
    c.mode = mode;
    c.acting = acting;
    c.modeSince = now;
  }
  c.modeReason = reason;
  if (c.redisUp) c.wasLeader = mode === "leader";
}

/** Lease renewal, publication of this instance's windows and, as leader, the cluster sums. */
function clusterStep(c: Control, s: GatewayState, now: number): void {
  const cluster = s.config.cluster!;
  const redis = s.config.redis!;
  const me = instanceId(s);
  const [conn, cerr] = redisLink.open(redis);
  if (conn === undefined) {
    c.redisUp = false;
    c.redisError = cerr;
    return;
  }
  const [reply, err] = redisLink.runScript(conn, ACQUIRE_SCRIPT, [leaseKey(cluster.key_prefix), epochKey(cluster.key_prefix)], [c.leader.token ?? "", cluster.lease_ms, me]);
  if (err !== undefined || type(reply) !== "table") {
    c.redisUp = false;
    c.redisError = err ?? "unexpected lease reply";
    if (err === undefined || string.sub(err, 1, 7) === "redis: ") redisLink.release(conn);
    return;
  }
  const r = reply as unknown as (string | number)[];
  onAcquireReply(c.leader, r[0] as number, r[1] as string, now, cluster.lease_ms);
  c.nextCluster = nextLeaseTry(now, cluster.interval, r[0] as number, r[2] as number | undefined);
  ngx.shared[STATE_DICT]!.set("ctl|token", c.leader.token ?? "");
  if (c.leader.token === undefined) ngx.shared[STATE_DICT]!.delete("ctl|token");
  if (r[0] === 2) logEvent(ngx.NOTICE, { event: "leader", instance: me, token_epoch: tokenEpoch(r[1] as string), time: now });

  const cmds: (string | number)[][] = [];
  const ttlMs = math.ceil(cluster.stale_after * 2000);
  for (const name of c.order) {
    const pc = c.pools.get(name);
    const f = localFigures(pc.runtime, pc.scaling.window, now);
    cmds.push(["HSET", metricsKey(cluster.key_prefix, name), me, encodeSnapshot({ time: now, rate: f.rate, requests: f.requests, errors: f.errors, inFlight: f.inFlight, p99Ms: f.p99Ms })]);
    cmds.push(["PEXPIRE", metricsKey(cluster.key_prefix, name), ttlMs]);
  }
  const leading = isLeader(c.leader, now);
  if (leading) for (const name of c.order) cmds.push(["HGETALL", metricsKey(cluster.key_prefix, name)]);
  if (cmds.length > 0) {
    const [replies, perr] = redisLink.pipeline(conn, cmds);
    if (replies === undefined) {
      c.redisUp = false;
      c.redisError = perr;
      return;
    }
    if (leading) {
      let i = cmds.length - c.order.length;
      for (const name of c.order) {
        const pc = c.pools.get(name);
        const flat = replies[i];
        i++;
        if (type(flat) !== "table") continue;
        const entries = new LuaTable<string, string>();
        const arr = flat as string[];
        for (let j = 0; j + 1 < arr.length; j += 2) entries.set(arr[j], arr[j + 1]);
        pc.cluster = aggregate(entries, now, cluster.stale_after);
        pc.clusterAt = now;
        c.liveInstances = pc.cluster.live;
      }
    }
  }
  redisLink.release(conn);
  c.redisUp = true;
  c.redisError = undefined;
}

/** Fencing: true when the lease in Redis still carries our token (checked before each send). */
function stillLeader(s: GatewayState, token: string): LuaMultiReturn<[boolean, string | undefined]> {
  const [v, err] = redisLink.once(s.config.redis!, ["GET", leaseKey(s.config.cluster!.key_prefix)]);
  if (err !== undefined) return $multi(false, `cannot check the leader lease: ${err}`);
  if (v !== token) return $multi(false, `leader lease lost (now held by ${type(v) === "string" ? (tokenInstance(v as string) ?? "?") : "nobody"})`);
  return $multi(true, undefined);
}

// ---------------------------------------------------------------- sources

const sourceIo: SourceIo = {
  http: (req) => {
    const [res, err] = request({ method: req.method, url: req.url, headers: req.headers, timeoutMs: req.timeoutMs, maxBodyBytes: 1048576 });
    if (res === undefined) return $multi(undefined, err);
    return $multi({ status: res.status, body: res.body }, undefined);
  },
  redis: (args, timeoutMs) => {
    const s = getState();
    if (s === undefined || s.config.redis === undefined) return $multi(undefined, "no redis section");
    return redisLink.once(s.config.redis, args, timeoutMs);
  },
  secret: (ref) => secretCache.get(ref, systemIo(), ngx.now()),
};

function onSourceFetch(this: void, premature: boolean, name: string): void {
  const s = getState();
  const c = ctl;
  if (s === undefined || c === undefined) return;
  const entry = c.sources.get(name);
  const cfg = s.config.sources.get(name);
  if (premature || entry === undefined || cfg === undefined) {
    c.fetching.delete(name);
    return;
  }
  const src = sourceFor(cfg)!;
  const [ok, value, err] = pcall(src.fetch, cfg, sourceIo);
  ngx.update_time();
  const v = value as unknown;
  if (!ok) recordFetch(entry, undefined, `source failed: ${tostring(v)}`, ngx.now());
  else recordFetch(entry, v as number | undefined, redact((err as unknown as string | undefined) ?? "no value"), ngx.now());
  c.fetching.delete(name);
}

function startSourceFetches(c: Control, s: GatewayState, now: number): void {
  for (const [name, cfg] of pairs(s.config.sources)) {
    const entry = c.sources.get(name);
    if (c.fetching.get(name) || !fetchDue(entry, now, cfg.interval)) continue;
    entry.lastTry = now;
    c.fetching.set(name, true);
    const [ok, err] = ngx.timer.at(0, onSourceFetch, name);
    if (!ok) {
      c.fetching.delete(name);
      ngx.log(ngx.ERR, "autoscale: cannot start the fetch of source ", name, ": ", err);
    }
  }
}

/** External values for a policy, and the reason of each missing one (for the decision log). */
function externalValues(c: Control, s: GatewayState, scaling: ScalingConfig, now: number): LuaMultiReturn<[LuaTable<string, number>, LuaTable<string, unknown>]> {
  const values = new LuaTable<string, number>();
  const report = new LuaTable<string, unknown>();
  for (const m of scaling.metrics) {
    if (m.metric === "external" && m.name !== undefined && s.config.sources.get(m.name) === undefined) report.set(m.name, { missing: `no source named ${m.name} in "sources"` });
  }
  for (const [name, cfg] of pairs(s.config.sources)) {
    const [v, why] = reading(c.sources.get(name), now, cfg.max_age);
    if (v !== undefined) {
      values.set(name, v);
      report.set(name, { value: v });
    } else {
      report.set(name, { missing: why });
    }
  }
  return $multi(values, report);
}

/** Every source's value or why it is missing, kept in the state dict for any worker's status page. */
function storeSourcesStatus(c: Control, s: GatewayState, now: number): void {
  if (next(s.config.sources)[0] === undefined) return;
  const out = new LuaTable<string, unknown>();
  for (const [name, cfg] of pairs(s.config.sources)) {
    const e = c.sources.get(name);
    const [v, why] = reading(e, now, cfg.max_age);
    out.set(name, { type: cfg.type, value: v, missing: why, fetched_at: e.fetchedAt, error: e.error });
  }
  ngx.shared[STATE_DICT]!.set("ctl|sources", cjson.encode(out)[0] ?? "{}");
}

export function sourcesStatus(): unknown {
  const text = ngx.shared[STATE_DICT]!.get("ctl|sources")[0];
  return type(text) === "string" ? cjson.decode(text as string)[0] : undefined;
}

// ---------------------------------------------------------------- discovery

const discoveryPolling = new LuaTable<string, boolean>();
const discoveryLast = new LuaTable<string, number>();

function memberAddress(host: string, port: number): string {
  return string.find(host, ":", 1, true)[0] !== undefined ? `[${host}]:${port}` : `${host}:${port}`;
}

/** One poll of a pool's EndpointSlices, and the membership changes that follow. */
function pollDiscovery(this: void, premature: boolean, poolName: string): void {
  const s = getState();
  const pool = s?.pools.get(poolName);
  const cfg = pool?.config.discovery;
  if (premature || cfg === undefined) {
    discoveryPolling.delete(poolName);
    return;
  }
  const [ok, err] = pcall(discoverOnce, poolName, cfg);
  if (!ok) ngx.log(ngx.ERR, "autoscale: discovery of pool ", poolName, " failed: ", redact(tostring(err)));
  discoveryPolling.delete(poolName);
}

function discoverOnce(this: void, poolName: string, cfg: NonNullable<PoolRuntime["config"]["discovery"]>): void {
  const now = ngx.now();
  const k8s = asKubernetes(cfg);
  const [creds, cerr] = resolveCredentials(k8s, systemIo(), secretCache, now);
  const fail = (why: string) => {
    logEvent(ngx.WARN, { event: "discovery_failure", pool: poolName, error: redact(why, creds === undefined ? undefined : secretsOf(creds)), time: ngx.now() });
  };
  if (creds === undefined || creds.apiUrl === undefined) return fail(cerr ?? "no Kubernetes API URL");
  const namespace = cfg.namespace ?? creds.namespace ?? "default";
  const headers = new LuaTable<string, string>();
  headers.set("Authorization", `Bearer ${creds.bearerToken}`);
  headers.set("Accept", "application/json");
  const [res, herr] = request({ method: "GET", url: sliceListUrl(creds.apiUrl, namespace, cfg.service), headers, timeoutMs: cfg.timeout_ms, maxBodyBytes: 4194304 });
  if (res === undefined) return fail(herr ?? "request failed");
  if (res.status !== 200) return fail(`Kubernetes API: HTTP ${res.status}`);
  const [doc, derr] = cjson.decode(res.body);
  if (doc === undefined) return fail(`Kubernetes API: response is not JSON (${derr})`);
  const [found, perr] = slicePeers(doc, cfg.port);
  if (found === undefined) return fail(perr ?? "no peers");
  const [m] = members.load(poolName);
  const view: MemberView[] = [];
  if (m !== undefined) for (const p of m.peers) view.push({ address: memberAddress(p.host, p.port), state: p.state });
  const plan = planDiscovery(view, found);
  for (const a of plan.add) members.addPeer(poolName, a);
  for (const a of plan.drain) members.drainPeer(poolName, a);
  for (const a of plan.up) {
    const [host, port] = members.splitAddress(a);
    const op = new LuaTable<string, unknown>();
    op.set("op", "up");
    op.set("host", host);
    op.set("port", tonumber(port));
    members.change(poolName, op, ngx.now());
  }
  // Peers drained earlier (by discovery or a scale-in) leave once nothing is in flight to them.
  const wanted = new LuaTable<string, boolean>();
  for (const a of found) wanted.set(a, true);
  const removed: string[] = [];
  if (m !== undefined) {
    for (const p of m.peers) {
      const a = memberAddress(p.host, p.port);
      if (p.state === "draining" && !wanted.get(a) && members.peerDrained(poolName, a)[0]) {
        members.removePeer(poolName, a);
        removed.push(a);
      }
    }
  }
  if (plan.add.length > 0 || plan.drain.length > 0 || plan.up.length > 0 || removed.length > 0) {
    const some = (l: string[]) => (l.length > 0 ? l : undefined);
    logEvent(ngx.NOTICE, { event: "discovery", pool: poolName, added: some(plan.add), draining: some(plan.drain), up: some(plan.up), removed: some(removed), peers: found, time: ngx.now() });
  }
}

function startDiscovery(s: GatewayState, now: number): void {
  for (const name of s.config.poolNames) {
    const cfg = s.pools.get(name).config.discovery;
    if (cfg === undefined || discoveryPolling.get(name)) continue;
    const last = discoveryLast.get(name);
    if (last !== undefined && now - last < cfg.interval && now >= last) continue;
    discoveryLast.set(name, now);
    discoveryPolling.set(name, true);
    const [ok, err] = ngx.timer.at(0, pollDiscovery, name);
    if (!ok) {
      discoveryPolling.delete(name);
      ngx.log(ngx.ERR, "autoscale: cannot start the discovery of pool ", name, ": ", err);
    }
  }
}

// ---------------------------------------------------------------- actions

function credentialsFor(pc: PoolControl, now: number): LuaMultiReturn<[Credentials | undefined, string | undefined]> {
  return resolveCredentials(pc.scaling.actuator, systemIo(), secretCache, now);
}

/**
 * After a 401: forget the cached secrets and read them again. True when one changed (a rotated
 * token, e.g. the kubelet's projected one), so the refused request is worth sending again now
 * instead of waiting for the cache to expire.
 */
function secretsRotated(pc: PoolControl, used: string[], now: number): boolean {
  secretCache.clear();
  const [fresh] = credentialsFor(pc, now);
  if (fresh === undefined) return false;
  const values = secretsOf(fresh);
  if (values.length !== used.length) return true;
  for (let i = 0; i < used.length; i++) if (values[i] !== used[i]) return true;
  return false;
}

interface ReadResult {
  replicas?: number;
  error?: string;
  status?: number;
  secrets: string[];
}

/** One read of the orchestrator's replica count; the error is already redacted. */
function readCurrent(pc: PoolControl, actuator: Actuator<ActuatorConfig>, now: number): ReadResult {
  const cfg = pc.scaling.actuator;
  const [creds, cerr] = credentialsFor(pc, now);
  if (creds === undefined) return { error: redact(cerr ?? "no credentials"), secrets: [] };
  const secrets = secretsOf(creds);
  const [spec, berr] = actuator.describeCurrent(cfg, creds, now);
  if (spec === undefined) return { error: redact(berr ?? "cannot describe", secrets), secrets };
  const [res, herr] = request({ method: spec.method, url: spec.url, headers: spec.headers, body: spec.body, timeoutMs: cfg.timeout_ms });
  if (res === undefined) return { error: redact(herr ?? "request failed", secrets), secrets };
  const [n, perr] = actuator.parseCurrent(res.status, res.headers, res.body);
  if (n === undefined) return { error: redact(perr ?? "unreadable", secrets), status: res.status, secrets };
  return { replicas: n, status: res.status, secrets };
}

/** Reads the orchestrator's replica count when the actuator can and it is due. */
function syncCurrent(pc: PoolControl, now: number): void {
  const cfg = pc.scaling.actuator;
  const [actuator] = actuatorFor(cfg);
  if (actuator === undefined) return;
  if (!actuator.readsCurrent) {
    if (pc.current === undefined) {
      // The gateway's own view: the peers in rotation.
      const [m] = members.load(pc.name);
      let n = 0;
      if (m !== undefined) {
        for (const p of m.peers) if (p.state === "up" && p.weight > 0) n++;
      } else {
        for (const p of pc.runtime.peers) if (p.configuredWeight > 0) n++;
      }
      pc.current = n;
    }
    return;
  }
  if (pc.busy || (pc.current !== undefined && now - pc.currentReadAt < RESYNC_SECONDS)) return;
  // After a failed read, ask again every few seconds, not every evaluation.
  if (pc.current === undefined && pc.currentError !== undefined && now - pc.currentReadAt < 5) return;
  let r = readCurrent(pc, actuator, now);
  if (r.status === 401 && secretsRotated(pc, r.secrets, now)) r = readCurrent(pc, actuator, now);
  ngx.update_time();
  pc.currentReadAt = ngx.now();
  if (r.replicas === undefined) {
    pc.currentError = r.error;
    // A failed read is a failure of the actuator too: a line, a counter, the status (loop.current_error).
    count(pc.name, "read_failed");
    logEvent(ngx.WARN, { event: "read_failure", pool: pc.name, actuator: cfg.type, error: r.error, stale_current: pc.current, time: pc.currentReadAt });
    return;
  }
  pc.current = r.replicas;
  pc.currentError = undefined;
}

function onAction(this: void, premature: boolean, poolName: string, desired: number, decisionId: string, reason: string, current: number): void {
  const c = ctl;
  const s = getState();
  const pc = c?.pools.get(poolName);
  if (c === undefined || s === undefined || pc === undefined) return;
  if (premature) {
    pc.busy = false;
    return;
  }
  const [ok, err] = xpcall(act, (e: unknown) => debug.traceback(tostring(e), 2), c, s, pc, desired, decisionId, reason, current);
  if (!ok) ngx.log(ngx.ERR, "autoscale: scale action of pool ", poolName, " failed: ", redact(tostring(err)));
  pc.busy = false;
}

/**
 * Graceful scale-in: drains the peers that go away and waits until their in-flight requests
 * finished (or DRAIN_TIMEOUT). Returns the drained addresses (empty when draining does not apply).
 */
function drainForScaleIn(pc: PoolControl, current: number, desired: number, decisionId: string): string[] {
  const [m] = members.load(pc.name);
  if (m === undefined) return [];
  const peers: DrainCandidate[] = [];
  for (const p of m.peers) peers.push({ address: string.find(p.host, ":", 1, true)[0] !== undefined ? `[${p.host}]:${p.port}` : `${p.host}:${p.port}`, state: p.state });
  const victims = drainVictims(peers, current, desired);
  if (victims.length === 0) return victims;
  const began = ngx.now();
  for (const v of victims) {
    const [, err] = members.drainPeer(pc.name, v);
    if (err !== undefined) ngx.log(ngx.ERR, "autoscale: cannot drain ", v, " of pool ", pc.name, ": ", err);
  }
  let drained = false;
  let waiting = "";
  while (!drained) {
    drained = true;
    for (const v of victims) {
      const [ok, why] = members.peerDrained(pc.name, v);
      if (!ok) {
        drained = false;
        waiting = `${v}: ${why ?? "not drained"}`;
        break;
      }
    }
    ngx.update_time();
    if (drained || ngx.now() - began >= DRAIN_TIMEOUT || ngx.worker.exiting()) break;
    ngx.sleep(0.25);
  }
  logEvent(drained ? ngx.NOTICE : ngx.WARN, {
    event: "drain",
    pool: pc.name,
    decision_id: decisionId,
    peers: victims,
    drained,
    waited_ms: math.floor((ngx.now() - began) * 1000),
    still: drained ? undefined : waiting,
    time: ngx.now(),
  });
  return victims;
}

interface SendResult {
  done: boolean;
  error?: string;
  /** Whether another attempt may help (false for a refusal that will not change). */
  retryable: boolean;
  status?: number;
  secrets: string[];
}

/** Builds, sends and judges one set-replicas request. */
function sendOnce(c: Control, s: GatewayState, pc: PoolControl, actuator: Actuator<ActuatorConfig>, desired: number, decision: Decision, now: number): SendResult {
  const cfg = pc.scaling.actuator;
  const [creds, cerr] = credentialsFor(pc, now);
  if (creds === undefined) return { done: false, error: cerr, retryable: false, secrets: [] };
  const secrets = secretsOf(creds);
  const [spec, berr] = actuator.buildSet(cfg, creds, desired, now, decision);
  if (spec === undefined) return { done: false, error: berr, retryable: false, secrets };
  // Who sends, and under which lease: receivers can check that only one instance acts.
  const token = c.leader.token;
  spec.headers.set("X-Autoscale-Instance", instanceId(s));
  if (token !== undefined && s.config.cluster !== undefined) spec.headers.set("X-Autoscale-Fencing-Token", tostring(tokenEpoch(token)));
  const [res, herr] = request({ method: spec.method, url: spec.url, headers: spec.headers, body: spec.body, timeoutMs: cfg.timeout_ms, maxBodyBytes: 1048576 });
  if (res === undefined) return { done: false, error: herr, retryable: true, secrets };
  const [applied, perr, again] = actuator.parseSet(res.status, res.headers, res.body);
  if (applied) return { done: true, retryable: false, status: res.status, secrets };
  return { done: false, error: perr ?? `HTTP ${res.status}`, retryable: again, status: res.status, secrets };
}

function act(this: void, c: Control, s: GatewayState, pc: PoolControl, desired: number, decisionId: string, reason: string, current: number): void {
  const cfg = pc.scaling.actuator;
  const [actuator, aerr] = actuatorFor(cfg);
  const drained = drainForScaleIn(pc, current, desired, decisionId);
  ngx.update_time();
  const started = ngx.now();
  let error: string | undefined = aerr;
  let secrets: string[] = [];
  let attempts = 0;
  let fenced = false;
  let done = false;
  if (actuator !== undefined) {
    for (const attempt of $range(1, cfg.retry.attempts)) {
      attempts = attempt;
      ngx.update_time();
      const now = ngx.now();
      // Fencing: a former leader that lost its lease stops before a new one can start.
      // The mode is read now, not at the decision: a leader demoted during a drain or a retry's
      // backoff must not send.
      const token = c.leader.token;
      const fence = fenceCheck(s.config.cluster !== undefined, c.mode, c.acting);
      if (fence === "stop") {
        error = `this instance no longer acts (mode ${c.mode})`;
        fenced = true;
        break;
      }
      if (fence === "lease") {
        let still = false;
        let ferr: string | undefined = "no leader lease";
        if (token !== undefined) [still, ferr] = stillLeader(s, token);
        if (!still) {
          error = ferr;
          fenced = true;
          break;
        }
      }
      let r = sendOnce(c, s, pc, actuator, desired, { pool: pc.name, id: decisionId, reason, current }, now);
      if (r.status === 401 && secretsRotated(pc, r.secrets, now)) {
        logEvent(ngx.NOTICE, { event: "credentials_reread", pool: pc.name, decision_id: decisionId, reason: "HTTP 401 and the secret changed on disk: sent again with the new one", time: now });
        const refused = r.secrets;
        r = sendOnce(c, s, pc, actuator, desired, { pool: pc.name, id: decisionId, reason, current }, now);
        for (const v of refused) r.secrets.push(v);
      }
      secrets = r.secrets;
      error = r.error;
      if (r.done) {
        done = true;
        break;
      }
      if (r.status === 401) secretCache.clear();
      if (!r.retryable || attempt === cfg.retry.attempts) break;
      count(pc.name, "retried");
      const waitMs = backoffDelay(attempt, cfg.retry, math.random);
      logEvent(ngx.WARN, { event: "action_retry", pool: pc.name, decision_id: decisionId, desired, attempt, wait_ms: waitMs, error: redact(error ?? "", secrets) });
      ngx.sleep(waitMs / 1000);
    }
  }
  ngx.update_time();
  const now = ngx.now();
  const doc = {
    event: done ? "action" : "action_failure",
    pool: pc.name,
    actuator: cfg.type,
    decision_id: decisionId,
    current,
    desired,
    reason,
    attempts,
    outcome: done ? "sent" : fenced ? "fenced" : "failed",
    error: error === undefined || done ? undefined : redact(error, secrets),
    instance: instanceId(s),
    fencing_token: c.leader.token === undefined || s.config.cluster === undefined ? undefined : tokenEpoch(c.leader.token),
    duration_ms: math.floor((now - started) * 1000),
    drained: drained.length > 0 ? drained : undefined,
    time: now,
  };
  const line = logEvent(done ? ngx.NOTICE : ngx.ERR, doc);
  setLastAction(pc.name, line);
  if (done) {
    if (desired !== current) recordScaleEvent(pc.policy.hpa, now, desired - current, pc.scaling.behavior.scale_up, pc.scaling.behavior.scale_down);
    pc.ledger.record(desired, now);
    pc.breaker.onSuccess();
    pc.current = desired;
    pc.currentReadAt = now;
    pc.pendingDesired = undefined;
    pc.pendingId = undefined;
    count(pc.name, "sent");
    // The orchestrator removes the replicas: their drained peers leave the pool.
    for (const v of drained) members.removePeer(pc.name, v);
    return;
  }
  // No scale-in happened: the drained peers serve again.
  for (const v of drained) {
    const [host, port] = members.splitAddress(v);
    const op = new LuaTable<string, unknown>();
    op.set("op", "up");
    op.set("host", host);
    op.set("port", tonumber(port));
    members.change(pc.name, op, ngx.now());
  }
  if (fenced) {
    count(pc.name, "fenced");
    return;
  }
  pc.breaker.onFailure(now);
  pc.lastError = doc.error;
  count(pc.name, "failed");
  // The change may have been applied before the failure showed: read the count again.
  pc.currentReadAt = 0;
}

// ---------------------------------------------------------------- evaluation

interface EventMark {
  times: LuaTable<number, number>;
  changes: LuaTable<number, number>;
  head: number;
  size: number;
  cap: number;
}

/**
 * The engine records a scale event whenever it answers a new count, assuming it is applied (as
 * the HPA controller does). Here an answer is applied only when the action succeeds: the shell
 * takes the event back (restoreEvents) and records it on success.
 */
function markEvents(h: HpaState): EventMark {
  return { times: h.eventTimes, changes: h.eventChanges, head: h.eventHead, size: h.eventSize, cap: h.eventCap };
}

function restoreEvents(h: HpaState, m: EventMark): void {
  h.eventTimes = m.times;
  h.eventChanges = m.changes;
  h.eventHead = m.head;
  h.eventSize = m.size;
  h.eventCap = m.cap;
}

function decisionIdFor(pc: PoolControl, desired: number, now: number): string {
  if (pc.pendingDesired === desired && pc.pendingId !== undefined) return pc.pendingId;
  pc.sequence++;
  const id = string.format("%s-%d-%d", pc.name, math.floor(now * 1000), pc.sequence);
  pc.pendingDesired = desired;
  pc.pendingId = id;
  return id;
}

/**
 * Dry run: the request that would be sent (method, URL, body; no headers, they carry the
 * credentials), redacted; or why it could not be built (e.g. no credentials where it runs).
 */
function wouldSend(pc: PoolControl, desired: number, decision: Decision, now: number): LuaMultiReturn<[unknown, string | undefined]> {
  const cfg = pc.scaling.actuator;
  const [actuator, aerr] = actuatorFor(cfg);
  if (actuator === undefined) return $multi(undefined, aerr);
  const [creds, cerr] = credentialsFor(pc, now);
  if (creds === undefined) return $multi(undefined, redact(cerr ?? "no credentials"));
  const secrets = secretsOf(creds);
  const [spec, berr] = actuator.buildSet(cfg, creds, desired, now, decision);
  if (spec === undefined) return $multi(undefined, redact(berr ?? "cannot build the request", secrets));
  return $multi({ method: spec.method, url: redact(spec.url, secrets), body: spec.body === undefined ? undefined : redact(spec.body, secrets) }, undefined);
}

function evaluatePool(c: Control, s: GatewayState, pc: PoolControl, now: number): void {
  const scaling = pc.scaling;
  syncCurrent(pc, now);
  const current = pc.current;
  if (current === undefined) {
    const line = logEvent(ngx.WARN, { event: "decision", pool: pc.name, outcome: "skipped", reason: `current replicas unknown: ${pc.currentError ?? "not read yet"}`, time: now });
    setLastDecision(pc.name, line);
    return;
  }
  let figures: PoolFigures = localFigures(pc.runtime, scaling.window, now);
  let scope = "instance";
  if (s.config.cluster !== undefined && c.mode === "leader" && pc.cluster !== undefined && now - pc.clusterAt <= s.config.cluster.stale_after) {
    figures = pc.cluster;
    scope = "cluster";
  }
  const [external, sourceReport] = externalValues(c, s, scaling, now);
  const input: PolicyInput = {
    now,
    current,
    ready: current,
    requests_per_second: figures.rate,
    in_flight: figures.inFlight,
    p99_latency_ms: figures.p99Ms,
    error_ratio: figures.requests > 0 ? figures.errors / figures.requests : undefined,
    external,
    route_rates: scaling.route_costs === undefined ? undefined : routeRates(s, pc.runtime, scaling.window, now),
  };
  const mark = markEvents(pc.policy.hpa);
  const [desired, e] = evaluate(scaling, pc.policy, input);
  restoreEvents(pc.policy.hpa, mark);
  const plan = pc.busy ? { action: "in_progress", desired: desired, clamped: false } : planAction(
    { requested: desired, min: scaling.min_replicas, max: scaling.max_replicas, dryRun: scaling.actuator.dry_run, resendInterval: scaling.actuator.resend_interval, now },
    pc.ledger,
    pc.breaker,
  );
  // A value equal to the orchestrator's is no action either (idempotent across restarts).
  let action: string = plan.action;
  if (action === "send" && plan.desired === current && pc.ledger.value === undefined) {
    pc.ledger.record(current, now);
    action = "unchanged";
  }
  const decisionId = decisionIdFor(pc, plan.desired, now);
  const doc = {
    event: "decision",
    pool: pc.name,
    decision_id: decisionId,
    mode: c.mode,
    scope,
    current,
    desired: plan.desired,
    clamped: plan.clamped,
    action,
    winner: e.winner,
    reason: e.reason,
    proposal: e.proposal,
    stabilized: e.stabilized,
    inputs: e.inputs,
    rules: e.rules,
    sources: next(sourceReport)[0] === undefined ? undefined : sourceReport,
    breaker: pc.breaker.state,
    time: now,
  };
  const quiet = action === "unchanged" && plan.desired === current && now - pc.lastNotice < QUIET_LOG_SECONDS;
  if (!quiet) pc.lastNotice = now;
  const line = logEvent(quiet ? ngx.INFO : ngx.NOTICE, doc);
  setLastDecision(pc.name, line);
  if (action === "dry_run") {
    count(pc.name, "dry_run");
    pc.ledger.record(plan.desired, now);
    const [request, requestError] = wouldSend(pc, plan.desired, { pool: pc.name, id: decisionId, reason: e.reason, current }, now);
    setLastAction(pc.name, logEvent(ngx.NOTICE, { event: "action", pool: pc.name, outcome: "dry_run", decision_id: decisionId, current, desired: plan.desired, reason: e.reason, request, request_error: requestError, time: now }));
  } else if (action === "breaker_open") {
    // The decision line above is the log line; the status shows why nothing was sent.
    count(pc.name, "breaker_open");
    const [skipped] = cjson.encode({ event: "action_skipped", pool: pc.name, outcome: "breaker_open", decision_id: decisionId, current, desired: plan.desired, retry_in: pc.breaker.retryIn(now), last_error: pc.lastError, time: now });
    if (skipped !== undefined) setLastAction(pc.name, skipped);
  } else if (action === "send") {
    pc.busy = true;
    const [ok, err] = ngx.timer.at(0, onAction, pc.name, plan.desired, decisionId, e.reason, current);
    if (!ok) {
      pc.busy = false;
      ngx.log(ngx.ERR, "autoscale: cannot start the scale action of pool ", pc.name, ": ", err);
    }
  }
  // Save the forecaster's history once a minute (it changes per minute).
  const h = pc.policy.history;
  if (h !== undefined && pc.policy.minute !== pc.historyMinute) {
    pc.historyMinute = pc.policy.minute;
    saveHistory(pc.name, h);
  }
}

// ---------------------------------------------------------------- the tick

function work(this: void, c: Control, s: GatewayState, now: number): void {
  const cluster = s.config.cluster;
  if (cluster !== undefined && now >= c.nextCluster) {
    c.nextCluster = now + cluster.interval;
    clusterStep(c, s, now);
    ngx.update_time();
    now = ngx.now();
  }
  setMode(c, s, now);
  publishState(c, s, now);
  startSourceFetches(c, s, now);
  storeSourcesStatus(c, s, now);
  startDiscovery(s, now);
  for (const name of c.order) {
    const pc = c.pools.get(name);
    if (c.acting && now - pc.lastEval >= pc.scaling.interval) {
      pc.lastEval = now;
      evaluatePool(c, s, pc, now);
    }
    const [line] = cjson.encode({ current: pc.current, current_error: pc.currentError, breaker: pc.breaker.state, busy: pc.busy, cluster: pc.cluster });
    ngx.shared[STATE_DICT]!.set(`ctl|loop|${name}`, line ?? "{}");
  }
}

function releaseLease(s: GatewayState, c: Control): void {
  const token = c.leader.token;
  if (token === undefined || s.config.cluster === undefined) return;
  const [conn] = redisLink.open(s.config.redis!, 300);
  if (conn === undefined) return;
  const [released] = redisLink.runScript(conn, RELEASE_SCRIPT, [leaseKey(s.config.cluster.key_prefix)], [token]);
  redisLink.release(conn);
  ngx.shared[STATE_DICT]!.delete("ctl|token");
  if (released === 1) logEvent(ngx.NOTICE, { event: "leader_released", instance: instanceId(s), time: ngx.now() });
}

function onTick(this: void, premature: boolean): void {
  const s = getState();
  if (s === undefined) return;
  const dict = ngx.shared[STATE_DICT]!;
  if (premature) {
    // Shutting down or reloading: hand the leadership over at once.
    if (ctl !== undefined && dict.get(WORKER_LEASE_KEY)[0] === ngx.worker.pid()) {
      pcall(releaseLease, s, ctl);
      dict.delete(WORKER_LEASE_KEY);
    }
    return;
  }
  if (!claimWorkerLease(dict, WORKER_LEASE_KEY, ngx.worker.pid(), WORKER_LEASE_TTL)) {
    // Another worker runs the loop: forget any state of an earlier turn.
    if (ctl !== undefined && !ctl.running) ctl = undefined;
    return;
  }
  if (ctl === undefined) ctl = newControl(s);
  const c = ctl;
  if (c.running) return;
  c.running = true;
  const [ok, err] = xpcall(work, (e: unknown) => debug.traceback(tostring(e), 2), c, s, ngx.now());
  c.running = false;
  if (!ok) ngx.log(ngx.ERR, "autoscale: control loop failed: ", redact(tostring(err)));
}

/** init_worker: every worker runs the timer; the worker lease picks the one that works. */
export function startControl(s: GatewayState): void {
  let needed = s.config.cluster !== undefined || next(s.config.sources)[0] !== undefined;
  for (const name of s.config.poolNames) {
    const pool = s.pools.get(name).config;
    if (pool.scaling !== undefined || pool.discovery !== undefined) needed = true;
  }
  if (!needed) return;
  const [ok, err] = ngx.timer.every(TICK, onTick);
  if (!ok) ngx.log(ngx.ERR, "autoscale: cannot start the control loop timer: ", err);
}

/** Per-pool state of the running loop (current replicas, breaker, cluster sums), for the status page. */
export function poolControlStatus(pool: string): unknown {
  const text = ngx.shared[STATE_DICT]!.get(`ctl|loop|${pool}`)[0];
  return type(text) === "string" ? cjson.decode(text as string)[0] : undefined;
}
