// External metric sources on real servers: a Prometheus server (Debian's) scraping a metric the
// test serves, a Redis list (queue depth) and a JSON URL. Each drives a pool's policy; a source
// that stops answering goes stale after max_age, and the decision log says why.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { eventually, freePort, pool, startGateway, startTestBackends, tempDir } from "./harness.js";
import { json, RedisServer, redisCli, startRedis, startServer, TestServer } from "./control_servers.js";

let backends: Awaited<ReturnType<typeof startTestBackends>>;
let redis: RedisServer;
let exporter: TestServer;
let prometheus: ChildProcess;
let promUrl: string;

before(async () => {
  backends = await startTestBackends([{ delay: 0 }]);
  redis = await startRedis();
  exporter = await startServer((_r, res) => {
    res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
    res.end("# TYPE jobs_waiting gauge\njobs_waiting{queue=\"a\"} 30\njobs_waiting{queue=\"b\"} 12\n");
  });
  const dir = tempDir("prom");
  const port = await freePort();
  writeFileSync(join(dir, "prometheus.yml"), `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: exporter\n    static_configs:\n      - targets: ["127.0.0.1:${exporter.port}"]\n`);
  prometheus = spawn("prometheus", [`--config.file=${join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: "ignore" });
  promUrl = `http://127.0.0.1:${port}`;
  await eventually("prometheus has the metric", 30000, async () => {
    const r = await fetch(`${promUrl}/api/v1/query?query=sum(jobs_waiting)`);
    const doc = (await r.json()) as any;
    return doc.data?.result?.length === 1 ? true : undefined;
  });
});
after(async () => {
  prometheus.kill("SIGTERM");
  await exporter.close();
  await redis.stop();
  await backends.stop();
});

test("Prometheus, Redis list and JSON URL sources drive policies; a dead source goes stale with a reason", async (t) => {
  redisCli(redis.port, "DEL", "jobs");
  redisCli(redis.port, "RPUSH", "jobs", ...Array.from({ length: 25 }, (_v, i) => `job${i}`));
  let depth: number | undefined = 27;
  const api = await startServer((_r, res) => (depth === undefined ? json(res, 500, { error: "down" }) : json(res, 200, { data: { queues: [{ name: "main", depth }] } })));
  t.after(() => api.close());
  const hooks = await startServer((_r, res) => json(res, 200, { ok: true }));
  t.after(() => hooks.close());
  // kind "average": desired = ceil(value / per-replica target).
  const scaling = (name: string) => ({
    min_replicas: 1,
    max_replicas: 10,
    target: { metric: "external", name, value: 10, kind: "average" },
    behavior: { scale_up: { policies: [{ type: "pods", value: 10, period: 15 }] } },
    actuator: { type: "webhook", url: `${hooks.url}/${name}` },
  });
  const gw = await startGateway({
    redis: { host: "127.0.0.1", port: redis.port },
    sources: {
      prom_jobs: { type: "prometheus", url: promUrl, query: "sum(jobs_waiting)", interval: 1, max_age: 5 },
      prom_none: { type: "prometheus", url: promUrl, query: "sum(no_such_metric)", interval: 1 },
      queue: { type: "redis_list", key: "jobs", interval: 1 },
      api_depth: { type: "json_url", url: `${api.url}/stats`, path: "data.queues.0.depth", interval: 0.5, max_age: 2 },
    },
    pools: {
      prom: pool(backends.ports, { scaling: scaling("prom_jobs") }),
      none: pool(backends.ports, { scaling: scaling("prom_none") }),
      queue: pool(backends.ports, { scaling: scaling("queue") }),
      json: pool(backends.ports, { scaling: scaling("api_depth") }),
    },
    routes: [{ name: "r", match: { prefix: "/" }, pool: "prom" }],
  });
  t.after(() => gw.stop());
  const desiredFor = (name: string) => hooks.requests.filter((r) => r.path === `/${name}`).map((r) => JSON.parse(r.body).desired);
  await eventually("signals from three sources", 15000, async () => (desiredFor("prom_jobs").length && desiredFor("queue").length && desiredFor("api_depth").length ? true : undefined));
  assert.deepEqual(desiredFor("prom_jobs"), [5], "sum(jobs_waiting) = 42 at 10 per replica");
  assert.deepEqual(desiredFor("queue"), [3], "LLEN jobs = 25");
  assert.deepEqual(desiredFor("api_depth"), [3], "depth 27");
  const s = await gw.status();
  assert.equal(s.sources.prom_jobs.value, 42);
  assert.equal(s.sources.queue.value, 25);
  assert.equal(s.sources.api_depth.value, 27);
  assert.equal(s.sources.prom_none.missing, "no value yet: query returned no series");
  assert.equal(desiredFor("prom_none").length, 0);
  const noneDecision = s.pools.none.scaling.last_decision;
  assert.equal(noneDecision.sources.prom_none.missing, "no value yet: query returned no series");
  assert.equal(noneDecision.rules[0].note, "no value");

  // The JSON API breaks: its last value ages out after max_age, with the reason.
  depth = undefined;
  const stale = await eventually("the JSON source goes stale", 10000, async () => {
    const st = await gw.status();
    const m = st.pools.json.scaling.last_decision?.sources?.api_depth?.missing;
    return typeof m === "string" && m.startsWith("stale") ? m : undefined;
  });
  assert.match(stale, /^stale: last value is \d+\.\d s old \(max_age 2 s\); last error: HTTP 500$/);
});
