// The published JSON Schema (build/autoscale.schema.json, bundled from the *.schema.json files
// beside each validator) against the validator the gateway runs (`autoscale validate`, the
// compiled Lua under LuaJIT): for a table of configs, good and bad, both must accept or both
// reject, and the Lua message must name the expected JSON path. The edges of every numeric
// range in the schema are generated from the schema itself. Rules JSON Schema cannot express
// are listed as "validator only": the schema accepts them, the validator refuses them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { pathToFileURL } from "node:url";
import { isDeepStrictEqual } from "node:util";
import Ajv2020 from "ajv/dist/2020";
import { runLuaMain } from "../../src/cli/lua.js";

const root = join(__dirname, "..", "..", "..", "..");
const bundled = JSON.parse(readFileSync(join(root, "build", "autoscale.schema.json"), "utf8"));
const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false });
const validate = ajv.compile(bundled);
const tmp = mkdtempSync(join(tmpdir(), "schema-"));

type Json = any;

/** The smallest valid config; every case starts from a fresh copy. */
function base(): Json {
  return {
    pools: { api: { peers: [{ host: "127.0.0.1", port: 8081 }] } },
    routes: [{ name: "api", match: { prefix: "/api" }, pool: "api" }],
  };
}

const webhook = () => ({ type: "webhook", url: "http://127.0.0.1:9000/scale" });
const scaling = (extra: Json = {}) => ({ max_replicas: 10, target: { value: 100 }, actuator: webhook(), ...extra });

function withPool(extra: Json): Json {
  const c = base();
  Object.assign(c.pools.api, extra);
  return c;
}
function withRoute(extra: Json): Json {
  const c = base();
  Object.assign(c.routes[0], extra);
  return c;
}
function withScaling(extra: Json): Json {
  return withPool({ scaling: scaling(extra) });
}
function withActuator(actuator: Json): Json {
  return withPool({ scaling: { ...scaling(), actuator } });
}

interface Case {
  name: string;
  config: Json;
  /** Both accept. */
  ok?: boolean;
  /** Both reject, and the Lua message names this path. */
  path?: string;
  /** Where the schema reports it, when that differs from the validator's path. */
  schemaAt?: string;
  /** The schema accepts, the validator refuses (a rule JSON Schema cannot express), naming this path. */
  validatorOnly?: string;
}

interface LuaVerdict {
  ok: boolean;
  paths: string[];
  out: string;
}

let fileNo = 0;
function writeConfig(config: Json): string {
  const file = join(tmp, `c${fileNo++}.json`);
  writeFileSync(file, JSON.stringify(config));
  return file;
}

function verdict(file: string, status: number, stderr: string, stdout: string): LuaVerdict {
  const prefix = `${file}: `;
  const paths = stderr
    .split("\n")
    .filter((l) => l.startsWith(prefix))
    .map((l) => l.slice(prefix.length).replace(/: .*$/, ""));
  return { ok: status === 0, paths, out: stdout + stderr };
}

/** `autoscale validate FILE`, as a user runs it (one LuaJIT process per file). */
function lua(config: Json): LuaVerdict {
  const file = writeConfig(config);
  const r = runLuaMain("resty.autoscale.tools.validate", [file]);
  return verdict(file, r.status, r.stderr, r.stdout);
}

/**
 * The same validate.main over many files in one LuaJIT process (hundreds of generated cases
 * would otherwise spend most of their time starting LuaJIT).
 */
function luaMany(configs: Json[]): LuaVerdict[] {
  const files = configs.map(writeConfig);
  const driver = [
    `package.path = ${JSON.stringify(join(root, "build", "lua", "?.lua") + ";")} .. package.path`,
    `local validate = require("resty.autoscale.tools.validate")`,
    `for _, f in ipairs(arg) do`,
    `  local rc = validate.main({ f })`,
    `  io.stderr:write("@@end " .. rc .. "\\n")`,
    `end`,
  ].join("\n");
  const driverFile = join(tmp, "validate_many.lua");
  writeFileSync(driverFile, driver);
  const r = spawnSync("luajit", [driverFile, ...files], { encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
  assert.equal(r.status, 0, r.stderr);
  const chunks = r.stderr.split(/^@@end (\d+)\n/m);
  const out: LuaVerdict[] = [];
  for (let i = 0; i < files.length; i++) out.push(verdict(files[i], Number(chunks[2 * i + 1]), chunks[2 * i], ""));
  return out;
}

/** "/pools/api/peers/0/port" -> "pools.api.peers[0].port" */
function dotted(pointer: string): string {
  let out = "";
  for (const raw of pointer.split("/").slice(1)) {
    const part = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    out += /^\d+$/.test(part) ? `[${part}]` : out === "" ? part : `.${part}`;
  }
  return out;
}

function check(c: Case, l: LuaVerdict): void {
  const schemaOk = validate(c.config) as boolean;
  const schemaErrors = (validate.errors ?? []).map((e) => `${dotted(e.instancePath)} ${e.message}`);
  if (c.ok) {
    assert.ok(schemaOk, `${c.name}: the schema rejects a config the validator should accept: ${schemaErrors.join("; ")}`);
    assert.ok(l.ok, `${c.name}: the validator rejects: ${l.out}`);
    return;
  }
  const path = c.path ?? c.validatorOnly!;
  assert.equal(l.ok, false, `${c.name}: the validator accepts: ${l.out}`);
  assert.ok(l.paths.includes(path), `${c.name}: the validator's messages do not name ${path}: ${l.out}`);
  if (c.validatorOnly !== undefined) {
    assert.ok(schemaOk, `${c.name}: listed as validator only, but the schema rejects it too: ${schemaErrors.join("; ")}`);
    return;
  }
  assert.equal(schemaOk, false, `${c.name}: the schema accepts a config the validator rejects (${l.out.trim()})`);
  // The schema points at the same place: the field itself or an object that holds it.
  const near = (validate.errors ?? []).some((e) => {
    const at = dotted(e.instancePath);
    if (c.schemaAt !== undefined) return at === c.schemaAt;
    const parent = path.replace(/(\.[^.[]+|\[\d+\])$/, "");
    const within = (outer: string, inner: string) => outer === inner || (outer !== "" && (inner.startsWith(`${outer}.`) || inner.startsWith(`${outer}[`)));
    return within(at, path) || (at === "" && !/[.[]/.test(path)) || (parent !== path && within(parent, at));
  });
  assert.ok(near, `${c.name}: the schema's errors are elsewhere than ${path}: ${schemaErrors.join("; ")}`);
}

// ---------------------------------------------------------------- hand-written cases
const cases: Case[] = [
  // top level, admin, metrics
  { name: "smallest config", config: base(), ok: true },
  { name: "no routes at all", config: { ...base(), routes: [] }, ok: true },
  { name: "pools missing", config: { routes: [] }, path: "pools" },
  { name: "routes missing", config: { pools: base().pools }, path: "routes" },
  { name: "unknown top-level key", config: { ...base(), listn: 80 }, path: "listn" },
  { name: "state_dir absolute", config: { ...base(), state_dir: "/var/lib/autoscale" }, ok: true },
  { name: "state_dir relative", config: { ...base(), state_dir: "state" }, path: "state_dir" },
  { name: "state_dir not a string", config: { ...base(), state_dir: 1 }, path: "state_dir" },
  { name: "listen as a string", config: { ...base(), listen: "8080" }, path: "listen" },
  { name: "admin.listen host:port", config: { ...base(), admin: { listen: "0.0.0.0:9180" } }, ok: true },
  { name: "admin.listen IPv6", config: { ...base(), admin: { listen: "[::1]:9180" } }, ok: true },
  { name: "admin.listen bare port as a number", config: { ...base(), admin: { listen: 9180 } }, ok: true },
  { name: "admin.listen bare port as a string", config: { ...base(), admin: { listen: "65535" } }, ok: true },
  { name: "admin.listen port 0", config: { ...base(), admin: { listen: "127.0.0.1:0" } }, path: "admin.listen" },
  { name: "admin.listen port 65536", config: { ...base(), admin: { listen: "127.0.0.1:65536" } }, path: "admin.listen" },
  { name: "admin.listen without a port", config: { ...base(), admin: { listen: "localhost" } }, path: "admin.listen" },
  { name: "admin.listen fractional number", config: { ...base(), admin: { listen: 9180.5 } }, path: "admin.listen" },
  { name: "admin.token of 16 characters", config: { ...base(), admin: { token: "0123456789abcdef" } }, ok: true },
  { name: "admin.token of 15 characters", config: { ...base(), admin: { token: "0123456789abcde" } }, path: "admin.token" },
  { name: "unknown admin key", config: { ...base(), admin: { port: 1 } }, path: "admin.port" },
  { name: "metrics.windows of four", config: { ...base(), metrics: { windows: [1, 10, 60, 3600] } }, ok: true },
  { name: "metrics.windows of five", config: { ...base(), metrics: { windows: [1, 2, 3, 4, 5] } }, path: "metrics.windows" },
  { name: "metrics.windows empty", config: { ...base(), metrics: { windows: [] } }, path: "metrics.windows" },
  { name: "metrics.windows not an array", config: { ...base(), metrics: { windows: 10 } }, path: "metrics.windows" },
  { name: "metrics.statsd with defaults", config: { ...base(), metrics: { statsd: {} } }, ok: true },
  { name: "metrics.statsd full", config: { ...base(), metrics: { statsd: { host: "127.0.0.1", port: 9125, prefix: "gw.eu", interval: 5 }, max_series: 50, inflight_max_age: 60, bytes: false } }, ok: true },
  { name: "metrics.statsd unknown field", config: { ...base(), metrics: { statsd: { hots: "127.0.0.1" } } }, path: "metrics.statsd.hots" },
  { name: "metrics.statsd bad prefix", config: { ...base(), metrics: { statsd: { prefix: "a b" } } }, path: "metrics.statsd.prefix" },
  { name: "metrics.bytes not a boolean", config: { ...base(), metrics: { bytes: "yes" } }, path: "metrics.bytes" },
  { name: "$schema is allowed for editors", config: { $schema: "./build/autoscale.schema.json", ...base() }, ok: true },
  // pools and peers
  { name: "pools empty", config: { ...base(), pools: {}, routes: [] }, path: "pools" },
  { name: "pool name with a space", config: { pools: { "my api": base().pools.api }, routes: [] }, path: "pools.my api (name)" },
  { name: "pool name of 64 characters", config: { pools: { ["p".repeat(64)]: base().pools.api }, routes: [] }, ok: true },
  { name: "pool name of 65 characters", config: { pools: { ["p".repeat(65)]: base().pools.api }, routes: [] }, path: `pools.${"p".repeat(65)} (name)` },
  { name: "unknown pool key", config: withPool({ peer: [] }), path: "pools.api.peer" },
  { name: "peers missing", config: { pools: { api: {} }, routes: [] }, path: "pools.api.peers" },
  { name: "peers empty", config: withPool({ peers: [] }), path: "pools.api.peers" },
  { name: "IPv6 peer", config: withPool({ peers: [{ host: "::1", port: 80 }] }), ok: true },
  { name: "peer host name", config: withPool({ peers: [{ host: "backend.local", port: 80 }] }), path: "pools.api.peers[0].host" },
  { name: "peer IPv4 octet 256", config: withPool({ peers: [{ host: "10.0.0.256", port: 80 }] }), path: "pools.api.peers[0].host" },
  { name: "peer IPv4 octet 255", config: withPool({ peers: [{ host: "255.255.255.255", port: 80 }] }), ok: true },
  { name: "peer port as a string", config: withPool({ peers: [{ host: "127.0.0.1", port: "80a" }] }), path: "pools.api.peers[0].port" },
  { name: "peer port missing", config: withPool({ peers: [{ host: "127.0.0.1" }] }), path: "pools.api.peers[0].port" },
  { name: "unknown peer key", config: withPool({ peers: [{ host: "127.0.0.1", port: 80, wieght: 2 }] }), path: "pools.api.peers[0].wieght" },
  // balancer
  { name: "balancer by name", config: withPool({ balancer: "least_request" }), ok: true },
  { name: "balancer unknown name", config: withPool({ balancer: "random" }), path: "pools.api.balancer" },
  { name: "balancer as a number", config: withPool({ balancer: 1 }), path: "pools.api.balancer" },
  { name: "balancer object with every section", config: withPool({ balancer: { algorithm: "round_robin", slow_start: {}, outlier: { enabled: false }, health_check: { path: "/healthz" } } }), ok: true },
  { name: "balancer unknown algorithm", config: withPool({ balancer: { algorithm: "p2c" } }), path: "pools.api.balancer.algorithm" },
  { name: "balancer unknown key", config: withPool({ balancer: { taus: 1 } }), path: "pools.api.balancer.taus" },
  { name: "balancer failure_statuses empty", config: withPool({ balancer: { failure_statuses: [] } }), path: "pools.api.balancer.failure_statuses" },
  { name: "health_check path with a space", config: withPool({ balancer: { health_check: { path: "/a b" } } }), path: "pools.api.balancer.health_check.path" },
  { name: "health_check path without /", config: withPool({ balancer: { health_check: { path: "healthz" } } }), path: "pools.api.balancer.health_check.path" },
  { name: "outlier latency rule tuned", config: withPool({ balancer: { outlier: { latency_factor: 2.5, latency_minimum_hosts: 4, latency_request_volume: 50 } } }), ok: true },
  { name: "outlier latency rule off", config: withPool({ balancer: { outlier: { latency_factor: 0 } } }), ok: true },
  { name: "outlier latency factor of 1", config: withPool({ balancer: { outlier: { latency_factor: 1 } } }), path: "pools.api.balancer.outlier.latency_factor" },
  { name: "outlier enabled as a string", config: withPool({ balancer: { outlier: { enabled: "no" } } }), path: "pools.api.balancer.outlier.enabled" },
  // admission: pool concurrency and breakers
  { name: "concurrency every algorithm default", config: withPool({ concurrency: {} }), ok: true },
  { name: "concurrency aimd", config: withPool({ concurrency: { algorithm: "aimd", backoff_ratio: 0.5, queue: { size: 10 } } }), ok: true },
  { name: "concurrency vegas", config: withPool({ concurrency: { algorithm: "vegas", probe_multiplier: 10, shedding: { best_effort: 0.2, normal: 0.8 } } }), ok: true },
  { name: "concurrency unknown algorithm", config: withPool({ concurrency: { algorithm: "bbr" } }), path: "pools.api.concurrency.algorithm" },
  { name: "concurrency gradient option with aimd", config: withPool({ concurrency: { algorithm: "aimd", buffer: 0.5 } }), path: "pools.api.concurrency.buffer" },
  { name: "concurrency aimd option with the default gradient", config: withPool({ concurrency: { backoff_ratio: 0.5 } }), path: "pools.api.concurrency.backoff_ratio" },
  { name: "concurrency unknown queue key", config: withPool({ concurrency: { queue: { length: 1 } } }), path: "pools.api.concurrency.queue.length" },
  { name: "pool breaker", config: withPool({ breaker: { error_ratio: 0.2 } }), ok: true },
  { name: "pool breaker unknown key", config: withPool({ breaker: { ratio: 0.2 } }), path: "pools.api.breaker.ratio" },
  // routes
  { name: "route exact match", config: withRoute({ match: { exact: "/health" } }), ok: true },
  { name: "route both prefix and exact", config: withRoute({ match: { prefix: "/a", exact: "/b" } }), path: "routes[0].match" },
  { name: "route neither prefix nor exact", config: withRoute({ match: {} }), path: "routes[0].match" },
  { name: "route prefix without /", config: withRoute({ match: { prefix: "api" } }), path: "routes[0].match.prefix" },
  { name: "route name unmatched", config: withRoute({ name: "unmatched" }), path: "routes[0].name" },
  { name: "route name with a slash", config: withRoute({ name: "a/b" }), path: "routes[0].name" },
  { name: "route pool missing", config: withRoute({ pool: undefined }), path: "routes[0].pool" },
  { name: "route unknown key", config: withRoute({ upstream: "api" }), path: "routes[0].upstream" },
  { name: "route breaker", config: withRoute({ breaker: { consecutive_failures: 0 } }), ok: true },
  // route limits
  { name: "limits with every rule kind", config: { redis: {}, ...withRoute({ limits: { priority: "critical", rate: [{ algorithm: "token_bucket", rate: 5 }, { algorithm: "sliding_window", limit: 100, key: { from: "header", name: "X-Key" }, scope: "cluster", dry_run: true }], adaptive: { min_rate: 1, max_rate: 5 } } }) }, ok: true },
  { name: "metrics off for an admission-only gateway", config: { ...withRoute({ limits: { rate: [{ algorithm: "token_bucket", rate: 5 }] } }), metrics: { enabled: false } }, ok: true },
  { name: "metrics enabled as a string", config: { ...base(), metrics: { enabled: "no" } }, path: "metrics.enabled" },
  { name: "metrics off with a scaling policy", config: { ...withActuator(webhook()), metrics: { enabled: false } }, validatorOnly: "pools.api.scaling" },
  { name: "metrics off with an adaptive rate", config: { ...withRoute({ limits: { rate: [{ algorithm: "token_bucket", rate: 5 }], adaptive: { min_rate: 1, max_rate: 5 } } }), metrics: { enabled: false } }, validatorOnly: "routes[0].limits.adaptive" },
  { name: "metrics off with statsd", config: { ...base(), metrics: { enabled: false, statsd: {} } }, validatorOnly: "metrics.statsd" },
  { name: "limits with RateLimit headers on every answer", config: withRoute({ limits: { headers: "all", rate: [{ algorithm: "token_bucket", rate: 5 }] } }), ok: true },
  { name: "limits unknown headers choice", config: withRoute({ limits: { headers: "always", rate: [{ algorithm: "token_bucket", rate: 5 }] } }), path: "routes[0].limits.headers" },
  { name: "limits unknown priority", config: withRoute({ limits: { priority: "high" } }), path: "routes[0].limits.priority" },
  { name: "rate rule without algorithm", config: withRoute({ limits: { rate: [{ rate: 5 }] } }), path: "routes[0].limits.rate[0].algorithm" },
  { name: "token bucket without rate", config: withRoute({ limits: { rate: [{ algorithm: "token_bucket" }] } }), path: "routes[0].limits.rate[0].rate" },
  { name: "token bucket with a window", config: withRoute({ limits: { rate: [{ algorithm: "token_bucket", rate: 5, window: 1 }] } }), path: "routes[0].limits.rate[0].window" },
  { name: "sliding window without limit", config: withRoute({ limits: { rate: [{ algorithm: "sliding_window" }] } }), path: "routes[0].limits.rate[0].limit" },
  { name: "sliding window with a burst", config: withRoute({ limits: { rate: [{ algorithm: "sliding_window", limit: 5, burst: 1 }] } }), path: "routes[0].limits.rate[0].burst" },
  { name: "eight rate rules", config: withRoute({ limits: { rate: Array.from({ length: 8 }, () => ({ algorithm: "token_bucket", rate: 5 })) } }), ok: true },
  { name: "nine rate rules", config: withRoute({ limits: { rate: Array.from({ length: 9 }, () => ({ algorithm: "token_bucket", rate: 5 })) } }), path: "routes[0].limits.rate" },
  { name: "header key without a name", config: withRoute({ limits: { rate: [{ algorithm: "token_bucket", rate: 5, key: { from: "header" } }] } }), path: "routes[0].limits.rate[0].key.name" },
  { name: "route key with a name", config: withRoute({ limits: { rate: [{ algorithm: "token_bucket", rate: 5, key: { from: "client_address", name: "x" } }] } }), path: "routes[0].limits.rate[0].key.name" },
  { name: "key name with a space", config: withRoute({ limits: { rate: [{ algorithm: "token_bucket", rate: 5, key: { from: "arg", name: "a b" } }] } }), path: "routes[0].limits.rate[0].key.name" },
  { name: "unknown scope", config: withRoute({ limits: { rate: [{ algorithm: "token_bucket", rate: 5, scope: "global" }] } }), path: "routes[0].limits.rate[0].scope" },
  { name: "adaptive without a route-keyed token bucket", config: withRoute({ limits: { rate: [{ algorithm: "token_bucket", rate: 5, key: { from: "client_address" } }], adaptive: { min_rate: 1, max_rate: 5 } } }), path: "routes[0].limits.adaptive" },
  { name: "adaptive without max_rate", config: withRoute({ limits: { rate: [{ algorithm: "token_bucket", rate: 5 }], adaptive: { min_rate: 1 } } }), path: "routes[0].limits.adaptive.max_rate" },
  // scaling policy
  { name: "scaling with every section", config: withScaling({ min_replicas: 0, metrics: [{ metric: "p99_latency_ms", value: 300 }, { metric: "external", name: "queue:depth", value: 10 }], behavior: { scale_up: { select_policy: "min", policies: [{ type: "pods", value: 1, period: 60 }] }, scale_down: { select_policy: "disabled" } }, step: { metric: "in_flight", threshold: 10, adjustment_type: "exact_capacity", steps: [{ lower: 0, upper: 10, adjustment: 2 }, { lower: 10, adjustment: 4 }] }, composite: { terms: [{ metric: "error_ratio", value: 0.01, weight: 2 }] }, route_costs: { api: 2 }, predictive: { season: 60 }, scale_to_zero: { idle: 600 } }), ok: true },
  { name: "scaling without actuator", config: withPool({ scaling: { max_replicas: 2, target: { value: 1 } } }), path: "pools.api.scaling.actuator" },
  { name: "scaling without max_replicas", config: withPool({ scaling: { target: { value: 1 }, actuator: webhook() } }), path: "pools.api.scaling.max_replicas" },
  { name: "scaling with nothing to scale on", config: withPool({ scaling: { max_replicas: 2, actuator: webhook() } }), path: "pools.api.scaling.target" },
  { name: "scaling with an empty metrics list only", config: withPool({ scaling: { max_replicas: 2, metrics: [], actuator: webhook() } }), path: "pools.api.scaling.target" },
  { name: "scaling on a step only", config: withPool({ scaling: { max_replicas: 2, step: { metric: "in_flight", threshold: 1, steps: [{ lower: 0, adjustment: 1 }] }, actuator: webhook() } }), ok: true },
  { name: "target value 0", config: withScaling({ target: { value: 0 } }), path: "pools.api.scaling.target.value" },
  { name: "target unknown metric", config: withScaling({ target: { metric: "cpu", value: 1 } }), path: "pools.api.scaling.target.metric" },
  { name: "external target without a name", config: withScaling({ target: { metric: "external", value: 1 } }), path: "pools.api.scaling.target.name" },
  { name: "name on a non-external target", config: withScaling({ target: { value: 1, name: "x" } }), path: "pools.api.scaling.target.name" },
  { name: "unknown scaling key", config: withScaling({ cooldown: 10 }), path: "pools.api.scaling.cooldown" },
  { name: "behavior policies empty", config: withScaling({ behavior: { scale_up: { policies: [] } } }), path: "pools.api.scaling.behavior.scale_up.policies" },
  { name: "behavior policy without period", config: withScaling({ behavior: { scale_down: { policies: [{ type: "pods", value: 1 }] } } }), path: "pools.api.scaling.behavior.scale_down.policies[0].period" },
  { name: "step without bounds", config: withScaling({ step: { metric: "in_flight", threshold: 1, steps: [{ adjustment: 1 }] } }), path: "pools.api.scaling.step.steps[0]" },
  { name: "step without threshold", config: withScaling({ step: { metric: "in_flight", steps: [{ lower: 0, adjustment: 1 }] } }), path: "pools.api.scaling.step.threshold" },
  { name: "composite without terms", config: withScaling({ composite: { target: 1 } }), path: "pools.api.scaling.composite.terms" },
  { name: "route cost negative", config: withScaling({ route_costs: { api: -1 } }), path: "pools.api.scaling.route_costs.api" },
  { name: "scale_to_zero unknown key", config: withScaling({ scale_to_zero: { after: 1 } }), path: "pools.api.scaling.scale_to_zero.after" },
  // actuators
  { name: "kubernetes in cluster", config: withActuator({ type: "kubernetes", kind: "statefulset", namespace: "shop", name: "api-v2" }), ok: true },
  { name: "kubernetes outside the cluster", config: withActuator({ type: "kubernetes", name: "api", api_url: "https://k8s:6443", token: { env: "K8S_TOKEN" }, ca_file: "/etc/ca.crt" }), ok: true },
  { name: "kubernetes api_url without token", config: withActuator({ type: "kubernetes", name: "api", api_url: "https://k8s:6443" }), path: "pools.api.scaling.actuator.token" },
  { name: "kubernetes name with capitals", config: withActuator({ type: "kubernetes", name: "Api" }), path: "pools.api.scaling.actuator.name" },
  { name: "kubernetes name ending in -", config: withActuator({ type: "kubernetes", name: "api-" }), path: "pools.api.scaling.actuator.name" },
  { name: "kubernetes with a webhook field", config: withActuator({ type: "kubernetes", name: "api", url: "http://x/" }), path: "pools.api.scaling.actuator.url" },
  { name: "aws with keys", config: withActuator({ type: "aws_asg", group: "web-asg", region: "eu-west-3", credentials: { access_key_id: { env: "K" }, secret_access_key: { file: "/run/s" } } }), ok: true },
  { name: "aws with a credentials file", config: withActuator({ type: "aws_asg", group: "web-asg", region: "us-east-1", credentials: { file: "/etc/aws", profile: "scaler" } }), ok: true },
  { name: "aws with keys and a file", config: withActuator({ type: "aws_asg", group: "g", region: "us-east-1", credentials: { file: "/etc/aws", access_key_id: { env: "K" }, secret_access_key: { env: "S" } } }), path: "pools.api.scaling.actuator.credentials" },
  { name: "aws with one key only", config: withActuator({ type: "aws_asg", group: "g", region: "us-east-1", credentials: { access_key_id: { env: "K" } } }), path: "pools.api.scaling.actuator.credentials" },
  { name: "aws bad region", config: withActuator({ type: "aws_asg", group: "g", region: "Europe" }), path: "pools.api.scaling.actuator.region" },
  { name: "aws group of 256 characters", config: withActuator({ type: "aws_asg", group: "g".repeat(256), region: "us-east-1" }), path: "pools.api.scaling.actuator.group" },
  { name: "azure", config: withActuator({ type: "azure_vmss", subscription_id: "00000000-1111-2222-3333-444444444444", resource_group: "rg-web(1)", name: "web", token: { file: "/run/t" } }), ok: true },
  { name: "azure without token", config: withActuator({ type: "azure_vmss", subscription_id: "0-1-2-3-4", resource_group: "rg", name: "web" }), path: "pools.api.scaling.actuator.token" },
  { name: "azure bad api_version", config: withActuator({ type: "azure_vmss", subscription_id: "0-1-2-3-4", resource_group: "rg", name: "web", token: { env: "T" }, api_version: "latest" }), path: "pools.api.scaling.actuator.api_version" },
  { name: "gcp zonal", config: withActuator({ type: "gcp_mig", project: "my-project", zone: "us-central1-a", name: "web-mig", token: { env: "T" } }), ok: true },
  { name: "gcp with zone and region", config: withActuator({ type: "gcp_mig", project: "p", zone: "us-central1-a", region: "us-central1", name: "web", token: { env: "T" } }), path: "pools.api.scaling.actuator" },
  { name: "gcp name of 64 characters", config: withActuator({ type: "gcp_mig", project: "p", region: "us-central1", name: "w".repeat(64), token: { env: "T" } }), path: "pools.api.scaling.actuator.name" },
  { name: "webhook with a secret", config: withActuator({ ...webhook(), secret: { env: "HOOK_SECRET" } }), ok: true },
  { name: "webhook secret inline", config: withActuator({ ...webhook(), secret: "hunter2" }), path: "pools.api.scaling.actuator.secret" },
  { name: "secret with env and file", config: withActuator({ ...webhook(), secret: { env: "A", file: "/b" } }), path: "pools.api.scaling.actuator.secret" },
  { name: "secret env name with a dash", config: withActuator({ ...webhook(), secret: { env: "HOOK-SECRET" } }), path: "pools.api.scaling.actuator.secret.env" },
  { name: "webhook URL with user info", config: withActuator({ type: "webhook", url: "https://user:pw@hooks.example.com/x" }), path: "pools.api.scaling.actuator.url" },
  { name: "webhook URL ftp", config: withActuator({ type: "webhook", url: "ftp://hooks.example.com/x" }), path: "pools.api.scaling.actuator.url" },
  { name: "actuator unknown type", config: withActuator({ type: "nomad" }), path: "pools.api.scaling.actuator.type" },
  { name: "actuator unknown retry key", config: withActuator({ ...webhook(), retry: { tries: 2 } }), path: "pools.api.scaling.actuator.retry.tries" },

  // redis
  { name: "redis with every field", config: { ...base(), redis: { host: "redis.internal", port: 6380, password: { env: "REDIS_PASSWORD" }, db: 2, timeout_ms: 100, instances: 3 } }, ok: true },
  { name: "redis IPv6 host", config: { ...base(), redis: { host: "[::1]" } }, ok: true },
  { name: "redis host with a slash", config: { ...base(), redis: { host: "redis/1" } }, path: "redis.host" },
  { name: "redis password inline", config: { ...base(), redis: { password: "secret" } }, path: "redis.password" },
  { name: "redis unknown key", config: { ...base(), redis: { hostname: "x" } }, path: "redis.hostname" },
  { name: "cluster scope without redis", config: withRoute({ limits: { rate: [{ algorithm: "token_bucket", rate: 5, scope: "cluster" }] } }), path: "routes[0].limits.rate[0].scope", schemaAt: "" },
  { name: "cluster scope with redis", config: { ...withRoute({ limits: { rate: [{ algorithm: "token_bucket", rate: 5, scope: "cluster" }] } }), redis: {} }, ok: true },

  // ------------------------------------------------------------ validator only
  // Rules that JSON Schema cannot express (relations between values, or with other sections).
  { name: "route to an unknown pool", config: withRoute({ pool: "web" }), validatorOnly: "routes[0].pool" },
  { name: "duplicate route names", config: { ...base(), routes: [base().routes[0], base().routes[0]] }, validatorOnly: "routes[1].name" },
  { name: "duplicate peers", config: withPool({ peers: [{ host: "127.0.0.1", port: 8081 }, { host: "127.0.0.1", port: 8081 }] }), validatorOnly: "pools.api.peers[1]" },
  { name: "scaling window not a metrics window", config: withScaling({ window: 30 }), validatorOnly: "pools.api.scaling.window" },
  { name: "min_replicas above max_replicas", config: withScaling({ min_replicas: 11 }), validatorOnly: "pools.api.scaling.min_replicas" },
  { name: "health_check timeout above interval", config: withPool({ balancer: { health_check: { interval: 1, timeout: 2 } } }), validatorOnly: "pools.api.balancer.health_check.timeout" },
  { name: "health_check interval below the default timeout", config: withPool({ balancer: { health_check: { interval: 0.5 } } }), validatorOnly: "pools.api.balancer.health_check.timeout" },
  { name: "concurrency initial_limit above max_limit", config: withPool({ concurrency: { max_limit: 10 } }), validatorOnly: "pools.api.concurrency" },
  { name: "shedding best_effort above normal", config: withPool({ concurrency: { shedding: { best_effort: 0.95 } } }), validatorOnly: "pools.api.concurrency.shedding.best_effort" },
  { name: "adaptive min_rate above max_rate", config: withRoute({ limits: { rate: [{ algorithm: "token_bucket", rate: 5 }], adaptive: { min_rate: 10, max_rate: 5 } } }), validatorOnly: "routes[0].limits.adaptive.min_rate" },
  { name: "step lower not below upper", config: withScaling({ step: { metric: "in_flight", threshold: 1, steps: [{ lower: 5, upper: 5, adjustment: 1 }] } }), validatorOnly: "pools.api.scaling.step.steps[0].upper" },
  { name: "step ranges overlap", config: withScaling({ step: { metric: "in_flight", threshold: 1, steps: [{ lower: 0, upper: 10, adjustment: 1 }, { lower: 5, adjustment: 2 }] } }), validatorOnly: "pools.api.scaling.step.steps[1]" },
  { name: "trend without a target to borrow", config: withScaling({ target: { metric: "in_flight", value: 10 }, trend: {} }), validatorOnly: "pools.api.scaling.trend.target" },
  { name: "predictive without a target to borrow", config: withScaling({ target: { metric: "in_flight", value: 10 }, predictive: {} }), validatorOnly: "pools.api.scaling.predictive.target" },
  { name: "forecast source not in sources", config: withScaling({ predictive: { forecast_source: "forecaster" } }), validatorOnly: "pools.api.scaling.predictive.forecast_source" },
  { name: "forecast source in sources", config: { ...withScaling({ predictive: { forecast_source: "forecaster" } }), sources: { forecaster: { type: "json_url", url: "http://127.0.0.1:9/f", path: "rps" } } }, ok: true },
  { name: "actuator retry base_ms above max_ms", config: withActuator({ ...webhook(), retry: { base_ms: 6000 } }), validatorOnly: "pools.api.scaling.actuator.retry.base_ms" },
  { name: "actuator breaker open_seconds above max_open_seconds", config: withActuator({ ...webhook(), breaker: { open_seconds: 700 } }), validatorOnly: "pools.api.scaling.actuator.breaker.open_seconds" },
];

// ---------------------------------------------------------------- generated range edges
// For every numeric field of every section: the minimum and maximum are accepted, a value just
// outside is rejected, and an integer field rejects a fraction. `fix` adjusts sibling fields
// that a validator-only rule ties to the value under test (e.g. health_check.timeout <= interval).
interface Context {
  label: string;
  /** JSON pointer into the bundled schema. */
  schema: string;
  /** Config path of the section (for the expected message). */
  path: string;
  /** A valid section to put the value in. */
  base: () => Json;
  /** The config that holds the section. */
  place: (section: Json, field: string, value: number) => Json;
  /** Fields to leave to another context (another algorithm's options, for example). */
  skip?: string[];
  fix?: (section: Json, field: string, value: number) => void;
}

function pointer(p: string): Json {
  let node: Json = bundled;
  for (const part of p.replace(/^#\/?/, "").split("/").filter(Boolean)) node = node[part];
  assert.ok(node, `no schema at ${p}`);
  return node;
}
function deref(node: Json): Json {
  return node && node.$ref ? { ...deref(pointer(node.$ref)), ...node, $ref: undefined } : node;
}
function setPath(obj: Json, field: string, value: Json): void {
  const parts = field.split(".");
  let o = obj;
  for (const p of parts.slice(0, -1)) o = o[p] ??= {};
  o[parts[parts.length - 1]] = value;
}

const contexts: Context[] = [
  { label: "top level", schema: "#", path: "", base: base, place: (s) => s, skip: ["pools", "routes", "cluster"] },
  {
    label: "cluster",
    schema: "#/$defs/cluster",
    path: "cluster",
    base: () => ({}),
    place: (s) => ({ ...base(), redis: {}, cluster: s }),
    // Validator-only rules: lease_ms >= 2 x interval (in ms), stale_after >= 2 x interval.
    fix: (s, f) => {
      if (f === "lease_ms" || f === "stale_after") s.interval = 0.2;
      if (f === "interval") Object.assign(s, { lease_ms: 600000, stale_after: 3600 });
    },
  },
  { label: "peer", schema: "#/$defs/peer", path: "pools.api.peers[0]", base: () => ({ host: "127.0.0.1", port: 8081 }), place: (s) => withPool({ peers: [s] }) },
  {
    label: "balancer",
    schema: "#/$defs/balancer/anyOf/1",
    path: "pools.api.balancer",
    base: () => ({}),
    place: (s) => withPool({ balancer: s }),
    fix: (s, f) => {
      if (f === "health_check.timeout") s.health_check.interval = 3600;
      if (f === "health_check.interval" || f === "health_check.unhealthy_interval") s.health_check.timeout = 0.001;
    },
  },
  ...(["gradient", "aimd", "vegas"] as const).map(
    (algorithm): Context => ({
      label: `concurrency ${algorithm}`,
      schema: "#/$defs/concurrency",
      path: "pools.api.concurrency",
      base: () => ({ algorithm }),
      place: (s) => withPool({ concurrency: s }),
      skip: algorithm === "gradient" ? ["backoff_ratio", "timeout_ms", "probe_multiplier"] : algorithm === "aimd" ? ["buffer", "sample_interval_ms", "min_rtt_interval", "min_rtt_samples", "probe_multiplier"] : ["buffer", "sample_interval_ms", "min_rtt_interval", "min_rtt_samples", "backoff_ratio", "timeout_ms"],
      fix: (s, f, v) => {
        if (f === "min_limit") Object.assign(s, { initial_limit: Math.max(1, Math.ceil(v)), max_limit: 1000000 });
        if (f === "max_limit") Object.assign(s, { initial_limit: 1, min_limit: 1 });
        if (f === "initial_limit") Object.assign(s, { min_limit: 1, max_limit: 1000000 });
        if (f === "shedding.best_effort") s.shedding.normal = 1;
        if (f === "shedding.normal") s.shedding.best_effort = 0;
      },
    }),
  ),
  { label: "pool breaker", schema: "#/$defs/breaker", path: "pools.api.breaker", base: () => ({}), place: (s) => withPool({ breaker: s }) },
  { label: "route breaker", schema: "#/$defs/breaker", path: "routes[0].breaker", base: () => ({}), place: (s) => withRoute({ breaker: s }) },
  {
    label: "limits adaptive",
    schema: "#/$defs/limits",
    path: "routes[0].limits",
    base: () => ({ rate: [{ algorithm: "token_bucket", rate: 5 }], adaptive: { min_rate: 1, max_rate: 5 } }),
    place: (s) => withRoute({ limits: s }),
    fix: (s, f, v) => {
      if (f === "adaptive.min_rate") s.adaptive.max_rate = 10000000;
      if (f === "adaptive.max_rate") s.adaptive.min_rate = Math.min(v, 0.000001);
    },
  },
  {
    label: "token bucket",
    schema: "#/$defs/limits/$defs/rule",
    path: "routes[0].limits.rate[0]",
    base: () => ({ algorithm: "token_bucket", rate: 5 }),
    place: (s) => withRoute({ limits: { rate: [s] } }),
    skip: ["limit", "window"],
  },
  {
    label: "sliding window",
    schema: "#/$defs/limits/$defs/rule",
    path: "routes[0].limits.rate[0]",
    base: () => ({ algorithm: "sliding_window", limit: 5 }),
    place: (s) => withRoute({ limits: { rate: [s] } }),
    skip: ["rate", "burst"],
  },
  {
    label: "scaling",
    schema: "#/$defs/policy",
    path: "pools.api.scaling",
    base: () => scaling({ step: { metric: "in_flight", threshold: 1, steps: [{ lower: 0, adjustment: 1 }] }, composite: { terms: [{ metric: "in_flight", value: 1 }] }, route_costs: { api: 1 }, behavior: { scale_up: { policies: [{ type: "pods", value: 1, period: 15 }] } } }),
    place: (s, f, v) => {
      const c = withPool({ scaling: s });
      if (f === "window") c.metrics = { windows: [v] };
      return c;
    },
    fix: (s, f) => {
      if (f === "min_replicas") s.max_replicas = 100000;
    },
  },
  {
    label: "actuator",
    schema: "#/$defs/actuator",
    path: "pools.api.scaling.actuator",
    base: webhook,
    place: (s) => withPool({ scaling: { ...scaling(), actuator: s } }),
    fix: (s, f) => {
      if (f === "retry.base_ms") s.retry.max_ms = 600000;
      if (f === "retry.max_ms") s.retry.base_ms = 1;
      if (f === "breaker.open_seconds") s.breaker.max_open_seconds = 86400;
      if (f === "breaker.max_open_seconds") s.breaker.open_seconds = 0.1;
    },
  },
];

/** Array fields whose items are objects, with one valid item to vary (field path -> item). */
const ITEMS: Record<string, (key: string) => Json> = {
  "behavior.scale_up.policies": () => ({ type: "pods", value: 1, period: 15 }),
  "step.steps": (key) => (key === "upper" ? { adjustment: 1 } : { lower: 0, adjustment: 1 }),
  "composite.terms": () => ({ metric: "in_flight", value: 1 }),
  "metrics": () => ({ value: 1 }),
};

function edges(n: Json): Array<[number, boolean]> {
  const out: Array<[number, boolean]> = [];
  const integer = n.type === "integer";
  const step = (x: number) => (integer ? 1 : Math.abs(x) >= 1 ? 0.5 : Math.abs(x) > 0 ? Math.abs(x) / 2 : 0.5);
  if (n.minimum !== undefined) out.push([n.minimum, true], [n.minimum - step(n.minimum), false]);
  if (n.maximum !== undefined) out.push([n.maximum, true], [n.maximum + step(n.maximum), false]);
  if (integer && n.minimum !== undefined) out.push([n.minimum + 0.5, false]);
  return out;
}

function generate(ctx: Context): Case[] {
  const out: Case[] = [];
  function walk(node: Json, prefix: string): void {
    node = deref(node);
    for (const [key, rawChild] of Object.entries<Json>(node.properties ?? {})) {
      const field = prefix === "" ? key : `${prefix}.${key}`;
      if (prefix === "" && ctx.skip?.includes(key)) continue;
      const child = deref(rawChild);
      const make = (value: Json, fieldValue: number, itemField?: string) => {
        const section = ctx.base();
        setPath(section, field, value);
        ctx.fix?.(section, itemField ?? field, fieldValue);
        return ctx.place(section, field, fieldValue);
      };
      if (child.minimum !== undefined || child.maximum !== undefined) {
        for (const [v, ok] of edges(child)) {
          const path = ctx.path === "" ? field : `${ctx.path}.${field}`;
          out.push({ name: `${ctx.label}: ${field} = ${v}`, config: make(v, v), ...(ok ? { ok: true } : { path }) });
        }
      }
      const items = child.items ? deref(child.items) : undefined;
      if (items && (items.minimum !== undefined || items.maximum !== undefined)) {
        for (const [v, ok] of edges(items)) {
          const path = `${ctx.path === "" ? field : `${ctx.path}.${field}`}[0]`;
          out.push({ name: `${ctx.label}: ${field}[0] = ${v}`, config: make([v], v), ...(ok ? { ok: true } : { path }) });
        }
      }
      if (items && items.properties && ITEMS[field]) {
        for (const [itemKey, rawItem] of Object.entries<Json>(items.properties)) {
          const item = deref(rawItem);
          for (const [v, ok] of edges(item)) {
            const path = `${ctx.path}.${field}[0].${itemKey}`;
            const config = make([{ ...ITEMS[field](itemKey), [itemKey]: v }], v, `${field}[].${itemKey}`);
            out.push({ name: `${ctx.label}: ${field}[0].${itemKey} = ${v}`, config, ...(ok ? { ok: true } : { path }) });
          }
        }
      }
      if (child.additionalProperties && typeof child.additionalProperties === "object" && child.additionalProperties.minimum !== undefined) {
        for (const [v, ok] of edges(child.additionalProperties)) {
          out.push({ name: `${ctx.label}: ${field}.api = ${v}`, config: make({ api: v }, v), ...(ok ? { ok: true } : { path: `${ctx.path}.${field}.api` }) });
        }
      }
      if (child.properties) walk(child, field);
      for (const alt of child.anyOf ?? []) if (alt.properties) walk(alt, field);
    }
  }
  walk(pointer(ctx.schema), "");
  return out;
}

const generated = contexts.flatMap(generate);

test("the bundled schema is valid draft 2020-12 and compiles in ajv's strict mode", () => {
  assert.equal(bundled.$schema, "https://json-schema.org/draft/2020-12/schema");
  assert.ok(!JSON.stringify(bundled).includes('.schema.json#') && !/"\$ref": ?"\.\./.test(JSON.stringify(bundled)), "every $ref is inlined");
});

test("the split schema files resolve their relative $refs to the same schema as the bundle", () => {
  const split = new Ajv2020({ allErrors: true, strict: true, strictRequired: false });
  for (const f of ["config/redis", "control/cluster", "control/discovery", "sources/sources", "balancer/balancer", "admission/limits", "admission/concurrency", "admission/breaker", "policy/policy", "actuators/actuator"]) {
    split.addSchema(JSON.parse(readFileSync(join(root, "src", `${f}.schema.json`), "utf8")));
  }
  const top = split.compile(JSON.parse(readFileSync(join(root, "src", "config", "autoscale.schema.json"), "utf8")));
  for (const c of cases) assert.equal(top(c.config), validate(c.config), `${c.name}: the split schema and the bundle disagree`);
});

/** Runs every case and reports every disagreement at once. */
function checkAll(list: Case[], verdicts: LuaVerdict[]): void {
  const failures: string[] = [];
  list.forEach((c, i) => {
    try {
      check(c, verdicts[i]);
    } catch (e) {
      failures.push((e as Error).message.split("\n")[0]);
    }
  });
  assert.deepEqual(failures, [], `${failures.length} of ${list.length} cases disagree`);
}

test(`hand-written configs (${cases.length}): the schema and \`autoscale validate\` agree`, () => {
  assert.ok(cases.length >= 40);
  checkAll(cases, cases.map((c) => lua(c.config)));
});

test(`generated range edges (${generated.length}): the schema and the validator agree`, () => {
  assert.ok(generated.length > 300, `only ${generated.length} generated cases`);
  checkAll(generated, luaMany(generated.map((c) => c.config)));
});

test("every example config in docs/configuration.md is valid for both", () => {
  const doc = readFileSync(join(root, "docs", "configuration.md"), "utf8");
  const blocks = [...doc.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => JSON.parse(m[1]));
  const full = blocks.filter((b) => b.pools && b.routes);
  assert.ok(full.length >= 2, "docs/configuration.md shows full example configs");
  const named = full.map((config, i): Case => ({ name: `docs example ${i + 1}`, config, ok: true }));
  checkAll(named, named.map((c) => lua(c.config)));
});

test("docs/configuration.md documents every field of the schema, and its reference is current", async () => {
  const docTool = await import(pathToFileURL(join(root, "scripts", "config_doc.mjs")).href);
  const doc = readFileSync(join(root, "docs", "configuration.md"), "utf8");
  const { fields } = docTool.schemaFields(bundled);
  assert.ok(fields.length > 150, `only ${fields.length} fields found`);
  const missing = fields.filter((f: { path: string }) => !doc.includes("`" + f.path + "`")).map((f: { path: string }) => f.path);
  assert.deepEqual(missing, [], "fields missing from docs/configuration.md");
  const undescribed = fields.filter((f: { node: Json }) => !f.node.description).map((f: { path: string }) => f.path);
  assert.deepEqual(undescribed, [], "schema fields without a description");
  const r = spawnSync(process.execPath, [join(root, "scripts", "config_doc.mjs"), "--check"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  // Every validator-only rule of this test is listed in the docs.
  for (const c of cases.filter((c) => c.validatorOnly !== undefined)) {
    assert.ok(doc.includes(c.name), `docs/configuration.md does not list the validator-only rule "${c.name}"`);
  }
});

/** Defaults the validated config does not show as such, and why. */
const NOT_KEPT: Record<string, string> = {
  "pools.<name>.balancer": "the bare-name form's default; the object form is checked field by field",
  "pools.<name>.balancer.outlier.enabled": "kept as the presence of the outlier options",
  "pools.<name>.scaling.metrics": "the validated list starts with target",
  "pools.<name>.scaling.actuator.kind": "kubernetes only (the dump uses a webhook)",
  "pools.<name>.scaling.actuator.honor_cooldown": "aws_asg only",
  "pools.<name>.scaling.actuator.credentials.profile": "aws_asg only",
  "pools.<name>.scaling.actuator.api_version": "azure_vmss only",
  "metrics.max_series": "kept as maxSeries",
  "metrics.inflight_max_age": "kept as inflightMaxAge",
  "metrics.statsd.host": "statsd is off without the section (the dump has none)",
  "metrics.statsd.port": "statsd is off without the section (the dump has none)",
  "metrics.statsd.prefix": "statsd is off without the section (the dump has none)",
  "metrics.statsd.interval": "statsd is off without the section (the dump has none)",
};

test("the schema's defaults are the ones the validator fills in", async () => {
  const docTool = await import(pathToFileURL(join(root, "scripts", "config_doc.mjs")).href);
  // Every optional section present but empty, so the validator fills in all of its defaults.
  const config = withPool({
    balancer: { slow_start: {}, outlier: {}, health_check: {} },
    scaling: {
      max_replicas: 10,
      target: { value: 100 },
      behavior: {},
      step: { metric: "in_flight", threshold: 1, steps: [{ lower: 0, adjustment: 1 }] },
      composite: { terms: [{ metric: "in_flight", value: 1 }] },
      predictive: {},
      trend: {},
      scale_to_zero: {},
      actuator: { ...webhook(), retry: {}, breaker: {} },
    },
  });
  config.redis = {};
  const file = writeConfig(config);
  const driver = join(tmp, "dump.lua");
  writeFileSync(
    driver,
    [
      `package.path = ${JSON.stringify(join(root, "build", "lua", "?.lua") + ";")} .. package.path`,
      `local cjson = require("cjson")`,
      `local cfg, problems = require("resty.autoscale.config.load").loadConfigFile(arg[1])`,
      `if not cfg then io.stderr:write(table.concat(problems, "\\n")) os.exit(1) end`,
      `local pool = cfg.pools.api`,
      `io.write(cjson.encode({ listen = cfg.listen, admin = cfg.admin, metrics = cfg.metrics, redis = cfg.redis, pools = { ["<name>"] = { peers = pool.peers, balancer = pool.balancer, scaling = pool.scaling } } }))`,
    ].join("\n"),
  );
  const r = spawnSync("luajit", [driver, file], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const filled = JSON.parse(r.stdout);
  const at = (path: string): Json => {
    let v = filled;
    for (const part of path.replace(/\[\]/g, ".0").split(".")) v = v?.[part];
    return v;
  };
  // Sections whose validated form keeps the config's field names (admission and breakers turn
  // into limiter objects, so their defaults are covered by their own specs).
  const covered = /^(listen|admin\.|metrics\.|redis\.|pools\.<name>\.(peers|balancer|scaling)\b)/;
  const checked: string[] = [];
  const wrong: string[] = [];
  for (const f of docTool.schemaFields(bundled).fields as Array<{ path: string; node: Json }>) {
    if (f.node.default === undefined || !covered.test(f.path)) continue;
    if (NOT_KEPT[f.path] !== undefined) continue;
    const got = at(f.path);
    checked.push(f.path);
    if (!isDeepStrictEqual(got, f.node.default)) wrong.push(`${f.path}: schema ${JSON.stringify(f.node.default)}, validator ${JSON.stringify(got)}`);
  }
  assert.ok(checked.length >= 60, `only ${checked.length} defaults checked`);
  assert.deepEqual(wrong, []);
});

test("the README's configuration table names every section and states the schema's defaults", async () => {
  const docTool = await import(pathToFileURL(join(root, "scripts", "config_doc.mjs")).href);
  const byPath = new Map<string, Json>();
  for (const f of docTool.schemaFields(bundled).fields as Array<{ path: string; node: Json }>) byPath.set(f.path, f.node);
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const table = readme.slice(readme.indexOf("| key | default | meaning |"), readme.indexOf("Every field, its default, range and meaning"));
  const rows = table.split("\n").filter((l) => l.startsWith("| `"));
  const named = new Set<string>();
  const checked: string[] = [];
  const wrong: string[] = [];
  // A value as the table writes it: `"ewma"`, `[10, 60]` s, 300 s, true, 8080.
  const parse = (text: string): Json => {
    const m = /^`?([^`]+?)`?(?: s)?$/.exec(text.trim());
    if (m === null) return undefined;
    try {
      return JSON.parse(m[1]);
    } catch {
      return /^[\d.:]+$/.test(m[1]) ? m[1] : undefined;
    }
  };
  const compare = (path: string, text: string) => {
    const node = byPath.get(path);
    const value = parse(text);
    if (node === undefined || node.default === undefined || value === undefined) return;
    checked.push(path);
    if (!isDeepStrictEqual(value, node.default)) wrong.push(`${path}: README says ${text.trim()}, the schema's default is ${JSON.stringify(node.default)}`);
  };
  for (const row of rows) {
    const [keys, def, meaning] = row.replace(/^\|\s*/, "").replace(/\s*\|$/, "").split(/\s*\|\s*/);
    const paths = [...keys.matchAll(/`([^`]+)`/g)].map((m) => m[1].replace(/NAME/g, "<name>"));
    const first = paths[0];
    for (const p of paths) named.add(p.startsWith(".") ? first.replace(/\.[^.]+$/, "") + p : p);
    if (paths.length === 1) compare(first, def);
    // "`field` (default..." and "`field` default" in the meaning column.
    for (const m of meaning.matchAll(/`(\w+)` \(?((?:`[^`]+`|[^,:;)(]+?)(?: s)?)(?=[,:;)]|$)/g)) compare(`${first}.${m[1]}`, m[2]);
  }
  const sections = ["listen", "admin.listen", "admin.token", "metrics", "pools.<name>.peers[]", "pools.<name>.balancer", "pools.<name>.concurrency", "pools.<name>.breaker", "pools.<name>.scaling", "pools.<name>.scaling.actuator", "pools.<name>.discovery", "routes[]", "redis", "cluster", "sources", "tls"];
  assert.deepEqual(sections.filter((s) => !named.has(s)), [], "sections missing from the README's table");
  const topLevel = Object.keys(bundled.properties).filter((k) => k !== "$schema");
  assert.deepEqual(topLevel.filter((k) => ![...named].some((n) => n === k || n.startsWith(k + ".") || n.startsWith(k + "["))), [], "top-level fields missing from the README's table");
  assert.ok(checked.length >= 8, `only ${checked.length} defaults checked: ${checked}`);
  assert.deepEqual(wrong, []);
});
