// Benchmark scenarios. Each one is a gateway configuration measured against plain nginx proxying
// to the same backend peers in the same run. Later capabilities add their scenarios here.
import { nginxHead } from "../src/cli/nginx.js";
import { join } from "node:path";
import { GatewayConfig, PROXY_SETTINGS } from "../src/cli/nginx_conf.js";
import { Runtime } from "../src/cli/runtime.js";
import { projectRoot } from "../src/cli/paths.js";

export interface ScenarioContext {
  /** Ports of the backend peers (one fast nginx, `return 200`). */
  backendPorts: number[];
}

export interface Scenario {
  name: string;
  description: string;
  /** The gateway config (listen/admin ports are set by the runner). */
  config(ctx: ScenarioContext): GatewayConfig & Record<string, unknown>;
  /** The URL path wrk requests. */
  path: string;
  /** Extra text for the http block (e.g. a comparison handler written in plain Lua). */
  extraHttp?: string;
  /** A whole nginx.conf instead of the generated gateway (one worker; must answer /healthz on adminPort). */
  nginxConf?: (ctx: { runtime: Runtime; port: number; adminPort: number; backendPorts: number[] }) => string;
}

function peers(ports: number[]) {
  return ports.map((port) => ({ host: "127.0.0.1", port, weight: 1 }));
}

export const scenarios: Scenario[] = [
  {
    name: "slice",
    description: "walking skeleton: route + peer counters in the log phase, adaptive weights in the balancer",
    path: "/api/bench",
    config: (ctx) => ({
      pools: { api: { peers: peers(ctx.backendPorts), balancer: "ewma" } },
      routes: [{ name: "api", match: { prefix: "/api" }, pool: "api" }],
    }),
  },
  {
    name: "admission",
    description: "slice + a route-keyed token bucket and the pool's gradient concurrency limit, at a load that triggers neither (compare with slice)",
    path: "/api/bench",
    config: (ctx) => ({
      pools: {
        api: {
          peers: peers(ctx.backendPorts),
          balancer: "ewma",
          // min_limit above wrk's connections: the min-RTT measurement (limit pinned to min_limit) never sheds.
          concurrency: { algorithm: "gradient", min_limit: 256, initial_limit: 512, max_limit: 4096 },
        },
      },
      routes: [{ name: "api", match: { prefix: "/api" }, pool: "api", limits: { rate: [{ algorithm: "token_bucket", rate: 1000, burst: 100000000 }] } }],
    }),
  },
];

// ---- Metrics (issue 3) --------------------------------------------------------------------------

/** 10 routes, each to its own pool of the same 3 peers: 10 route series and 30 peer series. */
function tenRoutes(ctx: ScenarioContext) {
  const pools: Record<string, unknown> = {};
  const routes: { name: string; match: { prefix: string }; pool: string }[] = [];
  for (let i = 0; i < 10; i++) {
    pools[`p${i}`] = { peers: peers(ctx.backendPorts), balancer: "round_robin" };
    routes.push({ name: `r${i}`, match: { prefix: `/r${i}/` }, pool: `p${i}` });
  }
  return { pools, routes };
}

/**
 * Plain nginx proxying (nginx's own round robin, as the plain target) with extra Lua in the
 * location: isolates the cost of the metrics handlers from the bundle's balancer.
 */
function plainWithLua(ctx: { runtime: Runtime; port: number; adminPort: number; backendPorts: number[] }, http: string, location: string, balancer?: string): string {
  const servers = balancer === undefined ? ctx.backendPorts.map((p) => `        server 127.0.0.1:${p};`).join("\n") : `        server 0.0.0.1;\n        balancer_by_lua_block { ${balancer} }`;
  return `${nginxHead(ctx.runtime, { workers: 1 })}${http}
    upstream plain {
${servers}
        keepalive 256;
    }
    server {
        listen 127.0.0.1:${ctx.port} reuseport;
${PROXY_SETTINGS}        location / {
            proxy_pass http://plain;
${location}
        }
    }
    server {
        listen 127.0.0.1:${ctx.adminPort};
        location = /healthz { return 200 "ok\n"; }
        location / { content_by_lua_block { require("resty.autoscale").admin() } }
    }
}
`;
}

const bundleInclude = () => `    include ${join(projectRoot, "build", "nginx", "autoscale.conf")};`;

/**
 * The naive way, for comparison: a shared-dict incr per figure per request (requests, latency
 * sum, status class, peer requests) from log_by_lua, written as plain Lua.
 */
const NAIVE_LOG = `            log_by_lua_block {
                local d = ngx.shared.naive_metrics
                local route = "r0"
                d:incr("route:" .. route .. ":requests", 1, 0)
                d:incr("route:" .. route .. ":latency", ngx.now() - ngx.req.start_time(), 0)
                d:incr("route:" .. route .. ":status:" .. math.floor(ngx.status / 100) .. "xx", 1, 0)
                d:incr("peer:" .. (ngx.var.upstream_addr or "-") .. ":requests", 1, 0)
            }`;

scenarios.push(
  {
    name: "metrics",
    description: "the gateway shell (access + balancer + log) with 10 routes x 3 peers: route and peer counters, classes, bytes, histograms, in-flight (compare with slice)",
    path: "/r0/bench",
    config: tenRoutes,
  },
  {
    name: "metrics-log",
    description: "plain nginx proxying + the metrics log handler only (10 routes x 3 peers; no in-flight): the metrics cost against plain nginx",
    path: "/r0/bench",
    config: tenRoutes,
    nginxConf: (ctx) => plainWithLua(ctx, bundleInclude(), `            log_by_lua_block { require("resty.autoscale").log("r0") }`),
  },
  {
    name: "metrics-access-log",
    description: "plain nginx proxying + the metrics access and log handlers (in-flight counted)",
    path: "/r0/bench",
    config: tenRoutes,
    nginxConf: (ctx) =>
      plainWithLua(ctx, bundleInclude(), `            access_by_lua_block { require("resty.autoscale").access("r0") }\n            log_by_lua_block { require("resty.autoscale").log("r0") }`),
  },
  {
    name: "empty-log",
    description: "plain nginx proxying + the bundle's include + an empty log_by_lua (the floor: entering Lua once per request, plus the bundle's timers)",
    path: "/r0/bench",
    config: tenRoutes,
    nginxConf: (ctx) => plainWithLua(ctx, bundleInclude(), `            log_by_lua_block { }`),
  },
  {
    name: "empty-access-log",
    description: "plain nginx proxying + the bundle's include + empty access_by_lua and log_by_lua (the floor of two Lua phases)",
    path: "/r0/bench",
    config: tenRoutes,
    nginxConf: (ctx) => plainWithLua(ctx, bundleInclude(), `            access_by_lua_block { }\n            log_by_lua_block { }`),
  },
  {
    name: "naive-shdict",
    description: "plain nginx proxying + 4 shared-dict incr per request in log_by_lua (the naive design, for comparison)",
    path: "/r0/bench",
    config: tenRoutes,
    nginxConf: (ctx) => plainWithLua(ctx, bundleInclude() + "\n    lua_shared_dict naive_metrics 16m;", NAIVE_LOG),
  },
);

// ---- Per-capability cost against plain nginx (issues 4 and 5) ------------------------------------
// Each capability alone in an otherwise plain nginx location, so its cost is not mixed with the
// other phases': the balancer with its log-phase update (no access phase), and admission in the
// access phase with its log-phase release (nginx's own round robin).

const onePool = (algorithm: string) => (ctx: ScenarioContext) => ({
  pools: { api: { peers: peers(ctx.backendPorts), balancer: algorithm } },
  routes: [{ name: "api", match: { prefix: "/api" }, pool: "api" }],
});

/**
 * The reference's minimal Lua balancer: round robin over the three ports in plain Lua, one
 * set_current_peer per request (measured on the reference machine: +1.5 us, 0.90x).
 */
const MINIMAL_BALANCER = (ports: number[]) =>
  `local rr = package.loaded.bench_rr if not rr then rr = { i = 0, ports = {${ports.join(", ")}} } package.loaded.bench_rr = rr end rr.i = rr.i % #rr.ports + 1 require("ngx.balancer").set_current_peer("127.0.0.1", rr.ports[rr.i])`;

scenarios.push(
  {
    name: "balancer-minimal",
    description: "plain nginx location + a minimal plain-Lua round-robin balancer_by_lua (the reference's floor for any Lua balancer)",
    path: "/api/bench",
    config: onePool("round_robin"),
    nginxConf: (ctx) => plainWithLua(ctx, bundleInclude(), "", MINIMAL_BALANCER(ctx.backendPorts)),
  },
);
for (const algorithm of ["ewma", "round_robin"]) {
  scenarios.push({
    name: `balancer-log-${algorithm}`,
    description: `plain nginx location + the bundle's ${algorithm} balancer_by_lua and its log-phase update (feedback, outlier detection, peer and route metrics); no access phase`,
    path: "/api/bench",
    config: onePool(algorithm),
    nginxConf: (ctx) => plainWithLua(ctx, bundleInclude(), `            log_by_lua_block { require("resty.autoscale").log("api") }`, `require("resty.autoscale").balance("api")`),
  });
}
// Admission at a load that triggers neither limit: a route token bucket whose rate is above the
// offered load (each request finds a new key or one whose TAT stays in the millisecond: one dict
// operation), and the pool's gradient concurrency limit far above the connections.
const admissionConfig = (rate: number, burst: number) => (ctx: ScenarioContext) => ({
  pools: {
    api: {
      peers: peers(ctx.backendPorts),
      balancer: "round_robin",
      concurrency: { algorithm: "gradient", min_limit: 256, initial_limit: 512, max_limit: 4096 },
    },
  },
  routes: [{ name: "api", match: { prefix: "/api" }, pool: "api", limits: { rate: [{ algorithm: "token_bucket", rate, burst }] } }],
});
const admissionHandlers = (ctx: Parameters<NonNullable<Scenario["nginxConf"]>>[0]) =>
  plainWithLua(ctx, bundleInclude(), `            access_by_lua_block { require("resty.autoscale").access("api") }\n            log_by_lua_block { require("resty.autoscale").log("api") }`);

scenarios.push(
  {
    name: "admission-access-log",
    description: "plain nginx proxying + the bundle's access and log handlers with a route token bucket (100,000/s, burst 10,000) and the pool's gradient concurrency limit, at a load that triggers neither (compare with metrics-access-log: the same handlers without limits)",
    path: "/api/bench",
    config: admissionConfig(100000, 10000),
    nginxConf: admissionHandlers,
  },
  {
    name: "admission-only",
    description: "admission-access-log with metrics.enabled false: the admission capability alone (the gateway for users who only want limits)",
    path: "/api/bench",
    config: (ctx) => ({ ...admissionConfig(100000, 10000)(ctx), metrics: { enabled: false } }),
    nginxConf: admissionHandlers,
  },
  {
    name: "admission-only-burst",
    description: "admission-only with a 1,000/s bucket and a burst of 100,000,000 that the load drains without emptying: TAT runs ahead a millisecond a request, the token bucket's dearest case (incr, expire, get)",
    path: "/api/bench",
    config: (ctx) => ({ ...admissionConfig(1000, 100000000)(ctx), metrics: { enabled: false } }),
    nginxConf: admissionHandlers,
  },
);

// The balancer's per-request cost (target: peak-EWMA with its log-phase update at least 0.87x of
// plain nginx requests/s, at most +2.5 us worker CPU per request). Same gateway shape as slice;
// round robin beside it shows what the EWMA maths and feedback add over the cheapest algorithm.
for (const algorithm of ["ewma", "least_request", "round_robin"]) {
  scenarios.push({
    name: `balancer_${algorithm}`,
    description: `the ${algorithm} balancer over three peers with its log-phase feedback and passive outlier detection`,
    path: "/api/bench",
    config: (ctx) => ({
      pools: { api: { peers: peers(ctx.backendPorts), balancer: algorithm } },
      routes: [{ name: "api", match: { prefix: "/api" }, pool: "api" }],
    }),
  });
}

export function findScenario(name: string): Scenario | undefined {
  return scenarios.find((s) => s.name === name);
}

