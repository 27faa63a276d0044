// Cluster-wide rate limits through a real redis-server (started here on a free port): two gateway
// instances of two workers each share one limit exactly; when Redis hangs or dies, requests go on
// under local shares (limit / instances) without waiting for Redis, status and the log say so
// (once), and the cluster mode comes back when Redis does.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { ChildProcess, spawn } from "node:child_process";
import { request } from "node:http";
import { eventually, freePort, pool, sleep, startGateway, startTestBackends } from "./harness.js";
import { httpRequest } from "../../src/cli/http_util.js";

let backends: Awaited<ReturnType<typeof startTestBackends>>;
let redisPort = 0;
let redis: ChildProcess;

async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
  await eventually("redis-server answers", 10000, async () => {
    const { createConnection } = await import("node:net");
    return new Promise<true | undefined>((resolve) => {
      const s = createConnection(port, "127.0.0.1", () => s.write("PING\r\n"));
      s.on("data", (d) => {
        s.destroy();
        resolve(d.toString().startsWith("+PONG") ? true : undefined);
      });
      s.on("error", () => resolve(undefined));
    });
  });
  return child;
}

before(async () => {
  backends = await startTestBackends([{ delay: 0 }]);
  redisPort = await freePort();
  redis = await startRedis(redisPort);
});
after(async () => {
  redis.kill("SIGCONT");
  redis.kill("SIGKILL");
  await backends.stop();
});

interface Answer {
  status: number;
  at: number;
  servedAt?: number;
  latencyMs: number;
  limit?: string;
}

function hit(url: string): Promise<Answer> {
  const start = Date.now();
  return new Promise((resolve) => {
    const req = request(url, { agent: false, headers: { connection: "close" }, timeout: 5000 }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, at: Date.now(), servedAt: Number(res.headers["x-served-at"]) * 1000, latencyMs: Date.now() - start, limit: res.headers["ratelimit-limit"] as string | undefined }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve({ status: 0, at: Date.now(), latencyMs: Date.now() - start }));
    req.end();
  });
}

async function load(urls: string[], clientsPerUrl: number, pauseMs: number, untilMs: number, out: Answer[]): Promise<void> {
  await Promise.all(
    urls.flatMap((url) =>
      Array.from({ length: clientsPerUrl }, async () => {
        while (Date.now() < untilMs) {
          out.push(await hit(url));
          await sleep(pauseMs);
        }
      }),
    ),
  );
}

function config(rule: Record<string, unknown>, timeoutMs = 300) {
  return {
    redis: { host: "127.0.0.1", port: redisPort, instances: 2, timeout_ms: timeoutMs },
    pools: { api: pool(backends.ports) },
    routes: [{ name: "api", match: { prefix: "/" }, pool: "api", limits: { headers: "all", rate: [{ scope: "cluster", ...rule }] } }],
  };
}

test("two gateway instances sharing Redis admit the limit per window to within 1 %", async () => {
  const limit = 100;
  const windowS = 2;
  const cfg = config({ algorithm: "sliding_window", limit, window: windowS });
  const a = await startGateway(cfg, { workers: 2 });
  const b = await startGateway(cfg, { workers: 2 });
  try {
    const answers: Answer[] = [];
    await load([`${a.url}/x`, `${b.url}/x`], 3, 10, Date.now() + 5 * windowS * 1000 + 300, answers);
    const perWindow = new Map<number, number>();
    for (const r of answers) if (r.status === 200) perWindow.set(Math.floor(r.servedAt! / (windowS * 1000)), (perWindow.get(Math.floor(r.servedAt! / (windowS * 1000))) ?? 0) + 1);
    const windows = [...perWindow.keys()].sort((x, y) => x - y).slice(1, -1);
    const counts = windows.map((w) => perWindow.get(w)!);
    const refused = answers.filter((r) => r.status === 429).length;
    console.log(`cluster sliding window ${limit}/${windowS}s over 2 instances x 2 workers: admitted per full window ${counts.join(", ")}; ${answers.length} requests, ${refused} refused`);
    assert.ok(counts.length >= 3);
    assert.ok(refused > answers.length / 2, "the load is well over the limit");
    for (const c of counts) assert.ok(Math.abs(c - limit) <= Math.max(1, limit * 0.01), `admitted ${c} in one window, limit ${limit}`);
    assert.equal(answers.filter((r) => r.status !== 200 && r.status !== 429).length, 0);
    const s = await a.status();
    assert.equal(s.admission.redis.mode, "cluster");
    assert.equal(s.admission.routes.api.rate[0].enforced, "redis");
  } finally {
    await a.stop();
    await b.stop();
  }
});

test("Redis hanging then dead: requests flow under local shares without waiting, status and log say so", async () => {
  // The quota is far above what this test's clients can send on any machine, so every refusal
  // would be a bug: the point is that requests never wait for a hanging or dead Redis.
  const gw = await startGateway(config({ algorithm: "token_bucket", rate: 20000, burst: 20000 }, 300), { workers: 2 });
  try {
    const answers: Answer[] = [];
    const traffic = load([`${gw.url}/x`], 4, 5, Date.now() + 9000, answers);
    await sleep(1500);
    const first = await httpRequest(`${gw.url}/x`);
    assert.equal(first.headers["ratelimit-limit"], "20000", "through Redis: the whole cluster's quota");

    const stoppedAt = Date.now();
    redis.kill("SIGSTOP"); // Redis hangs: connections open, no answer
    await sleep(1500);
    // Each worker publishes its mode once a second: on a loaded machine give it a little longer.
    const hanging = await eventually("local mode while Redis hangs", 5000, async () => {
      const s = await gw.status();
      return s.admission.redis.mode === "local" ? s : undefined;
    });
    redis.kill("SIGCONT");
    const back = await eventually("cluster mode again", 8000, async () => {
      const s = await gw.status();
      return s.admission.redis.mode === "cluster" && s.admission.redis.workers.every((w: any) => w.mode === "cluster") ? s : undefined;
    });
    const contAt = Date.now();
    redis.kill("SIGKILL"); // Redis dies
    // Each worker publishes its mode once a second, as above.
    const dead = await eventually("local mode once Redis is dead", 5000, async () => {
      const s = await gw.status();
      return s.admission.redis.mode === "local" ? s : undefined;
    });
    const local = await httpRequest(`${gw.url}/x`);
    await traffic;

    const settled = answers.filter((r) => r.at - r.latencyMs > stoppedAt + 1000 && r.at < contAt);
    const afterKill = answers.filter((r) => r.at - r.latencyMs > contAt + 200);
    const maxSettled = Math.max(...settled.map((r) => r.latencyMs));
    const maxAfterKill = Math.max(...afterKill.map((r) => r.latencyMs));
    const slow = answers.filter((r) => r.latencyMs >= 250).length;
    console.log(`Redis hanging: ${settled.length} requests later than 1 s after SIGSTOP, slowest ${maxSettled} ms (Redis timeout 300 ms); ${slow} of ${answers.length} requests took >= 250 ms (those waiting when it hung)`);
    console.log(`Redis dead: ${afterKill.length} requests, slowest ${maxAfterKill} ms; statuses ${JSON.stringify(countBy(answers.map((r) => r.status)))}`);

    assert.equal(hanging.admission.redis.mode, "local");
    assert.equal(hanging.admission.routes.api.rate[0].enforced, "local_share");
    assert.ok(hanging.admission.routes.api.counts.redis_fallback > 0);
    assert.equal(back.admission.redis.mode, "cluster");
    assert.equal(dead.admission.redis.mode, "local");
    assert.equal(local.status, 200);
    assert.equal(local.headers["ratelimit-limit"], "10000", "local share: limit / instances");
    assert.ok(settled.length > 50 && afterKill.length > 50);
    assert.ok(maxSettled < 250, `no request waits for the Redis timeout once it is known hanging (slowest ${maxSettled} ms)`);
    assert.ok(maxAfterKill < 250, `slowest ${maxAfterKill} ms with Redis dead`);
    assert.ok(answers.every((r) => r.status === 200), "every request admitted (the load is under the limit)");
    const switches = gw.errorLog().split("\n").filter((l) => l.includes("unreachable") && l.includes("local shares")).length;
    assert.ok(switches >= 1 && switches <= 4, `the switch is logged once per worker and outage, not per request (${switches} lines)`);
  } finally {
    await gw.stop();
  }
});

function countBy(xs: number[]): Record<number, number> {
  const out: Record<number, number> = {};
  for (const x of xs) out[x] = (out[x] ?? 0) + 1;
  return out;
}
