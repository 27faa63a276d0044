// `node build/node/bench/balancer_report.js [--seconds S] [--concurrency C]`
//
// The balancer's behaviour report (no assertions: the lead reads the figures; the integration
// tests hold the loose bounds). One run, one gateway per case, real backends:
//  - slow peer: three peers, one five times slower (10 ms vs 50 ms); per algorithm (round robin,
//    least-request, peak-EWMA, each without latency ejection), peak-EWMA as configured by
//    default (latency ejection on) and a pool of just the two fast peers: p50, p99, the slow
//    peer's share. Target: peak-EWMA p99 within 1.5x of the two-fast pool.
//  - killed peer: one of three peers stops under load; time until it gets no more tries, and
//    client-visible errors (target: under 1 s, none).
//  - slow start: a peer added under load through the admin API; its share per second against
//    the configured curve.
// Writes bench/results/balancer.json.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { projectRoot } from "../src/cli/paths.js";
import { httpRequest } from "../src/cli/http_util.js";
import { freePort, sleep, startGateway, startTestBackends } from "../test/integration/harness.js";
import { startLoad, summarize, UPSTREAM_HEADER } from "./balancer_load.js";

const peer = (port: number) => ({ host: "127.0.0.1", port, weight: 1 });
const route = [{ name: "api", match: { prefix: "/" }, pool: "api" }];

function parseArgs(argv: string[]) {
  const o = { seconds: 10, concurrency: 16, workers: 2 };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--seconds") o.seconds = Number(argv[++i]);
    else if (argv[i] === "--concurrency") o.concurrency = Number(argv[++i]);
    else if (argv[i] === "--workers") o.workers = Number(argv[++i]);
    else throw new Error(`unknown option ${argv[i]} (expected --seconds, --concurrency, --workers)`);
  }
  return o;
}

async function slowPeer(o: ReturnType<typeof parseArgs>) {
  const be = await startTestBackends([{ delay: 0.01 }, { delay: 0.01 }, { delay: 0.05 }]);
  const [f1, f2, slow] = be.ports;
  const out: Record<string, unknown> = {};
  try {
    // The algorithms on their own (latency ejection off), peak-EWMA as configured by default
    // (latency ejection on), and a pool of just the two fast peers.
    for (const name of ["round_robin", "least_request", "ewma", "ewma_default", "two_fast_ewma"]) {
      const two = name === "two_fast_ewma";
      const balancer = two || name === "ewma_default" ? "ewma" : { algorithm: name, outlier: { latency_factor: 0 } };
      const gw = await startGateway({ pools: { api: { peers: two ? [peer(f1), peer(f2)] : [peer(f1), peer(f2), peer(slow)], balancer } }, routes: route }, { workers: o.workers });
      try {
        const load = startLoad(`${gw.url}/x`, o.concurrency);
        await sleep((o.seconds + 1) * 1000);
        await load.stop();
        const s = summarize(load.samples, 1000);
        out[name] = { requests: s.requests, p50_ms: s.p50_ms, p99_ms: s.p99_ms, slow_share: s.share[slow] ?? 0, errors: load.errors + s.non2xx };
        console.log(`slow peer  ${name.padEnd(14)} p50 ${s.p50_ms.toFixed(1).padStart(6)} ms  p99 ${s.p99_ms.toFixed(1).padStart(6)} ms  slow share ${(100 * (s.share[slow] ?? 0)).toFixed(1).padStart(5)} %`);
      } finally {
        await gw.stop();
      }
    }
  } finally {
    await be.stop();
  }
  const ewma = out.ewma as { p99_ms: number };
  const ewmaDefault = out.ewma_default as { p99_ms: number };
  const base = out.two_fast_ewma as { p99_ms: number };
  out.ewma_p99_vs_two_fast = ewma.p99_ms / base.p99_ms;
  out.ewma_default_p99_vs_two_fast = ewmaDefault.p99_ms / base.p99_ms;
  console.log(`slow peer  peak-EWMA alone p99 / two-fast p99 = ${(ewma.p99_ms / base.p99_ms).toFixed(2)}; with latency ejection (default) = ${(ewmaDefault.p99_ms / base.p99_ms).toFixed(2)} (target <= 1.5)`);
  return out;
}

async function killedPeer(o: ReturnType<typeof parseArgs>) {
  const out: Record<string, unknown> = {};
  for (const algorithm of ["round_robin", "least_request", "ewma"]) {
    const alive = await startTestBackends([{ delay: 0.005 }, { delay: 0.005 }]);
    const doomed = await startTestBackends([{ delay: 0.005 }]);
    const dead = doomed.ports[0];
    const gw = await startGateway({ pools: { api: { peers: [peer(alive.ports[0]), peer(alive.ports[1]), peer(dead)], balancer: algorithm } }, routes: route }, { workers: o.workers, extraServer: UPSTREAM_HEADER });
    try {
      const load = startLoad(`${gw.url}/x`, o.concurrency);
      await sleep(2000);
      void doomed.stop();
      const killedAt = performance.now() - load.t0;
      await sleep(3000);
      await load.stop();
      const touched = load.samples.filter((s) => s.tried.includes(dead) && s.start >= killedAt);
      const last = touched.length === 0 ? killedAt : Math.max(...touched.map((s) => s.end));
      const errors = load.samples.filter((s) => s.status !== 200).length + load.errors;
      out[algorithm] = { ms_until_no_tries: last - killedAt, requests_that_tried_it: touched.length, client_errors: errors, requests: load.samples.length };
      console.log(`killed     ${algorithm.padEnd(14)} no more tries ${(last - killedAt).toFixed(0).padStart(5)} ms after the kill, ${touched.length} request(s) retried, ${errors} client error(s)`);
    } finally {
      await gw.stop();
      await alive.stop();
      await doomed.stop();
    }
  }
  return out;
}

async function slowStart(o: ReturnType<typeof parseArgs>) {
  const window = 10;
  const out: Record<string, unknown> = {};
  for (const algorithm of ["round_robin", "ewma"]) {
    const be = await startTestBackends([{ delay: 0.005 }, { delay: 0.005 }, { delay: 0.005 }]);
    const [a, b, added] = be.ports;
    const gw = await startGateway({ pools: { api: { peers: [peer(a), peer(b)], balancer: { algorithm, slow_start: { window, aggression: 1, min_weight: 0.1 } } } }, routes: route }, { workers: o.workers });
    try {
      const load = startLoad(`${gw.url}/x`, o.concurrency);
      await sleep(2000);
      await httpRequest(`${gw.adminUrl}/autoscale/pools/api/peers`, { method: "POST", body: JSON.stringify({ host: "127.0.0.1", port: added }) });
      const addedAt = performance.now() - load.t0;
      await sleep((window + 3) * 1000);
      await load.stop();
      const shares: number[] = [];
      const curve: number[] = [];
      for (let sec = 0; sec < window + 3; sec++) {
        shares.push(summarize(load.samples, addedAt + sec * 1000, addedAt + (sec + 1) * 1000).share[added] ?? 0);
        const m = Math.min(1, Math.max(0.1, (sec + 0.5) / window));
        curve.push(m / (2 + m));
      }
      out[algorithm] = { share_per_second: shares, equal_cost_curve: curve };
      console.log(`slow start ${algorithm.padEnd(14)} share/s ${shares.map((x) => (100 * x).toFixed(0)).join(" ")} %  (equal-cost curve ${curve.map((x) => (100 * x).toFixed(0)).join(" ")} %)`);
    } finally {
      await gw.stop();
      await be.stop();
    }
  }
  return out;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  await freePort();
  const report = {
    date: new Date().toISOString(),
    settings: o,
    slow_peer: await slowPeer(o),
    killed_peer: await killedPeer(o),
    slow_start: await slowStart(o),
  };
  const file = join(projectRoot, "bench", "results", "balancer.json");
  mkdirSync(join(file, ".."), { recursive: true });
  writeFileSync(file, JSON.stringify(report, null, 2) + "\n");
  console.log(`written: ${file}`);
}

main().catch((e) => {
  console.error(`balancer report: ${(e as Error).message}`);
  process.exitCode = 1;
});
