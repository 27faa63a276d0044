// scripts/install-runtime.sh decides what to install from what it finds: run against stub
// commands on a private PATH (an apt-get that records its arguments), never the real apt.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { projectRoot } from "../../src/cli/paths.js";
import { tempDir } from "./harness.js";

const script = join(projectRoot, "scripts", "install-runtime.sh");
const TEST_TOOLS = ["busted", "redis-server", "redis-cli", "prometheus", "promtool", "wrk", "luarocks", "curl", "openssl"];

interface Machine {
  /** Commands on PATH (stubs that succeed), besides the ones given below. */
  commands: string[];
  /** luajit on PATH: "cjson" loads cjson, "bare" cannot. */
  luajit?: "cjson" | "bare";
  /** Debian's lua module in nginx's module directory. */
  luaModule?: boolean;
  apt?: boolean;
}

function run(m: Machine, args: string[] = []): { status: number; stderr: string; installed: string[] | undefined } {
  const dir = tempDir("install");
  const bin = join(dir, "bin");
  const modules = join(dir, "modules");
  mkdirSync(bin);
  mkdirSync(modules);
  const log = join(dir, "apt.log");
  const stub = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  for (const c of m.commands) stub(c, "exit 0");
  if (m.luajit) stub("luajit", m.luajit === "cjson" ? "exit 0" : 'echo "module \'cjson.safe\' not found" >&2; exit 1');
  if (m.apt) stub("apt-get", `echo "$*" >> "${log}"`);
  stub("sudo", 'exec "$@"');
  symlinkSync("/usr/bin/id", join(bin, "id"));
  if (m.luaModule) writeFileSync(join(modules, "ngx_http_lua_module.so"), "");
  const r = spawnSync("/bin/bash", [script, ...args], { encoding: "utf8", env: { PATH: bin, AUTOSCALE_NGINX_MODULES: modules } });
  const installs = existsSync(log) ? readFileSync(log, "utf8").split("\n").filter((l) => l.startsWith("install ")) : [];
  rmSync(dir, { recursive: true, force: true });
  assert.ok(installs.length <= 1, "one apt-get install at most");
  const installed = installs.length === 0 ? undefined : installs[0].split(" ").filter((w) => w !== "" && !w.startsWith("-") && w !== "install");
  return { status: r.status ?? -1, stderr: r.stderr, installed };
}

const NGINX = ["nginx", "libnginx-mod-http-lua", "lua-resty-core", "lua-resty-lrucache"];
const LUA = ["luajit2", "lua-cjson"];

test("install-runtime installs exactly what is missing, and nothing of nginx when OpenResty is on PATH", () => {
  const cases: Array<[string, Machine, string[], string[] | undefined]> = [
    ["OpenResty and luajit with cjson", { commands: ["openresty"], luajit: "cjson", apt: true }, [], undefined],
    ["OpenResty, no luajit", { commands: ["openresty"], apt: true }, [], LUA],
    ["OpenResty, a luajit without cjson", { commands: ["openresty"], luajit: "bare", apt: true }, [], LUA],
    ["Debian nginx with the lua module, luajit with cjson", { commands: ["nginx"], luajit: "cjson", luaModule: true, apt: true }, [], undefined],
    ["nginx without the lua module", { commands: ["nginx"], luajit: "cjson", apt: true }, [], NGINX],
    ["a fresh machine", { commands: [], apt: true }, [], [...NGINX, ...LUA]],
    ["a fresh machine, --test", { commands: [], apt: true }, ["--test"], [...NGINX, ...LUA, "lua-busted", "redis-server", "prometheus", "wrk", "luarocks", "curl", "ca-certificates", "openssl"]],
    ["the runtime there, --test without the test tools", { commands: ["openresty"], luajit: "cjson", apt: true }, ["--test"], ["lua-busted", "redis-server", "prometheus", "wrk", "luarocks", "curl", "ca-certificates", "openssl"]],
    ["everything there, --test", { commands: ["openresty", ...TEST_TOOLS], luajit: "cjson", apt: true }, ["--test"], undefined],
  ];
  for (const [name, machine, args, want] of cases) {
    const r = run(machine, args);
    assert.equal(r.status, 0, `${name}: ${r.stderr}`);
    assert.deepEqual(r.installed, want, name);
  }
});

test("without apt-get, install-runtime names what to install and fails", () => {
  const openresty = run({ commands: ["openresty"] });
  assert.equal(openresty.status, 1);
  assert.match(openresty.stderr, /no apt-get/);
  assert.match(openresty.stderr, /LuaJIT 2\.1 as `luajit` on PATH, with lua-cjson/);
  assert.doesNotMatch(openresty.stderr, /OpenResty/, "OpenResty is there already");

  const bare = run({ commands: [] }, ["--test"]);
  assert.equal(bare.status, 1);
  assert.match(bare.stderr, /OpenResty \(https:\/\/openresty\.org\)/);
  assert.match(bare.stderr, /lua-nginx-module, lua-resty-core and lua-resty-lrucache/);
  assert.match(bare.stderr, /LuaJIT 2\.1/);
  assert.match(bare.stderr, /busted/);

  const complete = run({ commands: ["nginx"], luajit: "cjson", luaModule: true });
  assert.equal(complete.status, 0, "nothing missing: nothing to say");
  assert.equal(complete.stderr, "");
});
