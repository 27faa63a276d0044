// Starts real nginx gateways, backends and receivers for the integration tests.
import { chmodSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findRuntime, Runtime } from "../../src/cli/runtime.js";
import { generateNginxConf, GatewayConfig } from "../../src/cli/nginx_conf.js";
import { NginxHandle, startNginx } from "../../src/cli/nginx.js";
import { BackendSpec, startBackends } from "../../src/cli/backends.js";
import { waitForHttp, fetchJson } from "../../src/cli/http_util.js";

export const runtime: Runtime = findRuntime();

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export function tempDir(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `autoscale-${name}-`));
  // nginx workers run as an unprivileged user when the tests run as root: they read files here.
  chmodSync(dir, 0o755);
  return dir;
}

export interface Gateway {
  url: string;
  adminUrl: string;
  prefix: string;
  configFile: string;
  nginx: NginxHandle;
  errorLog(): string;
  status(headers?: Record<string, string>): Promise<any>;
  stop(): Promise<void>;
}

export async function startGateway(config: GatewayConfig & Record<string, unknown>, opts: { workers?: number; extraHttp?: string; extraServer?: string } = {}): Promise<Gateway> {
  const prefix = tempDir("gw");
  const port = await freePort();
  const adminPort = await freePort();
  const cfg = { ...config, listen: port, admin: { ...(config.admin ?? {}), listen: `127.0.0.1:${adminPort}` } };
  const configFile = join(prefix, "autoscale.json");
  writeFileSync(configFile, JSON.stringify(cfg, null, 2));
  const conf = generateNginxConf(cfg, { prefix, runtime, workers: opts.workers ?? 2, extraHttp: opts.extraHttp, extraServer: opts.extraServer });
  const nginx = startNginx(runtime, prefix, conf, { ...process.env, AUTOSCALE_CONFIG: configFile });
  const errorLog = () => {
    try {
      return readFileSync(join(prefix, "logs", "error.log"), "utf8");
    } catch {
      return "";
    }
  };
  try {
    await waitForHttp(`http://127.0.0.1:${adminPort}/healthz`, 10000);
  } catch (e) {
    await nginx.stop();
    throw new Error(`gateway did not start: ${(e as Error).message}\n${errorLog()}`);
  }
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  return {
    url: `http://127.0.0.1:${port}`,
    adminUrl,
    prefix,
    configFile,
    nginx,
    errorLog,
    status: (headers) => fetchJson(`${adminUrl}/autoscale/status`, headers),
    stop: async () => {
      await nginx.stop();
      rmSync(prefix, { recursive: true, force: true });
    },
  };
}

export async function startTestBackends(specs: Omit<BackendSpec, "port">[]): Promise<{ ports: number[]; stop(): Promise<void> }> {
  const ports: number[] = [];
  for (let i = 0; i < specs.length; i++) ports.push(await freePort());
  const prefix = tempDir("be");
  const nginx = startBackends(runtime, prefix, specs.map((s, i) => ({ ...s, port: ports[i] })));
  for (const p of ports) await waitForHttp(`http://127.0.0.1:${p}/`, 10000);
  return {
    ports,
    stop: async () => {
      await nginx.stop();
      rmSync(prefix, { recursive: true, force: true });
    },
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a value (not undefined) or the time runs out. */
export async function eventually<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await sleep(200);
  }
  throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (last error: ${(last as Error).message})` : ""}`);
}

export function pool(ports: number[], extra: Record<string, unknown> = {}) {
  return { peers: ports.map((port) => ({ host: "127.0.0.1", port, weight: 1 })), balancer: "ewma", ...extra };
}

/** The gateway's structured `autoscale_event` log lines of one event, parsed. */
export function autoscaleEvents(log: string, event: string): any[] {
  return log
    .split("\n")
    .filter((l) => l.includes("autoscale_event ") && l.includes(`"event":"${event}"`))
    .map((l) => JSON.parse(l.slice(l.indexOf("autoscale_event ") + 16).replace(/, context: .*$/, "").replace(/, client: .*$/, "")));
}

/** The control loop and its scale actions never failed (no Lua error, no traceback). */
export function assertNoLoopErrors(log: string): void {
  if (/control loop failed|scale action of pool \S+ failed|stack traceback/.test(log)) throw new Error(`the control loop failed:\n${log.slice(-3000)}`);
}
