// Benchmark scenarios. Each one is a gateway configuration measured against plain nginx proxying
// to the same backend peers in the same run. Later capabilities add their scenarios here.
import { GatewayConfig } from "../src/cli/nginx_conf.js";

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
