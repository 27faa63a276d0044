// Overload on real nginx against a backend of fixed capacity (20 requests at once, 50 ms each:
// 400 requests/s; the rest wait in FIFO order). Three times the capacity is offered open-loop
// (arrivals do not wait for answers, as real users do not), once through a gateway without a
// concurrency limit and once through one with the adaptive (gradient) limit; then critical and
// best-effort routes share the overloaded pool. Prints every figure; asserts loosely (shared
// 2-core machine, see the printed figures for the real values).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Agent, request } from "node:http";
import { pool, sleep, startGateway, startTestBackends } from "./harness.js";

const CAPACITY = 20;
const SERVICE_S = 0.05;
const CAPACITY_RPS = CAPACITY / SERVICE_S;

let backends: Awaited<ReturnType<typeof startTestBackends>>;
before(async () => {
  backends = await startTestBackends([{ delay: SERVICE_S, capacity: CAPACITY }]);
});
after(async () => backends.stop());

interface Result {
  status: number;
  sentAt: number;
  latencyMs: number;
  path: string;
}

function one(url: string, path: string, agent: Agent): Promise<Result> {
  const sentAt = performance.now();
  return new Promise((resolve) => {
    const req = request(url + path, { agent, timeout: 30000 }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, sentAt, latencyMs: performance.now() - sentAt, path }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve({ status: 0, sentAt, latencyMs: performance.now() - sentAt, path }));
    req.end();
  });
}

/** Sends `rps` requests per second to each path for `durationMs`, whatever the answers do. */
async function openLoop(url: string, mix: { path: string; rps: number }[], durationMs: number): Promise<{ results: Result[]; start: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity });
  const pending: Promise<Result>[] = [];
  const sent = mix.map(() => 0);
  const start = performance.now();
  for (;;) {
    const elapsed = performance.now() - start;
    if (elapsed >= durationMs) break;
    mix.forEach((m, i) => {
      const due = Math.floor((elapsed * m.rps) / 1000);
      while (sent[i] < due) {
        pending.push(one(url, m.path, agent));
        sent[i]++;
      }
    });
    await sleep(2);
  }
  const results = await Promise.all(pending);
  agent.destroy();
  return { results, start };
}

async function closedLoop(url: string, path: string, clients: number, durationMs: number): Promise<Result[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: clients });
  const out: Result[] = [];
  const end = performance.now() + durationMs;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < end) out.push(await one(url, path, agent));
    }),
  );
  agent.destroy();
  return out;
}

function p99(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))];
}

const f = (n: number) => n.toFixed(1);

test("three times the capacity: the adaptive limit keeps p99 and goodput; critical keeps its service", async () => {
  const routes = [
    { name: "api", match: { prefix: "/api" }, pool: "api" },
    { name: "critical", match: { prefix: "/critical" }, pool: "api", limits: { priority: "critical" } },
    { name: "batch", match: { prefix: "/batch" }, pool: "api", limits: { priority: "best_effort" } },
  ];
  const plain = await startGateway({ pools: { api: pool(backends.ports) }, routes }, { workers: 2 });
  const limited = await startGateway({ pools: { api: pool(backends.ports, { concurrency: { algorithm: "gradient" } }) }, routes }, { workers: 2 });
  try {
    // Unloaded: a quarter of the capacity in flight.
    await closedLoop(plain.url, "/api/x", CAPACITY / 4, 500); // connections, JIT
    const unloaded = p99((await closedLoop(plain.url, "/api/x", CAPACITY / 4, 2000)).map((r) => r.latencyMs));

    const offered = 3 * CAPACITY_RPS;
    const without = await openLoop(plain.url, [{ path: "/api/x", rps: offered }], 2000);
    const withoutOk = without.results.filter((r) => r.status === 200);
    const withoutP99 = p99(withoutOk.map((r) => r.latencyMs));
    await sleep(500);

    // Warm-up: the gradient limit measures min RTT first (limit pinned to min_limit), then settles.
    const warmMs = 2000;
    const run = await openLoop(limited.url, [{ path: "/api/x", rps: offered }], warmMs + 4000);
    const measured = run.results.filter((r) => r.sentAt - run.start >= warmMs);
    const admitted = measured.filter((r) => r.status === 200);
    const shed = measured.filter((r) => r.status === 503).length;
    const withP99 = p99(admitted.map((r) => r.latencyMs));
    const withP50 = [...admitted.map((r) => r.latencyMs)].sort((a, b) => a - b)[Math.floor(admitted.length / 2)];
    const goodput = admitted.length / 4;
    const status = await limited.status();
    const conc = status.admission.pools.api.concurrency;

    console.log(`capacity ${CAPACITY_RPS} req/s (${CAPACITY} x ${SERVICE_S * 1000} ms), offered ${offered} req/s`);
    console.log(`unloaded p99 ${f(unloaded)} ms`);
    console.log(`no limit:       p99 ${f(withoutP99)} ms (${f(withoutP99 / unloaded)}x unloaded), ${withoutOk.length}/${without.results.length} answered 200`);
    console.log(`adaptive limit: admitted p50 ${f(withP50)} ms, p99 ${f(withP99)} ms (${f(withP99 / unloaded)}x unloaded), goodput ${f(goodput)} req/s (${f((100 * goodput) / CAPACITY_RPS)} % of capacity), ${shed} shed of ${measured.length}; limit ${conc.limit} (2 workers), min RTT ${f(conc.min_rtt_ms)} ms`);

    // Priorities: 10 % of the offered load is critical, the rest best-effort.
    const mixed = await openLoop(limited.url, [{ path: "/critical/x", rps: offered * 0.1 }, { path: "/batch/x", rps: offered * 0.9 }], 4000);
    const crit = mixed.results.filter((r) => r.path.startsWith("/critical"));
    const batch = mixed.results.filter((r) => r.path.startsWith("/batch"));
    const critOk = crit.filter((r) => r.status === 200).length / crit.length;
    const batchOk = batch.filter((r) => r.status === 200).length / batch.length;
    const critP99 = p99(crit.filter((r) => r.status === 200).map((r) => r.latencyMs));
    console.log(`priorities: critical ${f(100 * critOk)} % success (p99 ${f(critP99)} ms, ${crit.length} requests), best-effort ${f(100 * batchOk)} % success (${batch.length} requests)`);

    assert.ok(withoutP99 > 4 * unloaded, "without a limit the queue grows and p99 explodes");
    assert.ok(withP99 < 2.5 * unloaded, `admitted p99 ${f(withP99)} ms stays near the unloaded ${f(unloaded)} ms (target 2x)`);
    assert.ok(goodput > 0.8 * CAPACITY_RPS, `goodput ${f(goodput)} req/s (target 90 % of ${CAPACITY_RPS})`);
    assert.ok(critOk > 0.99, `critical success ${f(100 * critOk)} %`);
    assert.ok(batchOk < 0.9, "best-effort absorbs the refusals");
  } finally {
    await plain.stop();
    await limited.stop();
  }
});
