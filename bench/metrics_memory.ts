// `node build/node/bench/metrics_memory.js [N...]`: shared-dict memory of the metrics at N
// distinct routes (default 10, 1,000 and 100,000), each receiving one request, with the default
// cardinality cap (metrics.max_series 1000). One gateway per N, two workers, exact-path routes
// matched by the request path in one catch-all location. Writes bench/results/metrics_memory.json.
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer } from "node:net";
import { findRuntime } from "../src/cli/runtime.js";
import { startNginx, nginxHead } from "../src/cli/nginx.js";
import { fetchJson, waitForHttp } from "../src/cli/http_util.js";
import { projectRoot } from "../src/cli/paths.js";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

const agent = new Agent({ keepAlive: true, maxSockets: 32 });
function get(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      res.resume();
      res.on("end", () => resolve());
    });
    req.on("error", reject);
    req.end();
  });
}

interface DictFigures {
  capacity: number;
  free: number;
  series: number;
  maxSeries: number;
}

async function measure(n: number): Promise<{ routes: number; idle_bytes: number; used_bytes: number; series: number; max_series: number; capacity: number }> {
  const runtime = findRuntime();
  const prefix = mkdtempSync(join(tmpdir(), "autoscale-mem-"));
  const port = await freePort();
  const adminPort = await freePort();
  const routes = Array.from({ length: n }, (_, i) => ({ name: `m${i}`, match: { exact: `/m${i}` }, pool: "p" }));
  const config = { listen: port, admin: { listen: `127.0.0.1:${adminPort}` }, pools: { p: { peers: [{ host: "127.0.0.1", port: 9, weight: 1 }], balancer: "round_robin" } }, routes };
  const configFile = join(prefix, "autoscale.json");
  writeFileSync(configFile, JSON.stringify(config));
  mkdirSync(join(prefix, "logs"), { recursive: true });
  const conf = `${nginxHead(runtime, { workers: 2 })}    include ${join(projectRoot, "build", "nginx", "autoscale.conf")};
    server {
        listen 127.0.0.1:${port};
        location / {
            access_by_lua_block { require("resty.autoscale").access() }
            return 200 "ok\\n";
            log_by_lua_block { require("resty.autoscale").log() }
        }
    }
    server {
        listen 127.0.0.1:${adminPort};
        location / { content_by_lua_block { require("resty.autoscale").admin() } }
    }
}
`;
  const nginx = startNginx(runtime, prefix, conf, { ...process.env, AUTOSCALE_CONFIG: configFile });
  try {
    const dictUrl = `http://127.0.0.1:${adminPort}/autoscale/metrics/dict`;
    await waitForHttp(dictUrl, 60000);
    await new Promise((r) => setTimeout(r, 2500)); // the first flush admits the configured series
    const idle = (await fetchJson(dictUrl)) as DictFigures;
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < n) await get(`http://127.0.0.1:${port}/m${next++}`);
      }),
    );
    await new Promise((r) => setTimeout(r, 2500));
    const after = (await fetchJson(dictUrl)) as DictFigures;
    return { routes: n, idle_bytes: idle.capacity - idle.free, used_bytes: after.capacity - after.free, series: after.series, max_series: after.maxSeries, capacity: after.capacity };
  } finally {
    await nginx.stop();
    rmSync(prefix, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const counts = process.argv.slice(2).map(Number);
  const results = [];
  for (const n of counts.length > 0 ? counts : [10, 1000, 100000]) {
    const r = await measure(n);
    process.stdout.write(`${String(n).padStart(7)} routes: ${(r.used_bytes / 1024).toFixed(0).padStart(6)} KiB used of ${(r.capacity / 1048576).toFixed(0)} MiB (${(r.idle_bytes / 1024).toFixed(0)} KiB before traffic), ${r.series} series with own keys (cap ${r.max_series})\n`);
    results.push(r);
  }
  const out = join(projectRoot, "bench", "results", "metrics_memory.json");
  writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), results }, null, 2) + "\n");
  process.stdout.write(`written: ${out}\n`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
