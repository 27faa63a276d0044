// Runs compiled Lua modules under LuaJIT, outside nginx (the production code, not a copy).
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { projectRoot } from "./paths.js";

export interface LuaResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs `require(module).main(args)` under luajit and returns its exit code and output. */
export function runLuaMain(module: string, args: string[], input?: string): LuaResult {
  const r = spawnSync("luajit", [join(projectRoot, "scripts", "luarun.lua"), module, ...args], {
    encoding: "utf8",
    input,
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.error) throw new Error(`cannot run luajit (${r.error.message}); run scripts/install-runtime.sh`);
  return { status: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}
