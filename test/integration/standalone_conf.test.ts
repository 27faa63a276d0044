// The Docker image generates nginx.conf under LuaJIT (src/tools/standalone_conf.ts) because it
// carries no Node; `autoscale run` generates it in Node (src/cli/nginx_conf.ts). Both must write
// the same file for the same config: compared here for a table of configs and options.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync, readFileSync, statSync, rmSync } from "node:fs";
import { join } from "node:path";
import { generateNginxConf } from "../../src/cli/nginx_conf.js";
import { runLuaMain } from "../../src/cli/lua.js";
import { projectRoot } from "../../src/cli/paths.js";
import { tempDir } from "./harness.js";

const include = join(projectRoot, "build", "nginx", "autoscale.conf");
const peer = (port: number) => ({ host: "127.0.0.1", port });

const cases: { name: string; config: any; workers?: number; errorLog?: string; accessLog?: string; modules: string[] }[] = [
  {
    name: "one pool, a prefix route: catch-all 404 location",
    config: { pools: { api: { peers: [peer(8081)] } }, routes: [{ name: "api", match: { prefix: "/api" }, pool: "api" }] },
    modules: ["/usr/share/nginx/modules/ndk_http_module.so", "/usr/share/nginx/modules/ngx_http_lua_module.so"],
  },
  {
    name: "pools sorted, names made upstream-safe, exact and root routes, admin port only",
    config: {
      listen: 18080,
      admin: { listen: 19180 },
      pools: { "web-2.b": { peers: [peer(1)], balancer: { algorithm: "ewma", tries: 3 } }, api: { peers: [peer(2)], balancer: "round_robin" }, Z_z: { peers: [peer(3)] } },
      routes: [
        { name: "health", match: { exact: "/healthz" }, pool: "api" },
        { name: "web", match: { prefix: "/" }, pool: "web-2.b" },
        { name: "z", match: { prefix: "/z/" }, pool: "Z_z" },
      ],
    },
    workers: 3,
    errorLog: "stderr notice",
    accessLog: "/dev/stdout combined buffer=32k flush=1s",
    modules: [],
  },
  {
    name: "admin on all interfaces as a string",
    config: { admin: { listen: "0.0.0.0:9181" }, pools: { p: { peers: [peer(8081)] } }, routes: [{ name: "r", match: { prefix: "/r" }, pool: "p" }] },
    workers: 1,
    modules: ["/m.so"],
  },
];

for (const c of cases) {
  test(`the Lua generator writes what nginx_conf.ts writes: ${c.name}`, () => {
    const dir = tempDir("conf");
    try {
      const file = join(dir, "autoscale.json");
      writeFileSync(file, JSON.stringify(c.config));
      const args = ["--config", file, "--include", include];
      for (const m of c.modules) args.push("--load-module", m);
      if (c.workers !== undefined) args.push("--workers", String(c.workers));
      if (c.errorLog !== undefined) args.push("--error-log", c.errorLog);
      if (c.accessLog !== undefined) args.push("--access-log", c.accessLog);
      const lua = runLuaMain("resty.autoscale.tools.standalone_conf", args);
      assert.equal(lua.stderr, "");
      assert.equal(lua.status, 0);
      const node = generateNginxConf(c.config, { prefix: dir, runtime: { binary: "nginx", loadModules: c.modules }, workers: c.workers, errorLog: c.errorLog, accessLog: c.accessLog });
      assert.equal(lua.stdout, node);
      // The proxy's requests may be logged; the admin server's polls and health checks never are.
      assert.ok(node.includes(`\nhttp {\n    access_log ${c.accessLog ?? "off"};\n`), "the access_log of the proxy");
      assert.match(node, /listen [^\n]+;\n        access_log off;   # health checks/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test("environment overrides go into a private copy of the config, and the health probe address", () => {
  const dir = tempDir("conf");
  try {
    const file = join(dir, "in.json");
    writeFileSync(file, JSON.stringify(cases[0].config));
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, "  token-from-a-file-0123456789\n");
    const out = join(dir, "effective.json");
    const probe = join(dir, "admin-address");
    const r = runLuaMain("resty.autoscale.tools.standalone_conf", [
      "--config", file, "--include", include, "--listen", "9090", "--admin-listen", "0.0.0.0:9333",
      "--admin-token-file", tokenFile, "--write-config", out, "--write-admin", probe, "--env", "AWS_SECRET_ACCESS_KEY",
    ]);
    assert.equal(r.status, 0, r.stderr);
    const effective = JSON.parse(readFileSync(out, "utf8"));
    assert.deepEqual(effective.admin, { listen: "0.0.0.0:9333", token: "token-from-a-file-0123456789" });
    assert.equal(effective.listen, 9090);
    assert.deepEqual(effective.routes, cases[0].config.routes);
    assert.equal(statSync(out).mode & 0o777, 0o600, "the copy holding the token is private");
    assert.equal(readFileSync(probe, "utf8"), "127.0.0.1 9333\n");
    assert.match(r.stdout, /^        listen 9090 reuseport;$/m);
    assert.match(r.stdout, /^        listen 0\.0\.0\.0:9333;$/m);
    assert.match(r.stdout, /\nenv AWS_SECRET_ACCESS_KEY;\nworker_processes /, "env lines sit in the main context, before worker_processes, as nginx_conf.ts writes them");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a bad config or a short token is refused with the validator's message, before anything is written", () => {
  const dir = tempDir("conf");
  try {
    const file = join(dir, "in.json");
    writeFileSync(file, JSON.stringify({ pools: { api: { peers: [{ host: "backend", port: 80 }] } }, routes: [] }));
    const bad = runLuaMain("resty.autoscale.tools.standalone_conf", ["--config", file, "--include", include]);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /pools\.api\.peers\[0\]\.host: expected an IPv4 or IPv6 address/);
    assert.equal(bad.stdout, "");
    writeFileSync(file, JSON.stringify(cases[0].config));
    const short = runLuaMain("resty.autoscale.tools.standalone_conf", ["--config", file, "--include", include, "--admin-token-env", "AUTOSCALE_TEST_UNSET_VARIABLE"]);
    assert.equal(short.status, 1);
    assert.match(short.stderr, /environment variable AUTOSCALE_TEST_UNSET_VARIABLE is not set/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("both generators create a missing state_dir for the workers (nobody's when run as root) and leave an existing one alone", () => {
  const dir = tempDir("conf");
  try {
    const nobody = readFileSync("/etc/passwd", "utf8").split("\n").map((l) => l.split(":")).find((f) => f[0] === "nobody");
    const root = process.getuid?.() === 0;
    const expectedUid = root ? Number(nobody![2]) : process.getuid!();
    for (const which of ["lua", "node"]) {
      const stateDir = join(dir, which, "state");
      const config = { ...cases[0].config, state_dir: stateDir };
      const file = join(dir, `${which}.json`);
      writeFileSync(file, JSON.stringify(config));
      let out: string;
      if (which === "lua") {
        const lua = runLuaMain("resty.autoscale.tools.standalone_conf", ["--config", file, "--include", include, ...cases[0].modules.flatMap((m) => ["--load-module", m])]);
        assert.equal(lua.status, 0, lua.stderr);
        out = lua.stdout;
      } else {
        out = generateNginxConf(config, { prefix: dir, runtime: { binary: "nginx", loadModules: cases[0].modules } });
      }
      const st = statSync(stateDir);
      assert.ok(st.isDirectory(), `${which}: state_dir created`);
      assert.equal(st.uid, expectedUid, `${which}: state_dir owned by the workers' user`);
      assert.equal(st.mode & 0o777, 0o755);
      // The nginx.conf itself does not change with state_dir (the workers read it from the config).
      assert.equal(out, generateNginxConf(cases[0].config, { prefix: dir, runtime: { binary: "nginx", loadModules: cases[0].modules } }));
    }
    // An existing directory keeps its owner and mode.
    const existing = join(dir, "existing");
    mkdirSync(existing, { mode: 0o700 });
    generateNginxConf({ ...cases[0].config, state_dir: existing }, { prefix: dir, runtime: { binary: "nginx", loadModules: [] } });
    assert.equal(statSync(existing).uid, process.getuid!());
    assert.equal(statSync(existing).mode & 0o777, 0o700);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
