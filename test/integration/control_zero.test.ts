// Scale to zero and back on real nginx (issue 6): an idle pool is scaled to 0 after the idle
// time and its last peer leaves the pool (removed through the membership API, as discovery
// does when the orchestrator took the replica away; the drain keeps the last peer); a request
// to the empty pool counts as demand through its route's figures, and the policy sends 1.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { httpRequest } from "../../src/cli/http_util.js";
import { eventually, pool, sleep, startGateway, startTestBackends, autoscaleEvents } from "./harness.js";
import { json, startServer, TestServer } from "./control_servers.js";

let backends: Awaited<ReturnType<typeof startTestBackends>>;
let hooks: TestServer;

before(async () => {
  backends = await startTestBackends([{ delay: 0 }]);
  hooks = await startServer((_r, res) => json(res, 200, { ok: true }));
});
after(async () => {
  await hooks.close();
  await backends.stop();
});


test("idle pool scales to 0, the first request wakes it: a signal to 1 within the evaluation interval", async (t) => {
  const INTERVAL = 1;
  const IDLE = 2;
  const gw = await startGateway({
    pools: {
      api: pool(backends.ports, {
        scaling: {
          min_replicas: 0,
          max_replicas: 3,
          interval: INTERVAL,
          target: { metric: "requests_per_second", value: 100 },
          scale_to_zero: { idle: IDLE, hold_timeout: 0 },
          actuator: { type: "webhook", url: `${hooks.url}/scale` },
        },
      }),
    },
    routes: [{ name: "api", match: { prefix: "/" }, pool: "api" }],
  });
  t.after(() => gw.stop());
  const signals = () => hooks.requests.filter((r) => r.path === "/scale").map((r) => JSON.parse(r.body));

  // 1. No traffic: after the idle time the policy sends 0; the replica goes, and so does its peer.
  const zero = await eventually("a scale-to-zero signal", 15000, async () => signals().find((s) => s.desired === 0));
  assert.equal(zero.current, 1);
  const del = await httpRequest(`${gw.adminUrl}/autoscale/pools/api/peers/127.0.0.1:${backends.ports[0]}`, { method: "DELETE" });
  assert.equal(del.status, 200, del.body);
  await eventually("the pool has no peer left", 10000, async () => (Object.keys((await gw.status()).pools.api.peers).length === 0 ? true : undefined));
  const idle = autoscaleEvents(gw.errorLog(), "decision").find((d) => d.desired === 0 && d.action === "send");
  assert.equal(idle.winner, "scale_to_zero");
  assert.equal(idle.reason, `idle for ${IDLE} s`);
  // At zero, nothing else is asked for while nobody calls.
  await eventually("a decision at zero", 10000, async () => ((await gw.status()).pools.api.scaling.last_decision?.reason === "idle at zero" ? true : undefined));
  assert.equal(signals().length, 1);

  // 2. A request arrives at the empty pool: with hold_timeout 0 it is answered at once (503,
  // Retry-After), and counts.
  const sentAt = Date.now();
  const res = await httpRequest(`${gw.url}/wake`);
  assert.equal(res.status, 503);
  assert.equal(res.headers["retry-after"], "1");
  const one = await eventually("a scale signal to 1", 10000, async () => signals().find((s) => s.desired === 1));
  const wakeMs = Date.now() - sentAt;
  t.diagnostic(`request at zero to scale signal 1: about ${wakeMs} ms (evaluation interval ${INTERVAL} s, metrics flush 1 s)`);
  assert.equal(one.current, 0);
  assert.equal(signals().length, 2, "one signal to 0, one to 1");
  const wake = autoscaleEvents(gw.errorLog(), "decision").find((d) => d.desired === 1 && d.action === "send");
  assert.equal(wake.current, 0);
  assert.equal(wake.winner, "scale_to_zero");
  assert.equal(wake.reason, "activation: traffic at zero replicas");
  assert.ok(wake.inputs.requests_per_second > 0, "the route's request is the pool's demand");

  // 3. The orchestrator brings a replica up (here: through the membership API): requests are served again.
  const add = await httpRequest(`${gw.adminUrl}/autoscale/pools/api/peers`, { method: "POST", body: JSON.stringify({ host: "127.0.0.1", port: backends.ports[0] }) });
  assert.ok(add.status === 200 || add.status === 201, `add peer: ${add.status} ${add.body}`);
  await eventually("served again", 10000, async () => ((await httpRequest(`${gw.url}/again`)).status === 200 ? true : undefined));
  assert.doesNotMatch(gw.errorLog(), /control loop failed|stack traceback/);
});

test("held at zero: the request waits for the first peer and is served; with none in hold_timeout, 503 and Retry-After", async (t) => {
  let adminUrl = "";
  // The orchestrator: on a signal to 1 for pool api, its replica (the backend) joins the pool.
  const orchestrator = await startServer((r, res) => {
    json(res, 200, { ok: true });
    const body = JSON.parse(r.body);
    if (r.path === "/api" && body.desired === 1) {
      void httpRequest(`${adminUrl}/autoscale/pools/api/peers`, { method: "POST", body: JSON.stringify({ host: "127.0.0.1", port: backends.ports[0] }) });
    }
  });
  t.after(() => orchestrator.close());
  const scaling = (name: string, holdTimeout: number) => ({
    min_replicas: 0,
    max_replicas: 3,
    interval: 1,
    target: { metric: "requests_per_second", value: 100 },
    scale_to_zero: { idle: 2, hold_timeout: holdTimeout },
    actuator: { type: "webhook", url: `${orchestrator.url}/${name}` },
  });
  const gw = await startGateway(
    {
      pools: { api: pool(backends.ports, { scaling: scaling("api", 20) }), cold: pool(backends.ports, { scaling: scaling("cold", 1) }) },
      routes: [
        { name: "api", match: { prefix: "/api/" }, pool: "api" },
        { name: "cold", match: { prefix: "/cold/" }, pool: "cold" },
      ],
    },
  );
  t.after(() => gw.stop());
  adminUrl = gw.adminUrl;
  const signals = (name: string) => orchestrator.requests.filter((r) => r.path === `/${name}`).map((r) => JSON.parse(r.body));
  await eventually("both pools scaled to zero", 15000, async () => (signals("api").some((s) => s.desired === 0) && signals("cold").some((s) => s.desired === 0) ? true : undefined));
  for (const name of ["api", "cold"]) {
    const del = await httpRequest(`${gw.adminUrl}/autoscale/pools/${name}/peers/127.0.0.1:${backends.ports[0]}`, { method: "DELETE" });
    assert.equal(del.status, 200, del.body);
  }
  await sleep(1500); // every worker's balancer takes the empty membership (1 s ticker)

  const held = await httpRequest(`${gw.url}/api/x`, { timeoutMs: 25000 });
  assert.equal(held.status, 200, "served once the first replica joined");
  const wake = signals("api").find((s) => s.desired === 1);
  assert.ok(wake !== undefined, "the held request itself woke the pool");
  assert.equal(wake.current, 0);

  const cold = await httpRequest(`${gw.url}/cold/x`, { timeoutMs: 10000 });
  assert.equal(cold.status, 503);
  assert.equal(cold.headers["retry-after"], "1");
  assert.doesNotMatch(gw.errorLog(), /control loop failed|stack traceback/);
});
