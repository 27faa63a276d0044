// Active health checks: one checker per gateway, not per worker. Every worker runs a small timer,
// but only the holder of a lease in the state dict probes (the lease expires when its holder
// dies or a reload retires it, and another worker takes over within LEASE_TTL). Probes are
// `GET path` over src/net/http.ts, each in its own zero-delay timer so a slow peer does not hold
// up the others; balancer/health.ts decides (rise/fall, schedule with jitter), and a changed
// verdict is stored in the membership, which every worker follows within a refresh interval.
import * as health from "../balancer/health";
import { HealthCheckOptions, HealthState } from "../balancer/health";
import { request } from "../net/http";
import * as store from "./membership_store";
import { GatewayState, STATE_DICT, getState } from "./state";

const LEASE_KEY = "bal|hc|lease";
/** Seconds a checker holds the lease without renewing it. */
const LEASE_TTL = 3;
/** How often the checker looks for due probes. */
const TICK = 0.2;
const MAX_PROBE_BODY = 65536;

interface Target {
  pool: string;
  host: string;
  port: number;
  url: string;
  state: HealthState;
  probing: boolean;
  /** Still a member at the last tick. */
  seen: boolean;
}

/** This worker's probe targets (only used while it holds the lease), keyed "pool|host:port". */
let targets = new LuaTable<string, Target>();

/** True when this worker is (or just became) the gateway's checker. */
function holdLease(): boolean {
  const d = ngx.shared[STATE_DICT]!;
  const me = ngx.worker.pid();
  if (d.add(LEASE_KEY, me, LEASE_TTL)[0]) return true;
  if (d.get(LEASE_KEY)[0] !== me) return false;
  // Renewing is get-then-set: two checkers can overlap for one tick at worst, which is harmless.
  d.set(LEASE_KEY, me, LEASE_TTL);
  return true;
}

function probeUrl(host: string, port: number, path: string): string {
  const h = string.find(host, ":", 1, true)[0] !== undefined ? `[${host}]` : host;
  return `http://${h}:${port}${path}`;
}

function probe(this: void, premature: boolean, t: Target, options: HealthCheckOptions): void {
  if (premature) {
    t.probing = false;
    return;
  }
  const [res, err] = request({ method: "GET", url: t.url, timeoutMs: options.timeout * 1000, maxBodyBytes: MAX_PROBE_BODY });
  const status = res === undefined ? undefined : res.status;
  const now = ngx.now();
  if (health.onProbe(t.state, options, status, now)) {
    const serr = store.setHealth(t.pool, t.host, t.port, t.state.healthy, now);
    ngx.log(
      ngx.NOTICE,
      "autoscale: peer ",
      t.host,
      ":",
      t.port,
      " of pool ",
      t.pool,
      t.state.healthy ? " is healthy again" : " is unhealthy (",
      t.state.healthy ? "" : status === undefined ? err ?? "no answer" : `status ${status}`,
      t.state.healthy ? "" : ")",
      serr === undefined ? "" : `; cannot store the verdict: ${serr}`,
    );
  }
  t.probing = false;
}

function checkPool(s: GatewayState, name: string, options: HealthCheckOptions, now: number): void {
  const b = s.pools.get(name).balancer;
  if (b === undefined) return;
  for (const m of b.members) {
    const key = `${name}|${m.host}:${m.port}`;
    let t = targets.get(key);
    if (t === undefined) {
      // A new checker starts from the stored verdict.
      t = { pool: name, host: m.host, port: m.port, url: probeUrl(m.host, m.port, options.path), state: health.create(m.healthy, now), probing: false, seen: true };
      targets.set(key, t);
    }
    t.seen = true;
    if (!t.probing && health.due(t.state, now)) {
      t.probing = true;
      health.scheduleNext(t.state, options, now, math.random());
      const [ok, err] = ngx.timer.at(0, probe, t, options);
      if (!ok) {
        t.probing = false;
        ngx.log(ngx.ERR, "autoscale: cannot start a health probe of ", key, ": ", err);
      }
    }
  }
}

function tick(this: void, now: number): void {
  const s = getState();
  if (s === undefined) return;
  if (!holdLease()) {
    targets = new LuaTable();
    return;
  }
  for (const [, t] of targets) t.seen = false;
  for (const name of s.config.poolNames) {
    const options = s.pools.get(name).config.balancer.health_check;
    if (options !== undefined) checkPool(s, name, options, now);
  }
  // Removed peers are no longer probed.
  for (const [key, t] of targets) {
    if (!t.seen) targets.delete(key);
  }
}

function logFailure(this: void, err: unknown): string {
  return debug.traceback(tostring(err), 2);
}

function onTick(this: void, premature: boolean): void {
  if (premature) return;
  const [ok, err] = xpcall(tick, logFailure, ngx.now());
  if (!ok) ngx.log(ngx.ERR, "autoscale: health checker failed: ", tostring(err));
}

/** init_worker: every worker competes for the lease; nothing runs without a health_check pool. */
export function startHealthChecks(s: GatewayState): void {
  let any = false;
  for (const name of s.config.poolNames) {
    if (s.pools.get(name).config.balancer.health_check !== undefined) any = true;
  }
  if (!any) return;
  const [ok, err] = ngx.timer.every(TICK, onTick);
  if (!ok) ngx.log(ngx.ERR, "autoscale: cannot start the health checker: ", err);
}
