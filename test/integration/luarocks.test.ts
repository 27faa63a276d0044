// The luarocks package: `luarocks make` of the generated rockspec into a temporary tree (offline),
// then an nginx whose Lua path is only that tree plus the system's lua-resty-core and cjson,
// configured as docs/install.md tells an OpenResty user, serves traffic through the bundle.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, readdirSync, readFileSync, statSync, writeFileSync, rmSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { projectRoot } from "../../src/cli/paths.js";
import { startNginx } from "../../src/cli/nginx.js";
import { httpRequest, waitForHttp, fetchJson } from "../../src/cli/http_util.js";
import { eventually, freePort, runtime, startTestBackends, tempDir } from "./harness.js";

const rockspec = join(projectRoot, "rockspec", "lua-resty-autoscale-0.1.0-1.rockspec");
let tree: string;
let backends: Awaited<ReturnType<typeof startTestBackends>>;

function luaFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...luaFiles(p));
    else if (name.endsWith(".lua")) out.push(p);
  }
  return out;
}

/** The directory of a module the system's LuaJIT finds (lua-resty-core, cjson). */
function systemDir(module: string, kind: "path" | "cpath"): string {
  const r = spawnSync("luajit", ["-e", `io.write(package.searchpath(${JSON.stringify(module)}, package.${kind}))`], { encoding: "utf8" });
  assert.equal(r.status, 0, `luajit cannot find ${module}: ${r.stderr}`);
  const depth = module.split(".").length;
  let dir = r.stdout;
  for (let i = 0; i < depth; i++) dir = dirname(dir);
  return dir;
}

/** The rock's own directory in the tree (where copy_directories put nginx/autoscale.conf). */
function rockDir(): string {
  const r = spawnSync("luarocks", ["--lua-version", "5.1", "--tree", tree, "show", "--rock-dir", "lua-resty-autoscale"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

before(async () => {
  tree = tempDir("rocktree");
  chmodSync(tree, 0o755); // nginx workers run as nobody when the tests run as root
  backends = await startTestBackends([{ delay: 0 }, { delay: 0 }]);
});
after(async () => {
  await backends.stop();
  rmSync(tree, { recursive: true, force: true });
});

test("the committed rockspec lists exactly the modules of the build", () => {
  const r = spawnSync(process.execPath, [join(projectRoot, "scripts", "make-rockspec.mjs"), "--check"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
});

test("luarocks make installs every module under resty/autoscale without the network", () => {
  // A dead proxy: any download luarocks tried would fail the install.
  const env = { ...process.env, http_proxy: "http://127.0.0.1:9", https_proxy: "http://127.0.0.1:9", HTTP_PROXY: "http://127.0.0.1:9", HTTPS_PROXY: "http://127.0.0.1:9" };
  const r = spawnSync("luarocks", ["--lua-version", "5.1", "--tree", tree, "make", rockspec], { cwd: projectRoot, encoding: "utf8", env });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /lua-resty-autoscale 0\.1\.0-1 is now installed/);
  const built = luaFiles(join(projectRoot, "build", "lua")).map((p) => relative(join(projectRoot, "build", "lua"), p)).sort();
  const installed = luaFiles(join(tree, "share", "lua", "5.1")).map((p) => relative(join(tree, "share", "lua", "5.1"), p)).sort();
  assert.deepEqual(installed, built);
  assert.ok(installed.includes(join("resty", "autoscale", "lualib_bundle.lua")), "the lualib bundle is namespaced");
  assert.ok(installed.every((p) => p.startsWith(join("resty", "autoscale") + "/")), "nothing outside resty/autoscale");
  const list = spawnSync("luarocks", ["--lua-version", "5.1", "--tree", tree, "list", "--porcelain"], { encoding: "utf8" });
  assert.match(list.stdout, /^lua-resty-autoscale\t0\.1\.0-1\tinstalled\t/m);
  // The include goes with the rock, so a luarocks user needs no source checkout.
  assert.equal(readFileSync(join(rockDir(), "nginx", "autoscale.conf"), "utf8"), readFileSync(join(projectRoot, "nginx", "autoscale.conf"), "utf8"));
});

test("nginx with only the rock tree on its Lua path serves traffic through the bundle", async () => {
  const prefix = tempDir("rocknginx");
  const port = await freePort();
  const adminPort = await freePort();
  const lua = join(tree, "share", "lua", "5.1");
  const core = systemDir("resty.core", "path");
  const cjsonDir = systemDir("cjson", "cpath");
  const configFile = join(prefix, "autoscale.json");
  writeFileSync(
    configFile,
    JSON.stringify({
      admin: { listen: `127.0.0.1:${adminPort}` },
      pools: { api: { peers: backends.ports.map((p) => ({ host: "127.0.0.1", port: p })), balancer: "round_robin" } },
      routes: [{ name: "api", match: { prefix: "/" }, pool: "api" }],
    }),
  );
  // The lines docs/install.md gives a luarocks user: the path, the rock's include, one upstream,
  // one location, the admin server.
  const conf = `${runtime.loadModules.map((m) => `load_module ${m};`).join("\n")}
worker_processes 2;
error_log logs/error.log notice;
pid logs/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path temp/client_body;
    proxy_temp_path temp/proxy;
    lua_package_path "${lua}/?.lua;${lua}/?/init.lua;${core}/?.lua;${core}/?/init.lua;";
    lua_package_cpath "${cjsonDir}/?.so;";
    include ${join(rockDir(), "nginx", "autoscale.conf")};

    upstream api {
        server 0.0.0.1;
        balancer_by_lua_block { require("resty.autoscale").balance("api") }
        keepalive 16;
    }
    server {
        listen 127.0.0.1:${port};
        location / {
            proxy_pass http://api;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            log_by_lua_block { require("resty.autoscale").log("api") }
        }
        location = /where {
            content_by_lua_block { ngx.say(package.searchpath("resty.autoscale", package.path)) }
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
    await waitForHttp(`http://127.0.0.1:${adminPort}/healthz`, 10000);
    const where = await httpRequest(`http://127.0.0.1:${port}/where`);
    assert.equal(where.body.trim(), join(lua, "resty", "autoscale", "init.lua"));
    const bodies = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const r = await httpRequest(`http://127.0.0.1:${port}/x${i}`);
      assert.equal(r.status, 200);
      bodies.add(r.body.trim());
    }
    assert.deepEqual([...bodies].sort(), backends.ports.map((p) => `backend ${p}`).sort(), "round robin reaches both peers");
    const status = await eventually("counts flushed", 5000, async () => {
      const s: any = await fetchJson(`http://127.0.0.1:${adminPort}/autoscale/status`);
      return s.routes.api.windows["60s"].requests === 40 ? s : undefined;
    });
    assert.deepEqual(
      status.pools.api.peers.map((p: any) => p.windows["60s"].requests),
      [20, 20],
    );
  } finally {
    await nginx.stop();
    rmSync(prefix, { recursive: true, force: true });
  }
});
