// The policy engine inside the gateway (issue 6): the predictive history survives `nginx -s
// reload` (shared dict) and a restart (the file under the prefix), and an external forecaster
// behind a URL (a json_url source named by predictive.forecast_source) drives the forecast.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, existsSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { eventually, freePort, pool, runtime, startTestBackends, tempDir } from "./harness.js";
import { json, startServer, TestServer } from "./control_servers.js";
import { generateNginxConf } from "../../src/cli/nginx_conf.js";
import { NginxHandle, startNginx, preparePrefix } from "../../src/cli/nginx.js";
import { waitForHttp, fetchJson } from "../../src/cli/http_util.js";

let backends: Awaited<ReturnType<typeof startTestBackends>>;
let hooks: TestServer;
let forecaster: TestServer;

before(async () => {
  backends = await startTestBackends([{ delay: 0 }]);
  hooks = await startServer((_r, res) => json(res, 200, { ok: true }));
  forecaster = await startServer((_r, res) => json(res, 200, { forecast: { rps: 400 } }));
});
after(async () => {
  await forecaster.close();
  await hooks.close();
  await backends.stop();
});

/** A gateway on a prefix of our own, so that it can be stopped and started again on the same one. */
async function gatewayOn(prefix: string, config: Record<string, unknown>, port: number, adminPort: number): Promise<NginxHandle> {
  const cfg = { ...config, listen: port, admin: { listen: `127.0.0.1:${adminPort}` } };
  const configFile = join(prefix, "autoscale.json");
  writeFileSync(configFile, JSON.stringify(cfg, null, 2));
  const nginx = startNginx(runtime, prefix, generateNginxConf(cfg as never, { prefix, runtime, workers: 2 }), { ...process.env, AUTOSCALE_CONFIG: configFile });
  await waitForHttp(`http://127.0.0.1:${adminPort}/healthz`, 10000);
  return nginx;
}

const SEASON = 60;
const historyFile = (prefix: string) => join(prefix, "autoscale-history-hw.txt");

/** The predictive rule's note of pool hw's last decision, once it is of a decision newer than `after`. */
async function historyNote(adminPort: number, after: number): Promise<number> {
  return eventually("a decision with the history", 10000, async () => {
    const s = (await fetchJson(`http://127.0.0.1:${adminPort}/autoscale/status`)) as any;
    const d = s.pools.hw.scaling.last_decision;
    if (d === undefined || d.time <= after) return undefined;
    const note = d.rules.find((r: { rule: string }) => r.rule === "predictive")?.note as string | undefined;
    const m = note?.match(/^history (\d+) of 60 minutes$/);
    return m ? Number(m[1]) : undefined;
  });
}

test("predictive history survives nginx -s reload and a restart; an external forecaster drives the forecast", async (t) => {
  const prefix = tempDir("policy");
  preparePrefix(prefix);
  // The history file lives in the prefix, which the workers (nobody, when the tests run as root)
  // must be able to write: a root-owned prefix keeps the history across reloads only (logged).
  chmodSync(prefix, 0o777);
  t.after(() => rmSync(prefix, { recursive: true, force: true }));
  // A saved history of 40 complete minutes ending a minute ago (the format of holtwinters.encode).
  const last = Math.floor(Date.now() / 60000) - 1;
  const values = Array.from({ length: 40 }, (_v, i) => String(100 + (i % 7)));
  writeFileSync(historyFile(prefix), `hw1;${SEASON};0;${last};100;0;0;0;${last - 39};|${values.join(",")}`);
  const scaling = (name: string, predictive: Record<string, unknown>) => ({
    min_replicas: 1,
    max_replicas: 20,
    target: { metric: "requests_per_second", value: 100 },
    predictive,
    actuator: { type: "webhook", url: `${hooks.url}/${name}` },
  });
  const config = {
    sources: { forecaster: { type: "json_url", url: `${forecaster.url}/forecast`, path: "forecast.rps", interval: 0.5, max_age: 5 } },
    pools: {
      hw: pool(backends.ports, { scaling: scaling("hw", { season: SEASON }) }),
      ext: pool(backends.ports, { scaling: scaling("ext", { model: "level", forecast_source: "forecaster" }) }),
    },
    routes: [{ name: "r", match: { prefix: "/" }, pool: "hw" }],
  };
  const port = await freePort();
  const adminPort = await freePort();
  let nginx = await gatewayOn(prefix, config, port, adminPort);
  let stopped = false;
  t.after(async () => {
    if (!stopped) await nginx.stop();
  });

  // Start: the file's 40 minutes are loaded (a fresh history would say 0 or 1).
  let n = await historyNote(adminPort, 0);
  assert.ok(n >= 40 && n <= 43, `history after start: ${n} minutes`);

  // The external forecast, 400 rps at 100 per replica: 4 replicas (one peer: within the +4 pods limit), sent through the webhook.
  await eventually("the external forecast scales pool ext", 10000, async () => (hooks.requests.some((r) => r.path === "/ext") ? true : undefined));
  const signal = JSON.parse(hooks.requests.find((r) => r.path === "/ext")!.body);
  assert.equal(signal.desired, 4);
  const ext = ((await fetchJson(`http://127.0.0.1:${adminPort}/autoscale/status`)) as any).pools.ext.scaling.last_decision;
  assert.equal(ext.inputs.forecast, 400);
  assert.equal(ext.rules.find((r: { rule: string }) => r.rule === "predictive").note, "external forecast");

  // Reload without the file: the new workers take the history from the shared dict.
  await eventually("the gateway saved the history", 5000, async () => (existsSync(historyFile(prefix)) ? true : undefined));
  unlinkSync(historyFile(prefix));
  const errorLog = () => readFileSync(join(prefix, "logs", "error.log"), "utf8");
  const reloadedBefore = (errorLog().match(/reconfiguring/g) ?? []).length;
  const reloadAt = Date.now() / 1000;
  process.kill(nginx.process.pid!, "SIGHUP"); // nginx -s reload
  await eventually("reloaded", 5000, async () => ((errorLog().match(/reconfiguring/g) ?? []).length > reloadedBefore ? true : undefined));
  n = await historyNote(adminPort, reloadAt + 1);
  assert.ok(n >= 40 && n <= 44, `history after reload: ${n} minutes`);

  // Restart: the shared dict is gone; the file the new workers wrote brings the history back.
  await eventually("the history file is written again", 5000, async () => (existsSync(historyFile(prefix)) ? true : undefined));
  await nginx.stop();
  stopped = true;
  nginx = await gatewayOn(prefix, config, port, adminPort);
  stopped = false;
  n = await historyNote(adminPort, 0);
  assert.ok(n >= 40 && n <= 45, `history after restart: ${n} minutes`);
  assert.doesNotMatch(errorLog(), /cannot write the predictive history/);
});
