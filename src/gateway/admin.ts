// content_by_lua of the admin server: status JSON, health. Bearer token when configured.
import * as cjson from "cjson.safe";
import { GatewayState, STATE_DICT, getState } from "./state";
import { liveContexts } from "./request_context";
import { dictStatus, peersStatus, prometheusText, routesStatus } from "./metrics";
import { poolStatus } from "./balancing";
import { controlStatus, kedaPool, kedaRoute, prometheusLines, scalingStatus, sourcesStatus } from "./scaler";
import { handlePools } from "./peers_admin";
import { admissionStatus } from "./admission_status";

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

export function statusDocument(s: GatewayState, now: number): unknown {
  const pools = new LuaTable<string, unknown>();
  for (const name of s.config.poolNames) {
    const pool = s.pools.get(name);
    const balancing = poolStatus(s, pool, now);
    pools.set(name, { balancer: balancing.algorithm, membership_version: balancing.membership_version, panic: balancing.panic, peers: balancing.peers, scaling: scalingStatus(pool) });
  }
  return { version: VERSION, time: now, worker: ngx.worker.id(), workers: ngx.worker.count(), config: s.configPath, control: controlStatus(), sources: sourcesStatus(), routes: routesStatus(s, now), peers: peersStatus(s, now), metrics: dictStatus(s), request_contexts: liveContexts(ngx.shared[STATE_DICT]!, ngx.worker.count()), pools, admission: admissionStatus() };
}

/** KEDA metrics-api: /autoscale/keda/pools/<pool> and /autoscale/keda/routes/<route>; undefined: not a KEDA path. */
function kedaDocument(s: GatewayState, uri: string): unknown {
  const [kind, name] = string.match(uri, "^/autoscale/keda/(%a+)/([^/]+)$");
  if (kind === undefined || name === undefined) return undefined;
  const now = ngx.now();
  if (kind === "pools") {
    const pool = s.pools.get(name);
    return pool === undefined ? false : kedaPool(s, pool, now);
  }
  if (kind === "routes") return kedaRoute(s, name, now) ?? false;
  return false;
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
  if (uri === "/autoscale/metrics/dict") return reply(200, dictStatus(s));
  if (uri === "/metrics") {
    if (method !== "GET" && method !== "HEAD") return reply(405, { error: `${method} not allowed on ${uri}: use GET` });
    ngx.status = 200;
    ngx.header["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8";
    ngx.header["Cache-Control"] = "no-store";
    ngx.print(prometheusText(s, ngx.now()));
    ngx.print(table.concat(prometheusLines(s.config.poolNames), "\n"), "\n");
    return;
  }
  if (string.sub(uri, 1, 17) === "/autoscale/pools/") {
    const [status, body] = handlePools(s, method, uri);
    return reply(status, body);
  }
  const keda = kedaDocument(s, uri);
  if (keda !== undefined) return reply(keda === false ? 404 : 200, keda === false ? { error: `no pool or route named in ${uri}` } : keda);
  return reply(404, { error: `no admin endpoint at ${uri}`, endpoints: ["/autoscale/status", "/autoscale/pools/NAME/peers", "/autoscale/keda/pools/<pool>", "/autoscale/keda/routes/<route>", "/metrics", "/healthz"] });
}
