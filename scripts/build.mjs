// `npm run build`: the Lua build (tstl.json) and the Node build (tsconfig.node.json).
// TypeScriptToLua exits 0 on its own warnings; any "warning TSTL" fails the build here.
import { spawnSync } from "node:child_process";
import { rmSync, readdirSync, statSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const bin = (name) => join(root, "node_modules", ".bin", name);

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: "utf8" });
  const out = (r.stdout ?? "") + (r.stderr ?? "");
  if (out.trim()) process.stdout.write(out);
  return { status: r.status ?? 1, out };
}

rmSync(join(root, "build", "lua"), { recursive: true, force: true });
const lua = run(bin("tstl"), ["-p", "tstl.json"]);
if (lua.status !== 0 || /warning TSTL/i.test(lua.out) || /error/i.test(lua.out)) {
  console.error("build: the Lua build failed (see the messages above)");
  process.exit(1);
}

// Hot-path modules must not need the lualib bundle: list those that do, for review.
const luaDir = join(root, "build", "lua");
let count = 0;
const needLualib = [];
(function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith(".lua")) {
      count++;
      if (/lualib_bundle/.test(readFileSync(p, "utf8")) && !name.startsWith("lualib_bundle")) needLualib.push(p.slice(luaDir.length + 1));
    }
  }
})(luaDir);

// The drop-in include for a git checkout: nginx/autoscale.conf with lua_package_path set.
const includeText = readFileSync(join(root, "nginx", "autoscale.conf"), "utf8").replace(
  /^# lua_package_path .*$/m,
  `lua_package_path "${luaDir}/?.lua;${luaDir}/?/init.lua;;";`,
);
mkdirSync(join(root, "build", "nginx"), { recursive: true });
writeFileSync(join(root, "build", "nginx", "autoscale.conf"), includeText);

// The rockspec's module list follows build/lua (scripts/make-rockspec.mjs).
const rockspec = run(process.execPath, [join(root, "scripts", "make-rockspec.mjs")]);
if (rockspec.status !== 0) process.exit(1);

const node = run(bin("tsc"), ["-p", "tsconfig.node.json"]);
if (node.status !== 0) {
  console.error("build: the Node build failed (see the messages above)");
  process.exit(1);
}
console.log(`build: ${count} Lua modules in build/lua (lualib helpers used by: ${needLualib.join(", ") || "none"}); Node code in build/node`);

// The published JSON Schema of the config: the per-section files beside their validators,
// bundled into one self-contained build/autoscale.schema.json (scripts/schema_bundle.mjs).
const { bundleSchema } = await import("./schema_bundle.mjs");
writeFileSync(join(root, "build", "autoscale.schema.json"), JSON.stringify(bundleSchema(join(root, "src", "config", "autoscale.schema.json")), null, 2) + "\n");
