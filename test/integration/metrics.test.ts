// Metrics on real nginx with two workers: exact counts by class, latency percentiles of known
// backends within the histogram's documented error, sliding windows, in-flight with client
// aborts and lost log phases, the cardinality cap under 100,000 random URLs, GET /metrics
// checked by promtool and scraped by a real Prometheus, and the StatsD push.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { writeFileSync, rmSync } from "node:fs";
import { Agent, request } from "node:http";
import { join } from "node:path";
import { httpRequest } from "../../src/cli/http_util.js";
import { eventually, freePort, pool, sleep, startGateway, startTestBackends, tempDir } from "./harness.js";

/** Documented bound of a reported latency: at most 5 % from the true value (docs/metrics.md). */
const REL_ERROR = 0.05;

let backends: Awaited<ReturnType<typeof startTestBackends>>;
let port10: number, port50: number, port200: number, port404: number, port503: number;

before(async () => {
  backends = await startTestBackends([{ delay: 0.01 }, { delay: 0.05 }, { delay: 0.2 }, { delay: 0, status: 404 }, { delay: 0, status: 503 }]);
  [port10, port50, port200, port404, port503] = backends.ports;
  // The first answers of a backend worker are slower (Lua code compiled on first use): warm them
  // up, so that the latencies the gateway measures are those of the configured delays.
  for (const port of backends.ports) await send((i) => `http://127.0.0.1:${port}/warm/${i}`, 40, 10);
});
after(async () => backends.stop());

const keepAlive = new Agent({ keepAlive: true, maxSockets: 64 });

function get(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: keepAlive }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end();
  });
}

async function send(urls: (i: number) => string, n: number, concurrency: number): Promise<number[]> {
  const statuses: number[] = [];
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      statuses.push(await get(urls(i)));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return statuses;
}

const onePeer = (port: number) => pool([port], { balancer: "round_robin" });

function within(actual: number | undefined, low: number, high: number, what: string): void {
  assert.ok(actual !== undefined && actual >= low && actual <= high, `${what}: ${actual} not within [${low}, ${high}]`);
}

/** A latency of a backend that sleeps `delay` s: at least the delay, and (generously) less than 30 ms more. */
function assertLatency(actual: number | undefined, delay: number, what: string): void {
  within(actual, delay * (1 - REL_ERROR), (delay + 0.03) * (1 + REL_ERROR), what);
}

const routes = [
  { name: "r10", match: { prefix: "/r10" }, pool: "p10" },
  { name: "r50", match: { prefix: "/r50" }, pool: "p50" },
  { name: "r200", match: { prefix: "/r200" }, pool: "p200" },
  { name: "r404", match: { prefix: "/r404" }, pool: "p404" },
  { name: "r503", match: { prefix: "/r503" }, pool: "p503" },
];
const pools = () => ({ p10: onePeer(port10), p50: onePeer(port50), p200: onePeer(port200), p404: onePeer(port404), p503: onePeer(port503) });

test("counts by class and bytes exactly over two workers; p50/p99 of 10, 50 and 200 ms backends within 5 %; Prometheus agrees", async () => {
  const gw = await startGateway({ metrics: { windows: [60], bytes: true }, pools: pools(), routes }, { workers: 2 });
  try {
    await send((i) => `${gw.url}/r10/${i}`, 60, 6);
    await send((i) => `${gw.url}/r50/${i}`, 40, 8);
    await send((i) => `${gw.url}/r200/${i}`, 30, 10);
    await send((i) => `${gw.url}/r404/${i}`, 7, 2);
    await send((i) => `${gw.url}/r503/${i}`, 5, 2);
    await send((i) => `${gw.url}/nowhere/${i}`, 3, 1);
    const s = await eventually("every request flushed", 6000, async () => {
      const st = await gw.status();
      const n = ["r10", "r50", "r200", "r404", "r503", "unmatched"].reduce((a, r) => a + st.routes[r].windows["60s"].requests, 0);
      return n === 145 ? st : undefined;
    });
    const w = (r: string) => s.routes[r].windows["60s"];
    assert.deepEqual(w("r10").responses, { "1xx": 0, "2xx": 60, "3xx": 0, "4xx": 0, "5xx": 0 });
    assert.deepEqual(w("r404").responses, { "1xx": 0, "2xx": 0, "3xx": 0, "4xx": 7, "5xx": 0 });
    assert.deepEqual(w("r503").responses, { "1xx": 0, "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 5 });
    assert.equal(w("r503").errors, 5);
    assert.equal(w("r503").errorRatio, 1);
    assert.equal(w("r10").errorRatio, 0);
    assert.equal(w("unmatched").requests, 3);
    assert.equal(w("unmatched").responses["4xx"], 3);
    assert.equal(s.routes.r10.totals.requests, 60);
    assert.equal(s.routes.r10.totals.responses["2xx"], 60);
    assert.equal(s.routes.r503.totals.errors, 5);
    // "backend <port>\n" per answer, plus headers
    assert.ok(w("r10").bytesOut > 60 * 14, `bytes sent ${w("r10").bytesOut}`);
    assert.ok(w("r10").bytesIn > 60 * 20, `bytes received ${w("r10").bytesIn}`);
    assert.equal(s.peers.p10[`127.0.0.1:${port10}`].windows["60s"].requests, 60);
    // Every try counts for its peer: a 503 is retried (proxy_next_upstream), on the only peer.
    const tries503 = s.peers.p503[`127.0.0.1:${port503}`].windows["60s"];
    assert.ok(tries503.requests === 5 || tries503.requests === 10, `tries of the 503 peer: ${tries503.requests}`);
    assert.equal(tries503.errors, tries503.requests);
    assert.equal(tries503.responses["5xx"], tries503.requests);
    assert.equal(s.peers.p10[`127.0.0.1:${port10}`].windows["60s"].connectFailures, 0);
    assert.ok(s.peers.p10[`127.0.0.1:${port10}`].windows["60s"].bytesOut > 60 * 14);
    // the old keys the demo reads are still there
    assert.equal(s.pools.p10.peers[0].windows["60s"].requests, 60);
    for (const [route, pool, port, delay] of [["r10", "p10", port10, 0.01], ["r50", "p50", port50, 0.05], ["r200", "p200", port200, 0.2]] as const) {
      for (const q of ["p50", "p99"] as const) {
        assertLatency(w(route)[q], delay, `route ${route} ${q}`);
        assertLatency(s.peers[pool][`127.0.0.1:${port}`].windows["60s"][q], delay, `peer of ${pool} ${q}`);
      }
      assertLatency(w(route).meanLatency, delay, `route ${route} mean`);
    }
    assert.equal(s.metrics.maxSeries, 1000);
    assert.equal(s.metrics.series, 10, "5 routes and 5 peers have their own keys");

    // The Prometheus exposition: valid for promtool, with the same counts.
    const r = await httpRequest(`${gw.adminUrl}/metrics`);
    assert.equal(r.status, 200);
    assert.match(String(r.headers["content-type"]), /^text\/plain; version=0\.0\.4/);
    const check = spawnSync("promtool", ["check", "metrics"], { input: r.body, encoding: "utf8" });
    assert.equal(check.status, 0, `promtool: ${check.stdout}${check.stderr}`);
    const line = (re: RegExp) => {
      const m = r.body.match(re);
      assert.ok(m, `no line matching ${re}`);
      return Number(m[1]);
    };
    assert.equal(line(/^autoscale_route_requests_total\{route="r10"\} (\d+)$/m), 60);
    assert.equal(line(/^autoscale_route_responses_total\{route="r404",class="4xx"\} (\d+)$/m), 7);
    assert.equal(line(/^autoscale_route_latency_seconds_count\{route="r50"\} (\d+)$/m), 40);
    assert.equal(line(/^autoscale_route_latency_seconds_bucket\{route="r50",le="\+Inf"\} (\d+)$/m), 40);
    assert.equal(line(/^autoscale_route_latency_seconds_bucket\{route="r50",le="0.025"\} (\d+)$/m), 0);
    assert.equal(line(/^autoscale_route_latency_seconds_bucket\{route="r200",le="0.1"\} (\d+)$/m), 0);
    assert.equal(line(/^autoscale_route_latency_seconds_bucket\{route="r200",le="0.5"\} (\d+)$/m), 30);
    assert.equal(line(/^autoscale_peer_errors_total\{pool="p503",peer="127.0.0.1:\d+"\} (\d+)$/m), tries503.requests);
    assert.match(r.body, /^# TYPE autoscale_route_latency_seconds histogram$/m);
    assert.match(r.body, /^# HELP autoscale_route_requests_total /m);
    assert.ok(line(/^autoscale_route_latency_seconds_sum\{route="r200"\} ([\d.]+)$/m) >= 30 * 0.2);
  } finally {
    await gw.stop();
  }
});

test("a real Prometheus server scrapes GET /metrics and its query API returns the counts", async (t) => {
  const gw = await startGateway({ pools: pools(), routes }, { workers: 2 });
  const dir = tempDir("prom");
  const promPort = await freePort();
  writeFileSync(
    join(dir, "prometheus.yml"),
    `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: autoscale\n    static_configs:\n      - targets: ["${gw.adminUrl.replace("http://", "")}"]\n`,
  );
  const prom = spawn("prometheus", [`--config.file=${join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${promPort}`], { stdio: "ignore" });
  t.after(async () => {
    prom.kill("SIGTERM");
    await new Promise((r) => prom.once("exit", r));
    rmSync(dir, { recursive: true, force: true });
    await gw.stop();
  });
  await send((i) => `${gw.url}/r10/${i}`, 25, 4);
  await send((i) => `${gw.url}/r404/${i}`, 4, 2);
  await send((i) => `${gw.url}/r200/${i}`, 8, 4);
  const query = async (q: string) => {
    const r = await httpRequest(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`);
    if (r.status !== 200) return undefined;
    const body = JSON.parse(r.body);
    return body.data.result as { metric: Record<string, string>; value: [number, string] }[];
  };
  await eventually("Prometheus has scraped the counts", 30000, async () => {
    const res = await query('autoscale_route_requests_total{route="r10"}');
    return res && res.length === 1 && res[0].value[1] === "25" ? true : undefined;
  });
  const classes = await query('autoscale_route_responses_total{route="r404",class="4xx"}');
  assert.equal(classes![0].value[1], "4");
  const up = await query('up{job="autoscale"}');
  assert.equal(up![0].value[1], "1");
  await eventually("Prometheus has scraped the 200 ms route", 30000, async () => {
    const res = await query('autoscale_route_latency_seconds_count{route="r200"}');
    return res && res.length === 1 && res[0].value[1] === "8" ? true : undefined;
  });
  const p = await query('histogram_quantile(0.5, autoscale_route_latency_seconds_bucket{route="r200"})');
  const p50 = Number(p![0].value[1]);
  // Prometheus interpolates inside a bucket, so only the bucket is known. The 200 ms backend sits
  // well inside (0.1, 0.5]; a 10 ms backend would sit on the 0.01 bound, where nginx's
  // millisecond clock puts some requests on either side.
  assert.ok(p50 > 0.1 && p50 <= 0.5, `histogram_quantile p50 ${p50}`);
});

test("metrics.enabled false: nothing is counted, while the balancer and the rate limit still work", async () => {
  const limited = routes.map((r) => (r.name === "r10" ? { ...r, limits: { rate: [{ algorithm: "token_bucket", rate: 0.01, burst: 3 }] } } : r));
  const gw = await startGateway({ metrics: { enabled: false }, pools: pools(), routes: limited }, { workers: 1 });
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await httpRequest(`${gw.url}/r10/${i}`)).status);
    assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
    for (let i = 0; i < 4; i++) assert.equal((await httpRequest(`${gw.url}/r50/${i}`)).status, 200);
    await sleep(1500); // past a flush
    const s = await gw.status();
    assert.equal(s.routes.r10.windows["10s"].requests, 0);
    assert.equal(s.routes.r50.totals.requests, 0);
    assert.equal(s.peers.p50[`127.0.0.1:${port50}`].windows["10s"].requests, 0);
    assert.equal(s.admission.routes.r10.counts.rejected, 2);
  } finally {
    await gw.stop();
  }
});

test("windows slide: after traffic stops the rate falls to zero within the window span", async () => {
  const span = 3;
  const gw = await startGateway({ metrics: { windows: [span, 60] }, pools: pools(), routes }, { workers: 2 });
  try {
    await send((i) => `${gw.url}/r10/${i}`, 50, 4);
    const s = await eventually("rate above zero", 5000, async () => {
      const st = await gw.status();
      return st.routes.r10.windows[`${span}s`].rate > 0 ? st : undefined;
    });
    assert.ok(Math.abs(s.routes.r10.windows[`${span}s`].rate - s.routes.r10.windows[`${span}s`].requests / span) < 1e-9);
    assert.equal(s.routes.r10.windows[`${span}s`].bytesOut, 0, "metrics.bytes is off by default");
    const stopped = Date.now();
    const zero = await eventually("rate back to zero", (span + 3) * 1000, async () => {
      const st = await gw.status();
      return st.routes.r10.windows[`${span}s`].rate === 0 ? st : undefined;
    });
    assert.ok(Date.now() - stopped <= (span + 3) * 1000);
    assert.equal(zero.routes.r10.windows[`${span}s`].p50, undefined);
    assert.equal(zero.routes.r10.windows["60s"].requests, 50, "the longer window still holds every request");
  } finally {
    await gw.stop();
  }
});

test("in flight: counted while requests wait, back to zero after client aborts, and lost log phases expire", async () => {
  const leakPort = await freePort();
  const portSlow = await freePort();
  const extraHttp = `
    server {
        listen 127.0.0.1:${portSlow};
        location / { content_by_lua_block { ngx.sleep(3) ngx.say("slow") } }
    }
    server {
        listen 127.0.0.1:${leakPort};
        # access runs (counts r10 in flight), then an internal redirect drops ngx.ctx and the
        # location served has no log_by_lua: the request is never seen finishing.
        location /leak { access_by_lua_block { require("resty.autoscale").access("r10") ngx.exec("/done") } }
        location /done { return 200 "done\\n"; }
    }`;
  const gw = await startGateway({ metrics: { windows: [10], inflight_max_age: 3 }, pools: { ...pools(), slow: onePeer(portSlow) }, routes: [...routes, { name: "slow", match: { prefix: "/slow" }, pool: "slow" }] }, { workers: 2, extraHttp });
  try {
    const pending = Array.from({ length: 5 }, (_, i) => {
      const req = request(`${gw.url}/slow/${i}`, { agent: false });
      req.on("error", () => {});
      req.end();
      return req;
    });
    const peer = `127.0.0.1:${portSlow}`;
    await eventually("5 in flight", 5000, async () => {
      const st = await gw.status();
      return st.routes.slow.inflight === 5 && st.peers.slow[peer].inflight === 5 ? true : undefined;
    });
    for (const req of pending) req.destroy();
    const after = await eventually("none in flight after the aborts", 5000, async () => {
      const st = await gw.status();
      return st.routes.slow.inflight === 0 && st.peers.slow[peer].inflight === 0 && st.routes.slow.windows["10s"].requests === 5 ? st : undefined;
    });
    assert.equal(after.routes.slow.windows["10s"].responses["4xx"], 5, "aborted requests are logged as 499");

    for (let i = 0; i < 3; i++) assert.equal((await httpRequest(`http://127.0.0.1:${leakPort}/leak`)).status, 200);
    await eventually("3 leaked requests counted", 3000, async () => ((await gw.status()).routes.r10.inflight === 3 ? true : undefined));
    await eventually("leaked requests expire after inflight_max_age", 7000, async () => ((await gw.status()).routes.r10.inflight === 0 ? true : undefined));
  } finally {
    await gw.stop();
  }
});

test("100,000 distinct random URLs neither grow the dict nor evict the live routes' figures", async () => {
  const gw = await startGateway({ metrics: { windows: [10, 60] }, pools: pools(), routes }, { workers: 2 });
  try {
    await send((i) => `${gw.url}/r10/${i}`, 20, 2);
    const before = await eventually("flushed", 5000, async () => {
      const st = await gw.status();
      return st.routes.r10.totals.requests === 20 ? st : undefined;
    });
    const statuses = await send(() => `${gw.url}/x${Math.random().toString(36).slice(2)}/${Math.random().toString(36).slice(2)}`, 100000, 32);
    assert.equal(statuses.length, 100000);
    const s = await eventually("random URLs flushed", 8000, async () => {
      const st = await gw.status();
      return st.routes.unmatched.totals.requests === 100000 ? st : undefined;
    });
    assert.equal(s.routes.r10.totals.requests, 20, "the live route's totals survive");
    assert.equal(s.routes.r10.windows["60s"].requests, 20, "and its window buckets too");
    assert.equal(s.metrics.series, before.metrics.series, "no series was added for the random URLs");
    assert.equal(s.metrics.capacity, before.metrics.capacity);
    // A few seconds of window buckets of `unmatched` are all the random URLs may take.
    assert.ok(before.metrics.free - s.metrics.free <= 64 * 1024, `dict free space fell from ${before.metrics.free} to ${s.metrics.free}`);
    assert.deepEqual(Object.keys(s.routes).sort(), ["_overflow", "r10", "r200", "r404", "r503", "r50", "unmatched"].sort());
  } finally {
    await gw.stop();
  }
});

test("StatsD: counters, timers and gauges pushed over UDP", async (t) => {
  const udpPort = await freePort();
  const sock = createSocket("udp4");
  const lines: string[] = [];
  sock.on("message", (m) => lines.push(...m.toString("utf8").split("\n")));
  await new Promise<void>((r) => sock.bind(udpPort, "127.0.0.1", () => r()));
  const gw = await startGateway({ metrics: { windows: [10], statsd: { host: "127.0.0.1", port: udpPort, prefix: "gw", interval: 1 } }, pools: pools(), routes }, { workers: 2 });
  t.after(async () => {
    await gw.stop();
    sock.close();
  });
  await send((i) => `${gw.url}/r50/${i}`, 12, 3);
  await send((i) => `${gw.url}/r503/${i}`, 2, 1);
  const sum = (name: string) =>
    lines.filter((l) => l.startsWith(`${name}:`) && l.includes("|c")).reduce((n, l) => n + Number(l.slice(name.length + 1).split("|")[0]), 0);
  await eventually("counters pushed", 8000, async () => (sum("gw.route.r50.requests") === 12 && sum("gw.route.r503.errors") === 2 ? true : undefined));
  assert.equal(sum("gw.route.r50.responses.2xx"), 12);
  assert.equal(sum("gw.route.r503.responses.5xx"), 2);
  assert.equal(sum(`gw.peer.p50.127_0_0_1_${port50}.requests`), 12);
  // Timers cover whole seconds two seconds behind (every worker has flushed them by then): they
  // follow the counters, and the counts their lines stand for add up to 12, each second once.
  const timers = () => lines.filter((l) => l.startsWith("gw.route.r50.latency:"));
  const timerCount = () =>
    timers().reduce((n, l) => {
      const m = l.match(/^gw\.route\.r50\.latency:([\d.]+)\|ms(?:\|@([\d.e-]+))?$/);
      assert.ok(m, `timer line ${l}`);
      assertLatency(Number(m[1]) / 1000, 0.05, "timer value");
      return n + (m[2] ? Math.round(1 / Number(m[2])) : 1);
    }, 0);
  await eventually("latency timers pushed", 8000, async () => (timerCount() >= 12 ? true : undefined));
  await sleep(2500);
  assert.equal(timerCount(), 12, "no second pushed twice");
  assert.ok(lines.some((l) => /^gw\.route\.r50\.inflight:\d+\|g$/.test(l)));
  await sleep(10);
});
