// `autoscale validate FILE`: the same validation the gateway runs in init_by_lua, run under
// LuaJIT by the CLI. Prints every problem, one per line.
import { loadConfigFile } from "../config/load";

export function main(args: string[]): number {
  const path = args[0];
  if (path === undefined) {
    io.stderr.write("usage: autoscale validate FILE\n");
    return 2;
  }
  const [config, problems] = loadConfigFile(path);
  if (config === undefined) {
    for (const line of problems) io.stderr.write(`${path}: ${line}\n`);
    return 1;
  }
  io.stdout.write(`${path}: ok (${config.poolNames.length} pools, ${config.routes.length} routes)\n`);
  return 0;
}
