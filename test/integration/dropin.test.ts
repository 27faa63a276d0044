// The drop-in include on a typical existing nginx.conf (test/fixtures/dropin/nginx.conf, not
// written for this project): with only the documented lines added (docs/install.md), every
// untouched location answers exactly as before, and the chosen upstream and location get the
// bundle's balancer and metrics.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { projectRoot } from "../../src/cli/paths.js";
import { startNginx } from "../../src/cli/nginx.js";
import { httpRequest, waitForHttp, fetchJson } from "../../src/cli/http_util.js";
import { eventually, freePort, runtime, startTestBackends, tempDir } from "./harness.js";

const fixture = join(projectRoot, "test", "fixtures", "dropin");
let backends: Awaited<ReturnType<typeof startTestBackends>>;
let ports: { site: number; redirect: number; admin: number };

before(async () => {
  backends = await startTestBackends([{ delay: 0 }, { delay: 0 }, { delay: 0 }]);
  ports = { site: await freePort(), redirect: await freePort(), admin: await freePort() };
});
after(async () => backends.stop());

function originalConf(): string {
  const [app, api1, api2] = backends.ports;
  const text = readFileSync(join(fixture, "nginx.conf"), "utf8")
    .replaceAll("__APP_PORT__", String(app))
    .replaceAll("__API_PORT_1__", String(api1))
    .replaceAll("__API_PORT_2__", String(api2))
    .replaceAll("__REDIRECT_PORT__", String(ports.redirect))
    .replaceAll("__PORT__", String(ports.site))
    .replaceAll("__ROOT__", join(fixture, "html"));
  // The site's own modules line (Debian: /etc/nginx/modules-enabled), the same in both runs.
  return runtime.loadModules.map((m) => `load_module ${m};\n`).join("") + text;
}

/** Inserts `line` after the one line that matches `anchor`, with the anchor's indentation + 4. */
function insertAfter(conf: string, anchor: RegExp, line: string): string {
  const lines = conf.split("\n");
  const at = lines.findIndex((l) => anchor.test(l));
  assert.ok(at >= 0 && lines.findIndex((l, i) => i > at && anchor.test(l)) < 0, `one line matches ${anchor}`);
  const indent = lines[at].match(/^\s*/)![0] + "    ";
  lines.splice(at + 1, 0, indent + line);
  return lines.join("\n");
}

/** Exactly the lines docs/install.md adds for the drop-in install. */
function withBundle(conf: string): string {
  let c = insertAfter(conf, /^http \{$/, `include ${join(projectRoot, "build", "nginx", "autoscale.conf")};`);
  c = insertAfter(c, /^\s*upstream api_backend \{$/, `balancer_by_lua_block { require("resty.autoscale").balance("api") }`);
  c = insertAfter(c, /^\s*location \/api\/ \{$/, `log_by_lua_block { require("resty.autoscale").log("api") }`);
  c = insertAfter(c, /^http \{$/, `server { listen 127.0.0.1:${ports.admin}; access_log off; location / { content_by_lua_block { require("resty.autoscale").admin() } } }`);
  return c;
}

const requests: { port: "site" | "redirect"; host: string; path: string; method?: string; headers?: Record<string, string> }[] = [
  { port: "site", host: "www.example.test", path: "/" },
  { port: "site", host: "www.example.test", path: "/index.html" },
  { port: "site", host: "www.example.test", path: "/index.html", method: "HEAD" },
  { port: "site", host: "www.example.test", path: "/nowhere" },
  { port: "site", host: "www.example.test", path: "/old-page" },
  { port: "site", host: "www.example.test", path: "/whoami", headers: { "x-client": "mobile" } },
  { port: "site", host: "www.example.test", path: "/whoami" },
  { port: "site", host: "www.example.test", path: "/app/orders?id=7" },
  { port: "site", host: "www.example.test", path: "/assets/site.css" },
  { port: "site", host: "unknown.example.test", path: "/" },
  { port: "site", host: "static.example.test", path: "/site.css" },
  { port: "site", host: "static.example.test", path: "/app.js" },
  { port: "site", host: "static.example.test", path: "/index.html" },
  { port: "redirect", host: "www.example.test", path: "/shop?item=3" },
];
const KEPT_HEADERS = ["location", "content-type", "content-length", "x-frame-options", "cache-control", "etag", "last-modified", "server", "connection"];

async function answers(): Promise<unknown[]> {
  const out: unknown[] = [];
  for (const r of requests) {
    const res = await httpRequest(`http://127.0.0.1:${ports[r.port]}${r.path}`, { method: r.method, headers: { host: r.host, ...r.headers } });
    const headers: Record<string, unknown> = {};
    for (const h of KEPT_HEADERS) headers[h] = res.headers[h];
    out.push({ request: `${r.method ?? "GET"} ${r.host}${r.path}`, status: res.status, headers, body: res.body });
  }
  return out;
}

async function run<T>(conf: string, env: NodeJS.ProcessEnv, body: (prefix: string) => Promise<T>): Promise<T> {
  const prefix = tempDir("dropin");
  const nginx = startNginx(runtime, prefix, conf, env);
  try {
    await waitForHttp(`http://127.0.0.1:${ports.site}/index.html`, 10000);
    return await body(prefix);
  } catch (e) {
    let log = "";
    try {
      log = readFileSync(join(prefix, "logs", "error.log"), "utf8");
    } catch {}
    throw new Error(`${(e as Error).message}\n${log}`);
  } finally {
    await nginx.stop();
    rmSync(prefix, { recursive: true, force: true });
  }
}

const apiPaths = Array.from({ length: 30 }, (_, i) => `/api/items/${i}`);

test("with the include, untouched locations answer exactly as before and the API goes through the bundle", async () => {
  const accessLog = (prefix: string) => readFileSync(join(prefix, "logs", "access.log"), "utf8");
  const before = await run(originalConf(), process.env, async (prefix) => {
    const a = await answers();
    const api = [];
    for (const p of apiPaths) api.push((await httpRequest(`http://127.0.0.1:${ports.site}${p}`, { headers: { host: "www.example.test" } })).status);
    return { answers: a, api, log: accessLog(prefix) };
  });

  const configFile = join(tempDir("dropincfg"), "autoscale.json");
  const [, api1, api2] = backends.ports;
  writeFileSync(
    configFile,
    JSON.stringify({
      admin: { listen: `127.0.0.1:${ports.admin}` },
      pools: { api: { peers: [{ host: "127.0.0.1", port: api1 }, { host: "127.0.0.1", port: api2 }], balancer: "round_robin" } },
      routes: [{ name: "api", match: { prefix: "/api/" }, pool: "api" }],
    }),
  );
  const conf = withBundle(originalConf());
  const withIt = await run(conf, { ...process.env, AUTOSCALE_CONFIG: configFile }, async (prefix) => {
    const a = await answers();
    const api = [];
    const bodies = new Set<string>();
    for (const p of apiPaths) {
      const r = await httpRequest(`http://127.0.0.1:${ports.site}${p}`, { headers: { host: "www.example.test" } });
      api.push(r.status);
      bodies.add(r.body.trim());
    }
    const status: any = await eventually("API counts flushed", 5000, async () => {
      const s: any = await fetchJson(`http://127.0.0.1:${ports.admin}/autoscale/status`);
      return s.routes.api.windows["60s"].requests === apiPaths.length ? s : undefined;
    });
    return { answers: a, api, bodies, status, log: accessLog(prefix) };
  });
  rmSync(join(configFile, ".."), { recursive: true, force: true });

  assert.deepEqual(withIt.answers, before.answers);
  assert.deepEqual(withIt.api, before.api);
  assert.deepEqual(withIt.api, Array(apiPaths.length).fill(200));
  // The site's access log is unchanged too (the log phase of the bundle adds, never replaces).
  assert.equal(withIt.log, before.log);
  assert.deepEqual([...withIt.bodies].sort(), [`backend ${api1}`, `backend ${api2}`].sort());
  const peers = withIt.status.pools.api.peers;
  assert.deepEqual(peers.map((p: any) => p.address), [`127.0.0.1:${api1}`, `127.0.0.1:${api2}`]);
  assert.deepEqual(peers.map((p: any) => p.windows["60s"].requests), [15, 15], "round robin over the configured peers");
  assert.equal(withIt.status.routes.api.windows["60s"].errors, 0);
  assert.equal(withIt.status.routes.unmatched?.windows["60s"].requests ?? 0, 0, "untouched locations are not counted");
});

test("the documented lines are all that differ from the site's own nginx.conf", () => {
  const original = originalConf().split("\n");
  const changed = withBundle(originalConf()).split("\n");
  const added = changed.filter((l) => !original.includes(l)).map((l) => l.trim());
  assert.equal(changed.length, original.length + 4);
  assert.deepEqual(added, [
    `server { listen 127.0.0.1:${ports.admin}; access_log off; location / { content_by_lua_block { require("resty.autoscale").admin() } } }`,
    `include ${join(projectRoot, "build", "nginx", "autoscale.conf")};`,
    `balancer_by_lua_block { require("resty.autoscale").balance("api") }`,
    `log_by_lua_block { require("resty.autoscale").log("api") }`,
  ]);
});
