// `autoscale demo`: three backends of different speeds behind the gateway, a webhook receiver
// that prints the scale signals it gets, and traffic. Within seconds the traffic shifts toward the
// fast backends (peak-EWMA balancer) and a scale signal arrives. Ctrl-C stops everything it started.
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { startBackends } from "./backends.js";
import { findRuntime } from "./runtime.js";
import { generateNginxConf } from "./nginx_conf.js";
import { startNginx, NginxHandle } from "./nginx.js";
import { loadValidConfig, parseFlags } from "./run.js";
import { startTraffic } from "./traffic.js";
import { startWebhookReceiver } from "./webhook_receiver.js";
import { waitForHttp, fetchJson } from "./http_util.js";

interface PeerStatus {
  address: string;
  weight: number;
  /** Measured share of the pool's tries over the shortest window (0-1). */
  share: number;
  /** The serving worker's peak-EWMA cost estimate. */
  cost_ms?: number;
  windows: Record<string, { requests: number; meanLatency?: number }>;
}

export async function demoCommand(args: string[]): Promise<number> {
  const flags = parseFlags(args, ["port", "seconds", "prefix"]);
  const port = Number(flags.port ?? 8080);
  const seconds = flags.seconds === undefined ? Infinity : Number(flags.seconds);
  const prefix = resolve(flags.prefix ?? join(".autoscale", "demo"));
  const adminPort = port + 1100;
  const webhookPort = port + 920;
  const backends = [
    { port: port + 1, delay: 0.01 },
    { port: port + 2, delay: 0.02 },
    { port: port + 3, delay: 0.1 },
  ];
  const runtime = findRuntime();
  mkdirSync(prefix, { recursive: true });
  const configFile = join(prefix, "autoscale.json");
  const config = {
    listen: port,
    admin: { listen: `127.0.0.1:${adminPort}` },
    metrics: { windows: [5, 60] },
    pools: {
      api: {
        peers: backends.map((b) => ({ host: "127.0.0.1", port: b.port, weight: 1 })),
        balancer: "ewma",
        scaling: {
          min_replicas: 1,
          max_replicas: 20,
          interval: 2,
          window: 5,
          target: { metric: "requests_per_second", value: 100 },
          actuator: { type: "webhook", url: `http://127.0.0.1:${webhookPort}/scale` },
        },
      },
    },
    routes: [{ name: "api", match: { prefix: "/api" }, pool: "api" }],
  };
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  loadValidConfig(configFile);

  const started: NginxHandle[] = [];
  const receiver = await startWebhookReceiver(webhookPort, (s) => {
    const b = s.body;
    process.stdout.write(`\n>>> scale signal received: pool=${b.pool} current=${b.current} desired=${b.desired}\n    reason: ${b.reason}\n\n`);
  });
  const backendNginx = startBackends(runtime, join(prefix, "backends"), backends);
  started.push(backendNginx);
  const gw = startNginx(runtime, join(prefix, "gateway"), generateNginxConf(config, { prefix, runtime, workers: 2 }), { ...process.env, AUTOSCALE_CONFIG: configFile });
  started.push(gw);
  let stopping = false;
  const stopAll = async () => {
    if (stopping) return;
    stopping = true;
    await traffic?.stop();
    await Promise.all(started.map((n) => n.stop()));
    await receiver.close();
  };
  let traffic: ReturnType<typeof startTraffic> | undefined;
  process.on("SIGINT", () => void stopAll());
  process.on("SIGTERM", () => void stopAll());
  try {
    await waitForHttp(`http://127.0.0.1:${adminPort}/healthz`, 10000);
    for (const b of backends) await waitForHttp(`http://127.0.0.1:${b.port}/`, 10000);
  } catch (e) {
    await stopAll();
    throw new Error(`${(e as Error).message}; see ${join(prefix, "gateway", "logs", "error.log")}`);
  }
  process.stdout.write(`lua-resty-autoscale demo
  gateway        http://127.0.0.1:${port}/api/          (pool "api": backends answering in 10, 20 and 100 ms)
  status (JSON)  http://127.0.0.1:${adminPort}/autoscale/status
  metrics        http://127.0.0.1:${adminPort}/metrics                (Prometheus text)
  webhook        http://127.0.0.1:${webhookPort}/scale     (prints the scale signals it receives)
  backends       ${backends.map((b) => `http://127.0.0.1:${b.port}/`).join("  ")}
  logs           ${join(prefix, "gateway", "logs", "error.log")}
Sending traffic (32 concurrent clients). Ctrl-C stops everything.
`);
  traffic = startTraffic(`http://127.0.0.1:${port}/api/hello`, 32);
  const t0 = Date.now();
  while (!stopping && (Date.now() - t0) / 1000 < seconds) {
    await new Promise((r) => setTimeout(r, 2000));
    if (stopping) break;
    try {
      const status = (await fetchJson(`http://127.0.0.1:${adminPort}/autoscale/status`)) as { pools: { api: { peers: PeerStatus[] } } };
      const peers = status.pools.api.peers;
      const line = peers
        .map((p) => {
          const w = p.windows["5s"];
          const lat = w?.meanLatency === undefined ? "  -  " : `${(w.meanLatency * 1000).toFixed(0)} ms`;
          const cost = p.cost_ms === undefined ? "" : ` cost ${p.cost_ms.toFixed(0).padStart(3)} ms`;
          return `${p.address} share ${(100 * p.share).toFixed(0).padStart(3)}%${cost} latency ${lat}`;
        })
        .join(" | ");
      process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(3)}s] ${line}\n`);
    } catch (e) {
      process.stdout.write(`status not available: ${(e as Error).message}\n`);
    }
  }
  await stopAll();
  process.stdout.write(`stopped; ${receiver.signals.length} scale signal(s) received\n`);
  return 0;
}
