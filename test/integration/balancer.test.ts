// The adaptive balancer end to end: real nginx (two workers), real backends. The admin API's
// membership endpoints (validation, propagation to every worker, drain, reload), a slow peer per
// algorithm, a peer killed under load, and a peer added under load with slow start.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { httpRequest } from "../../src/cli/http_util.js";
import { startBackends } from "../../src/cli/backends.js";
import { NginxHandle } from "../../src/cli/nginx.js";
import { eventually, freePort, runtime, sleep, startGateway, startTestBackends, tempDir, Gateway } from "./harness.js";
import { startLoad, summarize, UPSTREAM_HEADER } from "../../bench/balancer_load.js";

let fast: Awaited<ReturnType<typeof startTestBackends>>;
let slowBackend: NginxHandle;
/** A peer answering after 2 s, for drains (too slow for startTestBackends' readiness probe). */
let slowPort = 0;

before(async () => {
  fast = await startTestBackends([{ delay: 0.005 }, { delay: 0.005 }, { delay: 0.005 }]);
  slowPort = await freePort();
  slowBackend = startBackends(runtime, tempDir("slow"), [{ port: slowPort, delay: 2 }]);
  await sleep(500);
});
after(async () => {
  await fast.stop();
  await slowBackend.stop();
});

const peer = (port: number, weight = 1) => ({ host: "127.0.0.1", port, weight });

async function admin(gw: Gateway, method: string, path: string, body?: string) {
  const r = await httpRequest(`${gw.adminUrl}${path}`, { method, body, headers: body === undefined ? {} : { "content-type": "application/json" } });
  return { status: r.status, json: r.body ? JSON.parse(r.body) : undefined };
}

async function servedBy(gw: Gateway, path: string, n: number): Promise<Map<number, number>> {
  const counts = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    // A new connection each time, so requests spread over both workers.
    const r = await httpRequest(`${gw.url}${path}`, { headers: { connection: "close" } });
    assert.equal(r.status, 200, r.body);
    const port = Number(/^backend (\d+)/.exec(r.body)?.[1]);
    counts.set(port, (counts.get(port) ?? 0) + 1);
  }
  return counts;
}

test("admin API: bad input gets 400 naming the field, and changes nothing", async () => {
  const [a, b] = fast.ports;
  const gw = await startGateway({ pools: { api: { peers: [peer(a), peer(b)] } }, routes: [{ name: "api", match: { prefix: "/" }, pool: "api" }] });
  try {
    const before = await admin(gw, "GET", "/autoscale/pools/api/peers");
    assert.equal(before.status, 200);
    assert.equal(before.json.version, 1);
    assert.deepEqual(
      before.json.peers.map((p: any) => [p.address, p.weight, p.state, p.healthy]),
      [[`127.0.0.1:${a}`, 1, "up", true], [`127.0.0.1:${b}`, 1, "up", true]],
    );
    const cases: [string, string, string | undefined, RegExp][] = [
      ["POST", "/autoscale/pools/web/peers", `{"host":"127.0.0.1","port":${a}}`, /^pool: unknown pool "web"/],
      ["POST", "/autoscale/pools/api/peers", `{"host":"backend.local","port":8080}`, /^host: expected an IPv4 or IPv6 address/],
      ["POST", "/autoscale/pools/api/peers", `{"host":"127.0.0.1","port":0}`, /^port: expected integer 1-65535, got 0/],
      ["POST", "/autoscale/pools/api/peers", `{"host":"127.0.0.1","port":70000}`, /^port: expected integer 1-65535, got 70000/],
      ["POST", "/autoscale/pools/api/peers", `{"host":"127.0.0.1","port":9,"weight":-1}`, /^weight: expected integer 0-1000, got -1/],
      ["POST", "/autoscale/pools/api/peers", `{"host":"127.0.0.1","port":9,"wieght":2}`, /^wieght: unknown field/],
      ["POST", "/autoscale/pools/api/peers", `{"host":"127.0.0.1",`, /^body: expected a JSON object, got malformed JSON/],
      ["POST", "/autoscale/pools/api/peers", undefined, /^body: expected a JSON object, got nothing/],
      ["POST", "/autoscale/pools/api/peers", `{"host":"127.0.0.1","port":${a}}`, /^host: peer 127\.0\.0\.1:\d+ is already in pool "api"/],
      ["POST", `/autoscale/pools/api/peers/127.0.0.1:${a}/weight`, `{"weight":-5}`, /^weight: expected integer 0-1000, got -5/],
      ["POST", `/autoscale/pools/api/peers/127.0.0.1:${a}/weight`, `{"weight":"3"}`, /^weight: expected integer 0-1000, got "3"/],
      ["POST", `/autoscale/pools/api/peers/127.0.0.1:${a}/weight`, `{}`, /^weight: required integer 0-1000 is missing/],
      ["POST", `/autoscale/pools/api/peers/127.0.0.1:${a}/weight`, `[1,2`, /^body: expected a JSON object, got malformed JSON/],
      ["POST", "/autoscale/pools/api/peers/127.0.0.1:80a/drain", undefined, /^port: expected integer 1-65535, got "80a"/],
      ["POST", "/autoscale/pools/api/peers/10.0.0.300:80/down", undefined, /^host: expected an IPv4 or IPv6 address/],
      ["DELETE", "/autoscale/pools/api/peers/127.0.0.1:1", undefined, /^host: no peer 127\.0\.0\.1:1 in pool "api"/],
      ["DELETE", `/autoscale/pools/nope/peers/127.0.0.1:${a}`, undefined, /^pool: unknown pool "nope"/],
    ];
    for (const [method, path, body, message] of cases) {
      const r = await admin(gw, method, path, body);
      assert.equal(r.status, 400, `${method} ${path} ${body}: ${JSON.stringify(r.json)}`);
      assert.match(r.json.error, message, `${method} ${path} ${body}`);
    }
    const unknownAction = await admin(gw, "POST", `/autoscale/pools/api/peers/127.0.0.1:${a}/explode`);
    assert.equal(unknownAction.status, 404);
    const wrongMethod = await admin(gw, "PUT", "/autoscale/pools/api/peers");
    assert.equal(wrongMethod.status, 405);
    const afterAll = await admin(gw, "GET", "/autoscale/pools/api/peers");
    assert.deepEqual(afterAll.json, before.json, "nothing changed");
    const status = await gw.status();
    assert.equal(status.pools.api.membership_version, 1);
  } finally {
    await gw.stop();
  }
});

test("admin API: weight 0, removal and additions reach every worker within a second", async () => {
  const [a, b, c] = fast.ports;
  const gw = await startGateway({ pools: { api: { peers: [peer(a), peer(b)], balancer: "round_robin" } }, routes: [{ name: "api", match: { prefix: "/" }, pool: "api" }] }, { workers: 2 });
  try {
    assert.deepEqual([...(await servedBy(gw, "/x", 40)).keys()].sort(), [a, b].sort());

    const w = await admin(gw, "POST", `/autoscale/pools/api/peers/127.0.0.1:${a}/weight`, `{"weight":0}`);
    assert.equal(w.status, 200, JSON.stringify(w.json));
    assert.equal(w.json.version, 2);
    assert.equal(w.json.peers[0].weight, 0);
    await sleep(1000);
    assert.deepEqual([...(await servedBy(gw, "/x", 60)).keys()], [b], "no worker sends to a peer at weight 0");

    const added = await admin(gw, "POST", "/autoscale/pools/api/peers", `{"host":"127.0.0.1","port":${c},"weight":2}`);
    assert.equal(added.status, 201, JSON.stringify(added.json));
    assert.equal(added.json.version, 3);
    const removed = await admin(gw, "DELETE", `/autoscale/pools/api/peers/127.0.0.1:${b}`);
    assert.equal(removed.status, 200, JSON.stringify(removed.json));
    assert.deepEqual(removed.json.peers.map((p: any) => p.address), [`127.0.0.1:${a}`, `127.0.0.1:${c}`]);
    await sleep(1000);
    assert.deepEqual([...(await servedBy(gw, "/x", 60)).keys()], [c], "the removed peer gets nothing, the added one everything");

    // Down and up again.
    await admin(gw, "POST", `/autoscale/pools/api/peers/127.0.0.1:${a}/weight`, `{"weight":1}`);
    const down = await admin(gw, "POST", `/autoscale/pools/api/peers/127.0.0.1:${c}/down`);
    assert.equal(down.json.peers[1].state, "down");
    await sleep(1000);
    assert.deepEqual([...(await servedBy(gw, "/x", 40)).keys()], [a]);
    const up = await admin(gw, "POST", `/autoscale/pools/api/peers/127.0.0.1:${c}/up`);
    assert.equal(up.json.peers[1].state, "up");
    const status = await gw.status();
    assert.equal(status.pools.api.peers.length, 2);
  } finally {
    await gw.stop();
  }
});

test("admin API: a drained peer reports drained once its in-flight requests finish; state survives nginx -s reload", async () => {
  const [a] = fast.ports;
  const slow = slowPort;
  const gw = await startGateway({ pools: { api: { peers: [peer(slow), peer(a, 0)], balancer: "least_request" } }, routes: [{ name: "api", match: { prefix: "/" }, pool: "api" }] }, { workers: 2 });
  try {
    // Four requests in flight to the slow peer (2 s each), then a drain.
    const inflight = Array.from({ length: 4 }, () => httpRequest(`${gw.url}/slow`, { headers: { connection: "close" } }));
    await sleep(300);
    await admin(gw, "POST", `/autoscale/pools/api/peers/127.0.0.1:${a}/weight`, `{"weight":1}`);
    const drain = await admin(gw, "POST", `/autoscale/pools/api/peers/127.0.0.1:${slow}/drain`);
    assert.equal(drain.status, 200, JSON.stringify(drain.json));
    assert.equal(drain.json.peers[0].state, "draining");
    assert.equal(drain.json.peers[0].drained, false);
    const busy = await eventually("every worker reports", 3000, async () => {
      const r = await admin(gw, "GET", `/autoscale/pools/api/peers/127.0.0.1:${slow}`);
      return /in flight/.test(r.json.drain_wait ?? "") ? r.json : undefined;
    });
    assert.equal(busy.drained, false);
    assert.match(busy.drain_wait, /^4 request\(s\) in flight$/);
    // New requests go elsewhere while the old ones finish.
    assert.deepEqual([...(await servedBy(gw, "/x", 10)).keys()], [a]);
    const answers = await Promise.all(inflight);
    assert.deepEqual(answers.map((r) => r.status), [200, 200, 200, 200]);
    const done = await eventually("drained", 3000, async () => {
      const r = await admin(gw, "GET", `/autoscale/pools/api/peers/127.0.0.1:${slow}`);
      return r.json.drained === true ? r.json : undefined;
    });
    assert.equal(done.state, "draining");

    const before = await admin(gw, "GET", "/autoscale/pools/api/peers");
    const pid = Number(readFileSync(join(gw.prefix, "logs", "nginx.pid"), "utf8").trim());
    process.kill(pid, "SIGHUP"); // nginx -s reload
    await eventually("reloaded", 5000, async () => (/reconfiguring/.test(gw.errorLog()) ? true : undefined));
    await sleep(1000);
    const afterReload = await admin(gw, "GET", "/autoscale/pools/api/peers");
    assert.deepEqual(afterReload.json.peers.map((p: any) => [p.address, p.weight, p.state]), before.json.peers.map((p: any) => [p.address, p.weight, p.state]));
    assert.equal(afterReload.json.version, before.json.version);
    assert.deepEqual([...(await servedBy(gw, "/x", 20)).keys()], [a], "new workers keep the drain");
  } finally {
    await gw.stop();
  }
});

test("a slow peer: share and latency per algorithm (peak-EWMA keeps the slow peer under 15 %, latency ejection under 2 %)", async (t) => {
  const be = await startTestBackends([{ delay: 0.01 }, { delay: 0.01 }, { delay: 0.05 }]);
  const [f1, f2, slow] = be.ports;
  try {
    const results: Record<string, any> = {};
    // The algorithms on their own (latency ejection off), then peak-EWMA as configured by default.
    for (const name of ["round_robin", "least_request", "ewma", "ewma (latency ejection)", "ewma (two fast only)"]) {
      const peers = name.includes("two fast") ? [peer(f1), peer(f2)] : [peer(f1), peer(f2), peer(slow)];
      const algorithm = name.split(" ")[0];
      const balancer = name.includes("(") ? algorithm : { algorithm, outlier: { latency_factor: 0 } };
      const gw = await startGateway({ pools: { api: { peers, balancer } }, routes: [{ name: "api", match: { prefix: "/" }, pool: "api" }] }, { workers: 2 });
      try {
        const load = startLoad(`${gw.url}/x`, 16);
        await sleep(4000);
        await load.stop();
        const s = summarize(load.samples, 1000);
        results[name] = { requests: s.requests, p50_ms: s.p50_ms, p99_ms: s.p99_ms, slow_share: s.share[slow] ?? 0, errors: load.errors + s.non2xx };
        t.diagnostic(`${name.padEnd(24)} p50 ${s.p50_ms.toFixed(1)} ms  p99 ${s.p99_ms.toFixed(1)} ms  slow share ${((s.share[slow] ?? 0) * 100).toFixed(1)} %  (${s.requests} requests)`);
      } finally {
        await gw.stop();
      }
    }
    for (const r of Object.values(results)) assert.equal(r.errors, 0);
    assert.ok(results.ewma.slow_share < 0.15, `peak-EWMA slow share ${results.ewma.slow_share}`);
    assert.ok(results.round_robin.slow_share > 0.25, `round robin ignores speed: ${results.round_robin.slow_share}`);
    assert.ok(results.least_request.slow_share < results.round_robin.slow_share);
    // Ejected once it has 20 tries and is 3x slower than the median: a fraction of a second.
    assert.ok(results["ewma (latency ejection)"].slow_share < 0.02, `latency ejection: slow share ${results["ewma (latency ejection)"].slow_share}`);
  } finally {
    await be.stop();
  }
});

test("a peer killed under load stops getting tries within a second; retries absorb the failures", async (t) => {
  const alive = await startTestBackends([{ delay: 0.005 }, { delay: 0.005 }]);
  const doomed = await startTestBackends([{ delay: 0.005 }]);
  const dead = doomed.ports[0];
  const results: string[] = [];
  try {
    for (const algorithm of ["ewma", "round_robin"]) {
      const gw = await startGateway(
        { pools: { api: { peers: [peer(alive.ports[0]), peer(alive.ports[1]), peer(dead)], balancer: algorithm } }, routes: [{ name: "api", match: { prefix: "/" }, pool: "api" }] },
        { workers: 2, extraServer: UPSTREAM_HEADER },
      );
      try {
        const load = startLoad(`${gw.url}/x`, 16);
        await sleep(1500);
        let killedAt = 0;
        if (algorithm === "ewma") {
          void doomed.stop(); // SIGQUIT: stops listening at once, closes idle connections
          killedAt = performance.now() - load.t0;
        } else {
          // The second run starts with the peer already dead: it must be found out the same way.
          killedAt = 0;
        }
        await sleep(3000);
        await load.stop();
        const triedDead = load.samples.filter((s) => s.tried.includes(dead) && s.start >= killedAt);
        const lastTry = triedDead.length === 0 ? killedAt : Math.max(...triedDead.map((s) => s.end));
        const failed = load.samples.filter((s) => s.status !== 200).length + load.errors;
        const retried = load.samples.filter((s) => s.tried.length > 1).length;
        results.push(`${algorithm}: tries to the dead peer until ${(lastTry - killedAt).toFixed(0)} ms after the kill, ${triedDead.length} request(s) touched it, ${retried} retried, ${failed} client error(s) of ${load.samples.length}`);
        t.diagnostic(results[results.length - 1]);
        assert.equal(failed, 0, "every failed try was retried on a live peer");
        assert.ok(lastTry - killedAt < 1000, `${algorithm}: the dead peer got tries ${lastTry - killedAt} ms after the kill`);
      } finally {
        await gw.stop();
      }
    }
  } finally {
    await alive.stop();
    await doomed.stop();
  }
});

test("a peer added under load ramps up along the slow-start curve", async (t) => {
  const be = await startTestBackends([{ delay: 0.005 }, { delay: 0.005 }, { delay: 0.005 }]);
  const [a, b, added] = be.ports;
  const gw = await startGateway(
    { pools: { api: { peers: [peer(a), peer(b)], balancer: { algorithm: "round_robin", slow_start: { window: 5, aggression: 1, min_weight: 0.1 } } } }, routes: [{ name: "api", match: { prefix: "/" }, pool: "api" }] },
    { workers: 2 },
  );
  try {
    const load = startLoad(`${gw.url}/x`, 8);
    await sleep(1000);
    const r = await admin(gw, "POST", "/autoscale/pools/api/peers", `{"host":"127.0.0.1","port":${added}}`);
    assert.equal(r.status, 201);
    const addedAt = performance.now() - load.t0;
    await sleep(7000);
    await load.stop();
    const shares: number[] = [];
    for (let sec = 0; sec < 7; sec++) {
      const s = summarize(load.samples, addedAt + sec * 1000, addedAt + (sec + 1) * 1000);
      shares.push(s.share[added] ?? 0);
    }
    // Expected (round robin, weights 1:1:m): m / (2 + m), m = max(0.1, t / 5) at mid-second.
    const expected = [0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5].map((t) => Math.min(1, Math.max(0.1, t / 5))).map((m) => m / (2 + m));
    t.diagnostic(`share per second after the add: ${shares.map((s) => (100 * s).toFixed(1)).join(" ")} % (curve ${expected.map((s) => (100 * s).toFixed(1)).join(" ")} %)`);
    assert.ok(shares[0] < 0.15, `first second ${shares[0]}`);
    assert.ok(shares[0] < shares[2] && shares[2] < shares[4], `rising: ${shares}`);
    assert.ok(shares[6] > 0.28 && shares[6] < 0.4, `full share after the window: ${shares[6]}`);
    assert.equal(load.errors, 0);
  } finally {
    await gw.stop();
    await be.stop();
  }
});

test("active health checks: one checker marks a failing peer unhealthy and back; no peer left answers 502 at once", async () => {
  const be = await startTestBackends([{ delay: 0, switchable: true }, { delay: 0 }]);
  const [flaky, steady] = be.ports;
  const gw = await startGateway(
    {
      pools: { api: { peers: [peer(flaky), peer(steady)], balancer: { algorithm: "round_robin", health_check: { path: "/", interval: 0.2, timeout: 0.2, rise: 2, fall: 2 } } } },
      routes: [{ name: "api", match: { prefix: "/" }, pool: "api" }],
    },
    { workers: 2 },
  );
  try {
    await httpRequest(`http://127.0.0.1:${flaky}/__status?code=500`);
    const sick = await eventually("unhealthy", 5000, async () => {
      const r = await admin(gw, "GET", `/autoscale/pools/api/peers/127.0.0.1:${flaky}`);
      return r.json.healthy === false ? r.json : undefined;
    });
    assert.equal(sick.state, "up", "health does not touch the admin state");
    await sleep(1000);
    assert.deepEqual([...(await servedBy(gw, "/x", 30)).keys()], [steady]);
    await httpRequest(`http://127.0.0.1:${flaky}/__status?code=200`);
    await eventually("healthy again", 5000, async () => {
      const r = await admin(gw, "GET", `/autoscale/pools/api/peers/127.0.0.1:${flaky}`);
      return r.json.healthy === true ? true : undefined;
    });
    // Probes come from one worker: the notices of verdict changes are logged once each.
    const notices = gw.errorLog().split("\n").filter((l) => l.includes(`peer 127.0.0.1:${flaky} of pool api is unhealthy`));
    assert.equal(notices.length, 1, notices.join("\n"));

    await admin(gw, "POST", `/autoscale/pools/api/peers/127.0.0.1:${flaky}/weight`, `{"weight":0}`);
    await admin(gw, "POST", `/autoscale/pools/api/peers/127.0.0.1:${steady}/drain`);
    await sleep(1000);
    const none = await httpRequest(`${gw.url}/x`);
    assert.equal(none.status, 502);
    assert.match(gw.errorLog(), /pool api has no peer to send to/);
  } finally {
    await gw.stop();
    await be.stop();
  }
});
