// Admission control on real nginx (docs/admission.md): rate limits with their headers, exact per
// consumer and across two workers, dry run, and the circuit breaker tripping and recovering.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import { httpRequest } from "../../src/cli/http_util.js";
import { eventually, pool, sleep, startGateway, startTestBackends } from "./harness.js";

let backends: Awaited<ReturnType<typeof startTestBackends>>;

before(async () => {
  backends = await startTestBackends([{ delay: 0 }, { delay: 0, switchable: true }]);
});
after(async () => backends.stop());

interface Answer {
  status: number;
  /** Client clock when the answer arrived (ms since the epoch). */
  at: number;
  /** When the backend served it (ms since the epoch; same machine clock as the gateway's). */
  servedAt?: number;
}

/** One request on a new connection (agent: false), so reuseport spreads them over the workers. */
function hit(url: string): Promise<Answer> {
  return new Promise((resolve) => {
    const req = request(url, { agent: false, headers: { connection: "close" } }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, at: Date.now(), servedAt: Number(res.headers["x-served-at"]) * 1000 }));
    });
    req.on("error", () => resolve({ status: 0, at: Date.now() }));
    req.end();
  });
}

/** `clients` loops sending requests with a pause, until `untilMs` (client clock). */
async function load(url: string, clients: number, pauseMs: number, untilMs: number): Promise<Answer[]> {
  const answers: Answer[] = [];
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < untilMs) {
        answers.push(await hit(url));
        await sleep(pauseMs);
      }
    }),
  );
  return answers;
}

test("token bucket: burst then refusals with Retry-After and RateLimit-* headers, per consumer key", async () => {
  const gw = await startGateway({
    pools: { api: pool([backends.ports[0]]) },
    routes: [
      { name: "api", match: { prefix: "/api" }, pool: "api", limits: { headers: "all", rate: [{ algorithm: "token_bucket", rate: 0.05, burst: 5, key: { from: "header", name: "X-Api-Key" } }] } },
      { name: "dry", match: { prefix: "/dry" }, pool: "api", limits: { rate: [{ algorithm: "sliding_window", limit: 3, window: 60, dry_run: true }] } },
    ],
  });
  try {
    const statuses: Record<string, number[]> = { alice: [], bob: [] };
    let refused: Awaited<ReturnType<typeof httpRequest>> | undefined;
    let admitted: Awaited<ReturnType<typeof httpRequest>> | undefined;
    for (let i = 0; i < 8; i++) {
      for (const who of ["alice", "bob"]) {
        const r = await httpRequest(`${gw.url}/api/x`, { headers: { "x-api-key": who } });
        statuses[who].push(r.status);
        if (r.status === 429) refused ??= r;
        else if (i === 1) admitted ??= r;
      }
    }
    assert.deepEqual(statuses.alice, [200, 200, 200, 200, 200, 429, 429, 429]);
    assert.deepEqual(statuses.bob, [200, 200, 200, 200, 200, 429, 429, 429]);
    assert.equal(admitted?.headers["ratelimit-limit"], "5");
    assert.equal(admitted?.headers["ratelimit-remaining"], "3");
    assert.equal(admitted?.headers["ratelimit-policy"], "5;w=100");
    assert.equal(refused?.headers["ratelimit-remaining"], "0");
    assert.equal(refused?.headers["ratelimit-limit"], "5");
    // one token every 20 s: the refused request can pass in at most 20 s
    const retry = Number(refused?.headers["retry-after"]);
    assert.ok(retry >= 1 && retry <= 20, `Retry-After ${retry}`);

    const dry: number[] = [];
    for (let i = 0; i < 7; i++) {
      const r = await httpRequest(`${gw.url}/dry/x`);
      dry.push(r.status);
      // limits.headers defaults to "refused": admitted answers carry no RateLimit-* header.
      assert.equal(r.headers["ratelimit-limit"], undefined);
      assert.equal(r.headers["ratelimit-remaining"], undefined);
    }
    assert.deepEqual(dry, [200, 200, 200, 200, 200, 200, 200], "dry run refuses nothing");
    const status = await eventually("counts flushed", 5000, async () => {
      const s = await gw.status();
      return s.admission.routes.dry.counts.would_reject === 4 && s.admission.routes.api.counts.rejected === 6 ? s : undefined;
    });
    assert.equal(status.admission.routes.api.rate[0].key, "header");
    assert.equal(status.admission.routes.api.rate[0].enforced, "local");
    assert.equal(status.admission.routes.dry.counts.rejected, 0);
  } finally {
    await gw.stop();
  }
});

test("sliding window: across two workers each full window admits the limit to within 1 %", async () => {
  const limit = 100;
  const windowS = 2;
  const gw = await startGateway(
    {
      pools: { api: pool([backends.ports[0]]) },
      routes: [{ name: "api", match: { prefix: "/" }, pool: "api", limits: { rate: [{ algorithm: "sliding_window", limit, window: windowS }] } }],
    },
    { workers: 2 },
  );
  try {
    // About 4x the limit, from new connections each time (spread over both workers).
    const answers = await load(`${gw.url}/x`, 4, 8, Date.now() + 5 * windowS * 1000 + 300);
    const perWindow = new Map<number, number>();
    for (const a of answers) {
      if (a.status !== 200) continue;
      const w = Math.floor(a.servedAt! / (windowS * 1000));
      perWindow.set(w, (perWindow.get(w) ?? 0) + 1);
    }
    const windows = [...perWindow.keys()].sort((a, b) => a - b);
    const full = windows.slice(1, -1); // the first and last are partial
    const counts = full.map((w) => perWindow.get(w)!);
    const refusals = answers.filter((a) => a.status === 429).length;
    console.log(`sliding window ${limit}/${windowS}s over 2 workers: admitted per full window ${counts.join(", ")}; ${answers.length} requests, ${refusals} refused`);
    assert.ok(counts.length >= 3, `expected at least 3 full windows, got ${counts.length}`);
    assert.ok(refusals > answers.length / 2, "the load is well over the limit");
    for (const c of counts) assert.ok(Math.abs(c - limit) <= Math.max(1, limit * 0.01), `admitted ${c} in one window, limit ${limit}`);
  } finally {
    await gw.stop();
  }
});

test("breaker: consecutive failures open it, half-open probes close it when the backend heals", async () => {
  const be = backends.ports[1];
  const control = (code: number) => httpRequest(`http://127.0.0.1:${be}/__status?code=${code}`);
  await control(200);
  const gw = await startGateway(
    {
      pools: { api: pool([be], { breaker: { consecutive_failures: 3, open_seconds: 1, half_open_probes: 1, close_after: 2 } }) },
      routes: [{ name: "api", match: { prefix: "/" }, pool: "api" }],
    },
    { workers: 1 },
  );
  const get = async () => (await httpRequest(`${gw.url}/x`)).status;
  try {
    assert.deepEqual([await get(), await get()], [200, 200]);
    await control(500);
    const failing = [await get(), await get(), await get()];
    const open = await httpRequest(`${gw.url}/x`);
    assert.deepEqual(failing, [500, 500, 500]);
    assert.equal(open.status, 503, "open: refused without asking the backend");
    assert.equal(open.headers["retry-after"], "1");
    await eventually("status shows open", 3000, async () => ((await gw.status()).admission.pools.api.breaker.state === "open" ? true : undefined));

    // Still failing: the half-open probe fails and the breaker opens again.
    await sleep(1100);
    assert.equal(await get(), 500, "half-open lets one probe through");
    assert.equal(await get(), 503, "a failed probe opens it again");

    await control(200);
    await sleep(1100);
    assert.deepEqual([await get(), await get()], [200, 200], "two successful probes");
    assert.deepEqual([await get(), await get(), await get()], [200, 200, 200], "closed again");
    const s = await eventually("status shows closed", 3000, async () => {
      const st = await gw.status();
      return st.admission.pools.api.breaker.state === "closed" ? st : undefined;
    });
    assert.equal(s.admission.routes.api.counts.breaker_open, 2);
    assert.equal(s.admission.pools.api.workers[0].breaker_opened, 2);
  } finally {
    await control(200);
    await gw.stop();
  }
});
