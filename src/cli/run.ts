// `autoscale run --config FILE [--prefix DIR]`: validates the config, generates nginx.conf for a
// standalone gateway and runs nginx in the foreground. SIGINT/SIGTERM stop it gracefully.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { runLuaMain } from "./lua.js";
import { findRuntime } from "./runtime.js";
import { GatewayConfig, generateNginxConf } from "./nginx_conf.js";
import { preparePrefix, startNginx, testConf } from "./nginx.js";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

export function parseFlags(args: string[], known: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const name = args[i].replace(/^--/, "");
    if (!args[i].startsWith("--") || !known.includes(name)) throw new Error(`unknown option "${args[i]}" (expected ${known.map((k) => "--" + k).join(", ")})`);
    const value = args[i + 1];
    if (value === undefined || value.startsWith("--")) throw new Error(`option --${name} needs a value`);
    out[name] = value;
    i++;
  }
  return out;
}

/** Validates with the gateway's own (Lua) validator; throws with every problem. */
export function loadValidConfig(file: string): GatewayConfig {
  const r = runLuaMain("resty.autoscale.tools.validate", [file]);
  if (r.status !== 0) throw new Error(r.stderr.trim() || `config ${file} is invalid`);
  return JSON.parse(readFileSync(file, "utf8")) as GatewayConfig;
}

export async function runCommand(args: string[]): Promise<number> {
  const flags = parseFlags(args, ["config", "prefix", "workers"]);
  if (flags.config === undefined) throw new Error("usage: autoscale run --config FILE [--prefix DIR] [--workers N]");
  const configFile = resolve(flags.config);
  const cfg = loadValidConfig(configFile);
  const prefix = resolve(flags.prefix ?? ".autoscale");
  const runtime = findRuntime();
  const conf = generateNginxConf(cfg, { prefix, runtime, workers: flags.workers ? Number(flags.workers) : undefined, errorLog: "stderr notice" });
  const env = { ...process.env, AUTOSCALE_CONFIG: configFile };
  preparePrefix(prefix);
  writeFileSync(join(prefix, "conf", "nginx.conf"), conf);
  const problem = testConf(runtime, prefix, env);
  if (problem !== undefined) throw new Error(`nginx refused the generated config:\n${problem}`);
  // nginx in its own process group, so that Ctrl-C reaches only this process, which stops
  // nginx gracefully (SIGQUIT).
  const nginx = startNginx(runtime, prefix, conf, env, "inherit", true);
  const stop = () => void nginx.stop();
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  // Outside the terminal's group nginx would outlive this process if it ended another way.
  process.on("exit", () => {
    if (nginx.process.exitCode === null && nginx.process.signalCode === null) nginx.process.kill("SIGQUIT");
  });
  process.stderr.write(`autoscale: gateway on :${cfg.listen ?? 8080}, admin on ${cfg.admin?.listen ?? "127.0.0.1:9180"} (prefix ${prefix}); Ctrl-C stops it\n`);
  return nginx.exited;
}
