// The policy engine inside the gateway (issue 6): the predictive history survives `nginx -s
// reload` (shared dict) and a restart (the file under the prefix), and an external forecaster
// behind a URL (a json_url source named by predictive.forecast_source) drives the forecast.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, existsSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { eventually, freePort, pool, runtime, startTestBackends, tempDir } from "./harness.js";
import { json, startServer, TestServer } from "./control_servers.js";
import { generateNginxConf, prepareStateDir } from "../../src/cli/nginx_conf.js";
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

test("state_dir: a prefix the workers cannot write is reported once (log and status); a state_dir made by the generator keeps the history across a restart", async (t) => {
  const root = process.getuid?.() === 0;
  const scaling = { min_replicas: 1, max_replicas: 20, target: { metric: "requests_per_second", value: 100 }, predictive: { season: SEASON }, actuator: { type: "webhook", url: `${hooks.url}/hw` } };
  const base = { pools: { hw: pool(backends.ports, { scaling }) }, routes: [{ name: "r", match: { prefix: "/" }, pool: "hw" }] };
  const status = async (adminPort: number) => (await fetchJson(`http://127.0.0.1:${adminPort}/autoscale/status`)) as any;

  // 1. No state_dir, a prefix owned by root (0755): the workers (nobody) cannot write the history.
  if (root) {
    const prefix = tempDir("policy-ro");
    preparePrefix(prefix);
    t.after(() => rmSync(prefix, { recursive: true, force: true }));
    const port = await freePort();
    const adminPort = await freePort();
    const nginx = await gatewayOn(prefix, base, port, adminPort);
    t.after(() => nginx.stop());
    const refused = await eventually("the status shows the refused state_dir", 10000, async () => {
      const d = (await status(adminPort)).control?.state_dir;
      return d?.writable === false ? d : undefined;
    });
    assert.equal(refused.path, prefix.endsWith("/") ? prefix : `${prefix}/`);
    assert.match(refused.error, /Permission denied/);
    assert.equal(refused.file, `${refused.path}autoscale-history-hw.txt`);
    const errorLog = () => readFileSync(join(prefix, "logs", "error.log"), "utf8");
    const message = /the state directory \S+ is not writable by the nginx workers \(.*Permission denied\): the predictive history survives reloads but not restarts; set state_dir/g;
    // A reload's new workers save at once and hit the same refusal: still one line.
    const reloadedBefore = (errorLog().match(/reconfiguring/g) ?? []).length;
    const reloadAt = Date.now() / 1000;
    process.kill(nginx.process.pid!, "SIGHUP");
    await eventually("reloaded", 5000, async () => ((errorLog().match(/reconfiguring/g) ?? []).length > reloadedBefore ? true : undefined));
    await eventually("a decision after the reload", 10000, async () => ((await status(adminPort)).pools.hw.scaling.last_decision?.time > reloadAt + 1 ? true : undefined));
    assert.equal((errorLog().match(message) ?? []).length, 1, "logged once");
    assert.equal((await status(adminPort)).control.state_dir.writable, false);
  } else {
    t.diagnostic("not root: the workers share the test's user, a refused prefix cannot be shown");
  }

  // 2. state_dir outside the (root-owned) prefix, created by the generator for the workers.
  const prefix = tempDir("policy-sd");
  preparePrefix(prefix);
  const stateDir = join(tempDir("state-parent"), "state");
  t.after(() => rmSync(prefix, { recursive: true, force: true }));
  t.after(() => rmSync(join(stateDir, ".."), { recursive: true, force: true }));
  const config = { ...base, state_dir: stateDir };
  prepareStateDir(stateDir);
  const file = join(stateDir, "autoscale-history-hw.txt");
  const last = Math.floor(Date.now() / 60000) - 1;
  const values = Array.from({ length: 40 }, (_v, i) => String(100 + (i % 7)));
  const seeded = `hw1;${SEASON};0;${last};100;0;0;0;${last - 39};|${values.join(",")}`;
  writeFileSync(file, seeded);
  const seededInode = statSync(file).ino;
  const port = await freePort();
  const adminPort = await freePort();
  let nginx = await gatewayOn(prefix, config, port, adminPort);
  let stopped = false;
  t.after(async () => {
    if (!stopped) await nginx.stop();
  });
  const n = await historyNote(adminPort, 0);
  assert.ok(n >= 40 && n <= 43, `history after start: ${n} minutes`);
  // The workers rewrote the file in state_dir (a new file renamed over the seeded one).
  await eventually("the workers wrote the history into state_dir", 10000, async () => (statSync(file).ino !== seededInode ? true : undefined));
  if (root) assert.equal(statSync(file).uid, statSync(stateDir).uid, "written by the workers' user");
  const ok = (await status(adminPort)).control.state_dir;
  assert.equal(ok.writable, true);
  assert.equal(ok.path, `${stateDir}/`);
  assert.equal(existsSync(historyFile(prefix)), false, "nothing written into the prefix");
  await nginx.stop();
  stopped = true;
  nginx = await gatewayOn(prefix, config, port, adminPort);
  stopped = false;
  const again = await historyNote(adminPort, 0);
  assert.ok(again >= 40 && again <= 44, `history after restart: ${again} minutes`);
  assert.doesNotMatch(readFileSync(join(prefix, "logs", "error.log"), "utf8"), /not writable/);
});
