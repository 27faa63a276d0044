// The walking skeleton end to end: real nginx with the bundle, real backends, a real webhook
// receiver. Asserts proxied answers, exact counts in the status JSON across workers, the weight
// shift away from a slow peer, the scale signal, retries of a failed signal, the admin token and
// the refusal of a bad config.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { httpRequest } from "../../src/cli/http_util.js";
import { startTraffic } from "../../src/cli/traffic.js";
import { startWebhookReceiver, WebhookReceiver } from "../../src/cli/webhook_receiver.js";
import { projectRoot } from "../../src/cli/paths.js";
import { generateNginxConf } from "../../src/cli/nginx_conf.js";
import { startNginx } from "../../src/cli/nginx.js";
import { eventually, freePort, pool, runtime, sleep, startGateway, startTestBackends, tempDir } from "./harness.js";

let backends: Awaited<ReturnType<typeof startTestBackends>>;

before(async () => {
  // two fast peers and one five times slower
  backends = await startTestBackends([{ delay: 0.01 }, { delay: 0.01 }, { delay: 0.05 }]);
});
after(async () => backends.stop());

async function send(url: string, n: number, concurrency: number): Promise<number[]> {
  const statuses: number[] = [];
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      const r = await httpRequest(url, { headers: { connection: "close" } });
      statuses.push(r.status);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return statuses;
}

test("proxies to the pool and counts every request exactly, over two workers", async () => {
  const gw = await startGateway({ pools: { api: pool(backends.ports) }, routes: [{ name: "api", match: { prefix: "/api" }, pool: "api" }, { name: "health", match: { exact: "/health" }, pool: "api" }] }, { workers: 2 });
  try {
    const r = await httpRequest(`${gw.url}/api/hello`);
    assert.equal(r.status, 200);
    assert.match(r.body, /^backend \d+/);
    const statuses = await send(`${gw.url}/api/x`, 299, 8);
    assert.deepEqual([...new Set(statuses)], [200]);
    await send(`${gw.url}/health`, 7, 2);
    await send(`${gw.url}/nowhere`, 5, 2);
    const status = await eventually("counts flushed", 5000, async () => {
      const s = await gw.status();
      return s.routes.api.windows["60s"].requests === 300 && s.routes.unmatched.windows["60s"].requests === 5 ? s : undefined;
    });
    assert.equal(status.routes.health.windows["60s"].requests, 7);
    assert.equal(status.routes.api.windows["60s"].errors, 0);
    assert.equal(status.workers, 2);
    const perPeer = status.pools.api.peers.reduce((n: number, p: any) => n + p.windows["60s"].requests, 0);
    assert.equal(perPeer, 307, "every proxied request is attributed to the peer that served it");
    const unmatched = await httpRequest(`${gw.url}/nowhere`);
    assert.equal(unmatched.status, 404);
  } finally {
    await gw.stop();
  }
});

test("status counts each worker's request contexts: back to 0 after traffic, and a location without the log handler shows until the sweep", async () => {
  const leaky = `location /leak { access_by_lua_block { require("resty.autoscale").access("api") } content_by_lua_block { ngx.say("no log handler here") } }`;
  const gw = await startGateway({ metrics: { inflight_max_age: 3 }, pools: { api: pool(backends.ports) }, routes: [{ name: "api", match: { prefix: "/api" }, pool: "api" }] }, { workers: 2, extraServer: leaky });
  try {
    const total = (s: any) => (s.request_contexts as number[]).reduce((n, v) => n + v, 0);
    await send(`${gw.url}/api/x`, 40, 4);
    const idle = await eventually("both workers counted", 5000, async () => {
      const s = await gw.status();
      return s.request_contexts.length === 2 && s.request_contexts.every((v: number) => v === 0) ? s : undefined;
    });
    assert.deepEqual(idle.request_contexts, [0, 0], "every proxied request's context was taken by its log phase");
    const statuses = await send(`${gw.url}/leak`, 6, 2);
    assert.deepEqual([...new Set(statuses)], [200]);
    // A later request at the same address replaces a leaked context, so the count is between 1 and 6.
    const leaked = await eventually("the leaked contexts show", 3000, async () => {
      const n = total(await gw.status());
      return n > 0 ? n : undefined;
    });
    assert.ok(leaked <= 6, `${leaked} contexts for 6 requests`);
    // inflight_max_age 3 s: the 1 s sweep drops them between 3 and 5 s after they started.
    await eventually("the sweep drops them", 8000, async () => (total(await gw.status()) === 0 ? true : undefined));
  } finally {
    await gw.stop();
  }
});

test("traffic shifts away from the slow peer within seconds", async (t) => {
  const gw = await startGateway({ metrics: { windows: [3, 60] }, pools: { api: pool(backends.ports) }, routes: [{ name: "api", match: { prefix: "/" }, pool: "api" }] });
  try {
    const traffic = startTraffic(`${gw.url}/x`, 16);
    t.after(() => traffic.stop());
    const status = await eventually("slow peer's share falls", 15000, async () => {
      const s = await gw.status();
      const [a, b, slow] = s.pools.api.peers;
      return slow.share * 3 < a.share && slow.share * 3 < b.share ? s : undefined;
    });
    await sleep(3500);
    const after = await gw.status();
    await traffic.stop();
    const peers = after.pools.api.peers;
    const total = peers.reduce((n: number, p: any) => n + p.windows["3s"].requests, 0);
    const slowShare = peers[2].windows["3s"].requests / total;
    assert.ok(total > 100, `enough traffic in the window (${total})`);
    assert.ok(slowShare < 0.2, `slow peer share ${slowShare.toFixed(3)} < 0.2 (shares ${peers.map((p: any) => p.share.toFixed(3))}, costs ${peers.map((p: any) => p.cost_ms)} ms)`);
    assert.ok(status.pools.api.peers[2].windows["3s"].meanLatency > 0.04);
  } finally {
    await gw.stop();
  }
});

test("sends a scale signal to the webhook, and retries it after a failure", async () => {
  const hookPort = await freePort();
  const receiver: WebhookReceiver = await startWebhookReceiver(hookPort);
  receiver.answerStatus = 500;
  let attempts = 0;
  receiver.server.on("request", () => attempts++);
  const gw = await startGateway({
    metrics: { windows: [2, 60] },
    pools: {
      api: pool(backends.ports, {
        scaling: { min_replicas: 1, max_replicas: 10, interval: 1, window: 2, target: { metric: "requests_per_second", value: 5 }, actuator: { type: "webhook", url: `http://127.0.0.1:${hookPort}/scale` } },
      }),
    },
    routes: [{ name: "api", match: { prefix: "/" }, pool: "api" }],
  });
  const traffic = startTraffic(`${gw.url}/x`, 8);
  try {
    await eventually("a failed attempt", 10000, async () => (attempts > 0 ? true : undefined));
    assert.equal(receiver.signals.length, 0);
    const failedDecision = (line: string) => line.includes("autoscale_event") && line.includes('"event":"action_failure"') && line.includes('"outcome":"failed"') && line.includes("webhook: HTTP 500");
    await eventually("the failure is logged", 3000, async () => (gw.errorLog().split("\n").some(failedDecision) ? true : undefined));
    receiver.answerStatus = 200;
    const signal = await eventually("a scale signal", 10000, async () => receiver.signals[0]);
    assert.equal(signal.path, "/scale");
    assert.equal(signal.headers["content-type"], "application/json");
    assert.equal(signal.body.pool, "api");
    assert.equal(signal.body.current, 3);
    // More than 50 req/s at 5 per replica needs the max of 10; HPA's default scale-up limit
    // (the larger of 4 pods and 100 % per 15 s) allows 3 + 4 first.
    assert.equal(signal.body.desired, 7);
    assert.equal(typeof signal.body.reason, "string");
    assert.equal(typeof signal.body.timestamp, "number");
    assert.match(String(signal.body.decision_id), /^api-\d+-\d+$/);
    const s = await gw.status();
    assert.equal(s.pools.api.scaling.last_decision.desired, 7);
    assert.equal(s.pools.api.scaling.last_action.outcome, "sent");
    assert.ok(s.pools.api.scaling.actions.failed >= 1);
    // The same desired value is not sent again while it holds.
    await sleep(2500);
    assert.equal(receiver.signals.length, 1);
  } finally {
    await traffic.stop();
    await gw.stop();
    await receiver.close();
  }
});

test("the admin API wants the bearer token when one is configured", async () => {
  const token = "s3cret-token-0123456789";
  const gw = await startGateway({ admin: { token }, pools: { api: pool(backends.ports) }, routes: [{ name: "api", match: { prefix: "/" }, pool: "api" }] });
  try {
    const none = await httpRequest(`${gw.adminUrl}/autoscale/status`);
    assert.equal(none.status, 401);
    assert.match(none.body, /bearer token/);
    const wrong = await httpRequest(`${gw.adminUrl}/autoscale/status`, { headers: { authorization: "Bearer nope-nope-nope-nope-nope" } });
    assert.equal(wrong.status, 401);
    const ok = await httpRequest(`${gw.adminUrl}/autoscale/status`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(ok.status, 200);
    assert.ok(JSON.parse(ok.body).pools.api);
    const unknown = await httpRequest(`${gw.adminUrl}/nothing`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(unknown.status, 404);
    assert.doesNotMatch(gw.errorLog(), new RegExp(token));
  } finally {
    await gw.stop();
  }
});

test("a bad config stops nginx start-up with a message naming the JSON path", async () => {
  const prefix = tempDir("bad");
  const configFile = join(prefix, "autoscale.json");
  const cfg = { listen: await freePort(), admin: { listen: `127.0.0.1:${await freePort()}` }, pools: { api: { peers: [{ host: "127.0.0.1", port: 8081 }, { host: "127.0.0.1", port: "80a" }] } }, routes: [{ name: "api", match: { prefix: "/" }, pool: "api" }] };
  writeFileSync(configFile, JSON.stringify(cfg));
  const nginx = startNginx(runtime, prefix, generateNginxConf(cfg as any, { prefix, runtime, workers: 1 }), { ...process.env, AUTOSCALE_CONFIG: configFile });
  let stderr = "";
  nginx.process.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
  const code = await Promise.race([nginx.exited, sleep(5000).then(() => -1)]);
  if (code === -1) await nginx.stop();
  assert.notEqual(code, 0, "nginx must refuse to start");
  assert.notEqual(code, -1, "nginx must exit by itself");
  assert.match(stderr, /pools\.api\.peers\[1\]\.port: expected integer 1-65535, got "80a"/);

  const cli = spawnSync(process.execPath, [join(projectRoot, "bin", "autoscale.js"), "validate", configFile], { encoding: "utf8" });
  assert.equal(cli.status, 1);
  assert.match(cli.stderr, /pools\.api\.peers\[1\]\.port: expected integer 1-65535, got "80a"/);
});
