// content_by_lua of the admin server: status JSON, health. Bearer token when configured.
import * as cjson from "cjson.safe";
import { readWindow, WindowFigures } from "../metrics/counters";
import { GatewayState, METRICS_DICT, getState } from "./state";
import { lastDecision } from "./scaler";

const VERSION = "0.1.0";

function reply(status: number, body: unknown): void {
  ngx.status = status;
  ngx.header["Content-Type"] = "application/json";
  ngx.header["Cache-Control"] = "no-store";
  const [text] = cjson.encode(body);
  ngx.say(text ?? "{}");
}

/** Compares without an early exit, so the answer time does not reveal a matching prefix. */
function sameSecret(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (const i of $range(1, a.length)) {
    if (string.byte(a, i) !== string.byte(b, i)) diff++;
  }
  return diff === 0;
}

function authorized(s: GatewayState): boolean {
  const token = s.config.admin.token;
  if (token === undefined) return true;
  const header = ngx.var.http_authorization;
  if (header === undefined) return false;
  const given = string.match(header, "^[Bb]earer%s+(%S+)%s*$")[0];
  return given !== undefined && sameSecret(given, token);
}

function windows(s: GatewayState, series: string, now: number): LuaTable<string, WindowFigures> {
  const dict = ngx.shared[METRICS_DICT]!;
  const out = new LuaTable<string, WindowFigures>();
  for (const span of s.config.metrics.windows) out.set(`${span}s`, readWindow(dict, series, now, span));
  return out;
}

export function statusDocument(s: GatewayState, now: number): unknown {
  const routes = new LuaTable<string, unknown>();
  for (const r of s.routeList) {
    routes.set(r.name, { pool: r.config?.pool, windows: windows(s, r.series, now) });
  }
  const pools = new LuaTable<string, unknown>();
  for (const name of s.config.poolNames) {
    const pool = s.pools.get(name);
    const peers: unknown[] = [];
    for (const p of pool.peers) {
      peers.push({ address: p.address, configured_weight: p.configuredWeight, weight: p.balance.weight, windows: windows(s, p.series, now) });
    }
    const scaling = pool.config.scaling;
    pools.set(name, {
      balancer: pool.config.balancer.algorithm,
      peers,
      scaling: scaling === undefined ? undefined : {
        min_replicas: scaling.min_replicas,
        max_replicas: scaling.max_replicas,
        target: scaling.target,
        interval: scaling.interval,
        last_decision: lastDecision(name),
      },
    });
  }
  return { version: VERSION, time: now, worker: ngx.worker.id(), workers: ngx.worker.count(), config: s.configPath, routes, pools };
}

/** The admin server's handler: `location / { content_by_lua_block { require("resty.autoscale").admin() } }`. */
export function admin(): void {
  const s = getState();
  if (s === undefined) return reply(503, { error: "autoscale is not initialised (init_by_lua did not run)" });
  const uri = ngx.var.uri;
  if (uri === "/healthz") return reply(200, { ok: true });
  if (!authorized(s)) {
    ngx.header["WWW-Authenticate"] = 'Bearer realm="autoscale"';
    return reply(401, { error: "missing or wrong bearer token (admin.token)" });
  }
  const method = ngx.req.get_method();
  if (uri === "/autoscale/status") {
    if (method !== "GET" && method !== "HEAD") return reply(405, { error: `${method} not allowed on ${uri}: use GET` });
    return reply(200, statusDocument(s, ngx.now()));
  }
  return reply(404, { error: `no admin endpoint at ${uri}`, endpoints: ["/autoscale/status", "/healthz"] });
}
