#!/usr/bin/env node
// The `autoscale` command. Builds the project first when it has not been built yet.
const { existsSync } = require("node:fs");
const { join } = require("node:path");
const { spawnSync } = require("node:child_process");

const root = join(__dirname, "..");
const main = join(root, "build", "node", "src", "cli", "main.js");
if (!existsSync(main) || !existsSync(join(root, "build", "lua", "resty", "autoscale"))) {
  const r = spawnSync(process.execPath, [join(root, "scripts", "build.mjs")], { stdio: "inherit" });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
require(main).main(process.argv.slice(2)).then(
  (code) => { if (typeof code === "number") process.exitCode = code; },
  (err) => { console.error(`autoscale: ${err && err.message ? err.message : err}`); process.exitCode = 1; },
);
