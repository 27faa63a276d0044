// The control loop on real nginx: Kubernetes scale subresource over HTTPS (a CA made by the
// test), overload onset to scale signal, scale-in, TLS refusals, faults with retries, the
// breaker, dry run, and no secret in the error log.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync, chmodSync } from "node:fs";
import { join } from "node:path";
import { request as httpsRequest } from "node:https";
import { readFileSync } from "node:fs";
import { startTraffic } from "../../src/cli/traffic.js";
import { httpRequest } from "../../src/cli/http_util.js";
import { eventually, freePort, pool, sleep, startGateway, startTestBackends, tempDir, autoscaleEvents as events, assertNoLoopErrors } from "./harness.js";
import { json, makePki, Pki, startKubeApi, startServer } from "./control_servers.js";

let backends: Awaited<ReturnType<typeof startTestBackends>>;
let pki: Pki;
const TOKEN = "kube-token-Zq8wX2v9Lr4tPm6s";
let tokenFile: string;

before(async () => {
  backends = await startTestBackends([{ delay: 0.002 }, { delay: 0.002 }]);
  pki = makePki();
  const dir = tempDir("secrets");
  tokenFile = join(dir, "token");
  writeFileSync(tokenFile, TOKEN + "\n");
  chmodSync(tokenFile, 0o644);
});
after(async () => backends.stop());

function kubeActuator(url: string, extra: Record<string, unknown> = {}) {
  return { type: "kubernetes", api_url: url, namespace: "shop", name: "api", token: { file: tokenFile }, ...extra };
}

/** GET the scale subresource the way kubectl would (through the test CA). */
function getReplicas(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: "127.0.0.1", servername: "localhost", port, path: "/apis/apps/v1/namespaces/shop/deployments/api/scale", headers: { authorization: `Bearer ${TOKEN}` }, ca: readFileSync(pki.caFile) },
      (res) => {
        let body = "";
        res.on("data", (c) => (body += c));
        res.on("end", () => resolve(JSON.parse(body).spec.replicas));
      },
    );
    req.on("error", reject);
    req.end();
  });
}



test("Kubernetes over HTTPS: overload to scale-out in under 2 s, then scale-in, visible through GET", async (t) => {
  const kube = await startKubeApi({ namespace: "shop", name: "api", token: TOKEN, replicas: 1, tls: { cert: pki.cert, key: pki.key } });
  t.after(() => kube.close());
  // The API server's CA comes from the actuator's ca_file (as the service account's ca.crt in a pod).
  const gw = await startGateway({
    pools: {
      api: pool(backends.ports, {
        scaling: {
          min_replicas: 1,
          max_replicas: 6,
          target: { metric: "requests_per_second", value: 20 },
          behavior: { scale_down: { stabilization_window: 0 } },
          actuator: kubeActuator(kube.url, { ca_file: pki.caFile }),
        },
      }),
    },
    routes: [{ name: "api", match: { prefix: "/" }, pool: "api" }],
  });
  t.after(() => gw.stop());
  // The loop has read the orchestrator's count before the load starts.
  await eventually("current replicas read", 10000, async () => ((await gw.status()).pools.api.scaling.last_decision?.current === 1 ? true : undefined));
  const onset = Date.now();
  const traffic = startTraffic(`${gw.url}/x`, 8);
  try {
    const first = await eventually("a scale-out PATCH", 10000, async () => kube.patches[0]);
    const reaction = first.at - onset;
    t.diagnostic(`overload onset to scale signal: ${reaction} ms`);
    assert.ok(reaction < 2000, `scale signal ${reaction} ms after the overload started`);
    assert.ok(first.replicas > 1);
    assert.equal(await getReplicas(kube.port), kube.replicas);
  } finally {
    await traffic.stop();
  }
  const out = kube.replicas;
  assert.ok(out > 1);
  // No traffic: the window empties, and the pool goes back to min_replicas.
  await eventually("scale-in to 1", 40000, async () => (kube.replicas === 1 ? true : undefined));
  assert.equal(await getReplicas(kube.port), 1);
  assert.deepEqual(kube.refusals, []);
  const log = gw.errorLog();
  assert.ok(!log.includes(TOKEN), "the bearer token never reaches the error log");
  assertNoLoopErrors(log);
  const actions = events(log, "action");
  assert.ok(actions.some((a) => a.desired > 1) && actions.some((a) => a.desired === 1));
  const decision = events(log, "decision").find((d) => d.action === "send");
  assert.equal(decision.inputs.current, decision.current);
  assert.ok(decision.rules.length >= 1);
  const s = await gw.status();
  assert.equal(s.control.mode, "single");
  assert.equal(s.pools.api.scaling.last_action.outcome, "sent");
  assert.equal(s.pools.api.scaling.actions.sent, kube.patches.length);
});

test("overload of a pool of fixed capacity: demand beyond it to scale signal in under 2 s (defaults)", async (t) => {
  // Two replicas that each serve 2 requests at once in 50 ms (80 requests/s in all); the policy
  // wants at most 2 requests in flight per replica. 2 clients fit; 16 overload the pool.
  const fixed = await startTestBackends([{ delay: 0.05, capacity: 2 }, { delay: 0.05, capacity: 2 }]);
  t.after(() => fixed.stop());
  const hook = await startServer((_r, res) => json(res, 200, { ok: true }));
  t.after(() => hook.close());
  const gw = await startGateway({
    pools: { api: pool(fixed.ports, { scaling: { min_replicas: 2, max_replicas: 8, target: { metric: "in_flight", value: 2 }, actuator: { type: "webhook", url: `${hook.url}/scale` } } }) },
    routes: [{ name: "api", match: { prefix: "/" }, pool: "api" }],
  });
  t.after(() => gw.stop());
  const light = startTraffic(`${gw.url}/x`, 2);
  let heavy: ReturnType<typeof startTraffic> | undefined;
  try {
    await eventually("the loop runs with the pool within capacity", 10000, async () => {
      const d = (await gw.status()).pools.api.scaling.last_decision;
      return d?.current === 2 && d.action === "unchanged" && d.time * 1000 > Date.now() - 1500 ? true : undefined;
    });
    assert.equal(hook.requests.length, 0, "no signal while the demand fits");
    const onset = Date.now();
    heavy = startTraffic(`${gw.url}/x`, 14);
    const first = await eventually("a scale-out signal", 10000, async () => hook.requests[0]);
    const reaction = first.at - onset;
    t.diagnostic(`fixed capacity: overload onset to scale signal ${reaction} ms`);
    assert.ok(reaction < 2000, `scale signal ${reaction} ms after the overload started`);
    const body = JSON.parse(first.body);
    assert.equal(body.current, 2);
    assert.ok(body.desired > 2 && body.desired <= 8, `desired ${body.desired}`);
  } finally {
    const stats = [await light.stop(), ...(heavy ? [await heavy.stop()] : [])];
    for (const st of stats) assert.equal(st.errors, 0);
  }
  assertNoLoopErrors(gw.errorLog());
});

test("TLS: a good certificate is accepted, a wrong CA or a wrong name is refused", async (t) => {
  const good = await startServer((_r, res) => json(res, 200, { ok: true }), { cert: pki.cert, key: pki.key });
  const wrongName = await startServer((_r, res) => json(res, 200, { ok: true }), { cert: pki.wrongNameCert, key: pki.wrongNameKey });
  t.after(() => good.close());
  t.after(() => wrongName.close());
  // min_replicas 2 with one peer: each pool asks for a second replica at once.
  const scaling = (url: string) => ({ min_replicas: 2, max_replicas: 3, target: { metric: "requests_per_second", value: 50 }, actuator: { type: "webhook", url: `${url}/scale`, retry: { attempts: 1 } } });
  const gw = await startGateway({
    tls: { ca_file: pki.caFile },
    pools: { good: pool([backends.ports[0]], { scaling: scaling(good.url) }), badname: pool([backends.ports[1]], { scaling: scaling(wrongName.url) }) },
    routes: [{ name: "r", match: { prefix: "/" }, pool: "good" }],
  });
  t.after(() => gw.stop());
  const gwOtherCa = await startGateway({
    tls: { ca_file: pki.otherCaFile },
    pools: { good: pool([backends.ports[0]], { scaling: scaling(good.url) }) },
    routes: [{ name: "r", match: { prefix: "/" }, pool: "good" }],
  });
  t.after(() => gwOtherCa.stop());
  await eventually("the good server got the signal", 10000, async () => (good.requests.length === 1 ? true : undefined));
  const failures = await eventually("both refusals logged", 10000, async () => {
    const a = events(gw.errorLog(), "action_failure").filter((e) => e.pool === "badname");
    const b = events(gwOtherCa.errorLog(), "action_failure");
    return a.length > 0 && b.length > 0 ? [a[0], b[0]] : undefined;
  });
  assert.match(failures[0].error, /TLS handshake with localhost .*failed/);
  assert.match(failures[1].error, /TLS handshake with localhost .*failed/);
  assert.equal(wrongName.requests.length, 0);
  assert.equal(good.requests.length, 1, "only the gateway that trusts the right CA got through");
  assert.equal(JSON.parse(good.requests[0].body).desired, 2);
});

test("faults: 500, timeout, malformed JSON and refused connections are retried with backoff; no duplicate action; breaker and dry run", async (t) => {
  const kube = await startKubeApi({ namespace: "shop", name: "api", token: TOKEN, replicas: 1 });
  t.after(() => kube.close());
  kube.faults.push(500, "hang", "garbage");
  const closedPort = await freePort();
  const dir = tempDir("secrets2");
  const wrongToken = "wrong-token-Hk3vQ9zP7mW2";
  writeFileSync(join(dir, "token"), wrongToken);
  chmodSync(join(dir, "token"), 0o644);
  // The API echoes a refused token in its error message: redaction must catch it.
  const echo = await startServer((r, res) =>
    r.method === "GET"
      ? json(res, 200, { kind: "Scale", spec: { replicas: 1 } })
      : json(res, 401, { kind: "Status", message: `token ${String(r.headers.authorization).slice(7)} is not valid`, reason: "Unauthorized", code: 401 }),
  );
  t.after(() => echo.close());
  const retry = { attempts: 3, base_ms: 50, max_ms: 200 };
  const gw = await startGateway({
    pools: {
      api: pool([backends.ports[0]], { scaling: { min_replicas: 2, max_replicas: 4, target: { metric: "requests_per_second", value: 50 }, actuator: kubeActuator(kube.url, { timeout_ms: 400, retry }) } }),
      dead: pool([backends.ports[1]], { scaling: { min_replicas: 2, max_replicas: 4, target: { metric: "requests_per_second", value: 50 }, actuator: { type: "webhook", url: `http://127.0.0.1:${closedPort}/x`, retry, breaker: { failures: 2, open_seconds: 60 } } } }),
      denied: pool([backends.ports[1]], { scaling: { min_replicas: 2, max_replicas: 4, target: { metric: "requests_per_second", value: 50 }, actuator: { type: "kubernetes", api_url: echo.url, namespace: "shop", name: "api", token: { file: join(dir, "token") } } } }),
      dry: pool([backends.ports[0]], { scaling: { min_replicas: 2, max_replicas: 4, target: { metric: "requests_per_second", value: 50 }, actuator: { type: "webhook", url: `http://127.0.0.1:${closedPort}/dry`, dry_run: true } } }),
    },
    routes: [{ name: "r", match: { prefix: "/" }, pool: "api" }],
  });
  t.after(() => gw.stop());
  await eventually("the Deployment scaled to 2", 15000, async () => (kube.replicas === 2 ? true : undefined));
  await eventually("the dead actuator's breaker opened", 15000, async () => ((await gw.status()).pools.dead.scaling.loop?.breaker === "open" ? true : undefined));
  await sleep(2500);
  const log = gw.errorLog();
  // 500 and the timeout were retried, the malformed answer ended the first action; the next one
  // went through: one accepted change, never sent twice once applied.
  assert.equal(kube.patches.length, 1);
  assert.equal(kube.patches[0].replicas, 2);
  const retries = events(log, "action_retry").filter((e) => e.pool === "api");
  assert.ok(retries.length >= 2, `retries: ${retries.length}`);
  assert.ok(retries.every((r) => r.wait_ms >= 0 && r.wait_ms <= 200));
  assert.match(retries[0].error, /HTTP 500/);
  assert.match(retries[1].error, /timeout/);
  const apiFailures = events(log, "action_failure").filter((e) => e.pool === "api");
  assert.match(apiFailures[0].error, /not valid JSON|not a Scale/);
  const dead = events(log, "action_failure").filter((e) => e.pool === "dead");
  assert.ok(dead.length >= 2 && dead.every((e) => /connect to 127.0.0.1:\d+ failed: connection refused/.test(e.error)));
  const s = await gw.status();
  assert.ok(s.pools.dead.scaling.actions.breaker_open >= 1);
  assert.equal(s.pools.dead.scaling.actions.sent, 0);
  // 401 is not retried, and the echoed token is redacted.
  const denied = events(log, "action_failure").filter((e) => e.pool === "denied");
  assert.ok(denied.length >= 1);
  assert.equal(denied[0].attempts, 1);
  assert.match(denied[0].error, /\[REDACTED\]/);
  assert.ok(!log.includes(wrongToken) && !log.includes(TOKEN), "no token in the error log");
  // The counters on /metrics (Prometheus text).
  const metrics = (await httpRequest(`${gw.adminUrl}/metrics`)).body;
  assert.match(metrics, new RegExp(`^autoscale_scale_actions_total\\{pool="api",outcome="sent"\\} 1$`, "m"));
  assert.match(metrics, new RegExp(`^autoscale_scale_actions_total\\{pool="dead",outcome="failed"\\} ${s.pools.dead.scaling.actions.failed}$`, "m"));
  assert.match(metrics, /^autoscale_control_mode\{mode="single"\} 1$/m);
  // Dry run: logged once, never sent.
  assert.equal(s.pools.dry.scaling.actions.dry_run, 1);
  assert.equal(s.pools.dry.scaling.last_action.outcome, "dry_run");
  assertNoLoopErrors(log);
});

test("scale-in drains the peers that go away before the signal; no request fails", async (t) => {
  const slow = await startTestBackends([{ delay: 0.2 }, { delay: 0.2 }, { delay: 0.2 }]);
  t.after(() => slow.stop());
  const hook = await startServer((_r, res) => json(res, 200, { ok: true }));
  t.after(() => hook.close());
  const gw = await startGateway({
    pools: {
      api: pool(slow.ports, {
        balancer: "round_robin",
        scaling: { min_replicas: 1, max_replicas: 3, target: { metric: "requests_per_second", value: 1000 }, behavior: { scale_down: { stabilization_window: 0 } }, actuator: { type: "webhook", url: `${hook.url}/scale` } },
      }),
    },
    routes: [{ name: "api", match: { prefix: "/" }, pool: "api" }],
  });
  t.after(() => gw.stop());
  const traffic = startTraffic(`${gw.url}/x`, 6);
  let stats;
  try {
    await eventually("the scale-in signal", 15000, async () => hook.requests[0]);
    await sleep(1000);
  } finally {
    stats = await traffic.stop();
  }
  assert.equal(stats.errors, 0);
  assert.deepEqual(Object.keys(stats.byStatus), ["200"], "no request failed while peers were drained");
  const log = gw.errorLog();
  const drain = events(log, "drain")[0];
  assert.ok(drain, "a drain event");
  assert.equal(drain.drained, true);
  assert.deepEqual(drain.peers, [`127.0.0.1:${slow.ports[2]}`, `127.0.0.1:${slow.ports[1]}`]);
  const signal = hook.requests[0];
  assert.equal(JSON.parse(signal.body).desired, 1);
  assert.ok(signal.at >= Math.floor(drain.time * 1000) - 5, "the orchestrator hears of the scale-in after the drain");
  const action = events(log, "action")[0];
  assert.deepEqual(action.drained, drain.peers);
  const s = await gw.status();
  assert.deepEqual(s.pools.api.peers.map((p: any) => p.address), [`127.0.0.1:${slow.ports[0]}`]);
  assertNoLoopErrors(log);
});

test("peers follow a Service's EndpointSlices: new ones join, vanished ones drain and leave; no request fails", async (t) => {
  const three = await startTestBackends([{ delay: 0.05 }, { delay: 0.05 }, { delay: 0.05 }]);
  t.after(() => three.stop());
  const [a, b, c] = three.ports;
  let ready = [b, c];
  const slice = (port: number) => ({ kind: "EndpointSlice", addressType: "IPv4", ports: [{ name: "http", port, protocol: "TCP" }], endpoints: [{ addresses: ["127.0.0.1"], conditions: { ready: true } }] });
  const api = await startServer((r, res) => {
    if (r.headers.authorization !== `Bearer ${TOKEN}`) return json(res, 401, { kind: "Status", code: 401 });
    if (r.path !== "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dapi") return json(res, 404, { kind: "Status", code: 404 });
    return json(res, 200, { kind: "EndpointSliceList", apiVersion: "discovery.k8s.io/v1", items: [...ready.map(slice), { ...slice(9), endpoints: [{ addresses: ["127.0.0.1"], conditions: { ready: false } }] }] });
  });
  t.after(() => api.close());
  const gw = await startGateway({
    pools: { api: pool([a], { balancer: "round_robin", discovery: { type: "kubernetes", service: "api", namespace: "shop", port: "http", api_url: api.url, token: { file: tokenFile }, interval: 0.5 } }) },
    routes: [{ name: "api", match: { prefix: "/" }, pool: "api" }],
  });
  t.after(() => gw.stop());
  const traffic = startTraffic(`${gw.url}/x`, 4);
  const addresses = async () => ((await gw.status()).pools.api.peers as any[]).map((p) => p.address).sort();
  let stats;
  try {
    await eventually("the discovered peers replace the configured one", 10000, async () => {
      const list = await addresses();
      return JSON.stringify(list) === JSON.stringify([`127.0.0.1:${b}`, `127.0.0.1:${c}`].sort()) ? true : undefined;
    });
    ready = [c];
    await eventually("the vanished peer drains and leaves", 10000, async () => {
      const list = await addresses();
      return JSON.stringify(list) === JSON.stringify([`127.0.0.1:${c}`]) ? true : undefined;
    });
  } finally {
    stats = await traffic.stop();
  }
  assert.equal(stats.errors, 0);
  assert.deepEqual(Object.keys(stats.byStatus), ["200"]);
  const log = gw.errorLog();
  const moves = events(log, "discovery");
  assert.ok(moves.some((m) => m.added?.length === 2 && m.draining?.includes(`127.0.0.1:${a}`)));
  assert.ok(moves.some((m) => (m.removed ?? []).includes(`127.0.0.1:${b}`)));
  assert.ok(!log.includes(TOKEN));
  assertNoLoopErrors(log);
});

test("the worker running the loop is SIGKILLed: another worker takes over within one interval", async (t) => {
  const hook = await startServer((_r, res) => json(res, 200, { ok: true }));
  t.after(() => hook.close());
  const gw = await startGateway(
    {
      pools: {
        // One peer and min_replicas 2: the loop asks for 2, and again every resend_interval.
        api: pool([backends.ports[0]], { scaling: { min_replicas: 2, max_replicas: 3, target: { metric: "requests_per_second", value: 1000 }, actuator: { type: "webhook", url: `${hook.url}/scale`, resend_interval: 1 } } }),
      },
      routes: [{ name: "api", match: { prefix: "/" }, pool: "api" }],
    },
    { workers: 2 },
  );
  t.after(() => gw.stop());
  await eventually("a first signal", 10000, async () => hook.requests[0]);
  const before = await gw.status();
  const worker: number = before.control.worker;
  assert.ok(Number.isInteger(worker) && worker !== gw.nginx.process.pid, "the status names the loop's worker");
  const killedAt = Date.now();
  process.kill(worker, "SIGKILL");
  const after = await eventually("a decision by another worker", 10000, async () => {
    const s = await gw.status().catch(() => undefined);
    return s && s.control.worker !== worker && s.pools.api.scaling.last_decision.time * 1000 > killedAt ? s : undefined;
  });
  const takeover = after.pools.api.scaling.last_decision.time * 1000 - killedAt;
  t.diagnostic(`worker takeover: first decision ${Math.round(takeover)} ms after SIGKILL`);
  // The lease lives 0.75 s and is claimed every 0.25 s; the new holder evaluates at once.
  assert.ok(takeover <= 1000 + 250, `takeover took ${takeover} ms`);
  await eventually("signals go on", 5000, async () => (hook.requests.some((r) => r.at > killedAt) ? true : undefined));
  assert.ok(hook.requests.every((r) => JSON.parse(r.body).desired === 2));
  assert.equal(after.control.mode, "single");
  assertNoLoopErrors(gw.errorLog());
});

test("scale-out with health checks: an added peer is out of rotation until its probes pass", async (t) => {
  const be = await startTestBackends([{ delay: 0.005 }, { delay: 0.005 }]);
  t.after(() => be.stop());
  const [a, fresh] = be.ports;
  const dead = await freePort(); // a replica that never comes up
  const gw = await startGateway({
    pools: { api: pool([a], { balancer: { algorithm: "round_robin", health_check: { path: "/", interval: 0.2, timeout: 0.2, rise: 2, fall: 2 } } }) },
    routes: [{ name: "api", match: { prefix: "/" }, pool: "api" }],
  });
  t.after(() => gw.stop());
  const traffic = startTraffic(`${gw.url}/x`, 4);
  const peerOf = async (port: number) => ((await gw.status()).pools.api.peers as any[]).find((p) => p.address === `127.0.0.1:${port}`);
  let stats;
  try {
    for (const port of [dead, fresh]) {
      const r = await httpRequest(`${gw.adminUrl}/autoscale/pools/api/peers`, { method: "POST", body: JSON.stringify({ host: "127.0.0.1", port }), headers: { "content-type": "application/json" } });
      assert.equal(r.status, 201);
      // Before any probe: out of rotation (added as healthy, it would take its share at once).
      const added = JSON.parse(r.body).peers.find((p: any) => p.port === port);
      assert.equal(added.healthy, false);
    }
    const joined = await eventually("the live replica passes its probes", 5000, async () => {
      const p = await peerOf(fresh);
      return p?.healthy === true ? p : undefined;
    });
    assert.ok(joined);
    await sleep(1000);
    assert.equal((await peerOf(dead)).healthy, false, "the replica that never answered stays out");
  } finally {
    stats = await traffic.stop();
  }
  assert.equal(stats.errors, 0);
  assert.deepEqual(Object.keys(stats.byStatus), ["200"]);
});
