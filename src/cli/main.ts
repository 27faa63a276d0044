// The `autoscale` command line.
import { backtestCommand } from "./backtest.js";
import { demoCommand } from "./demo.js";
import { runLuaMain } from "./lua.js";
import { runCommand } from "./run.js";

const USAGE = `usage: autoscale <command> [options]

commands:
  run --config FILE [--prefix DIR]   run the standalone gateway in the foreground
  validate FILE                      check a config file and print every problem
  demo                               the gateway demo: backends, traffic, weight shift, scale signal
  backtest --trace FILE [options]    replay a request-rate trace through a scaling policy
`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "validate": {
      if (rest.length !== 1) {
        process.stderr.write("usage: autoscale validate FILE\n");
        return 2;
      }
      const r = runLuaMain("resty.autoscale.tools.validate", rest);
      process.stdout.write(r.stdout);
      process.stderr.write(r.stderr);
      return r.status;
    }
    case "run":
      return runCommand(rest);
    case "demo":
      return demoCommand(rest);
    case "backtest":
      return backtestCommand(rest);
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`autoscale: unknown command "${command}"\n${USAGE}`);
      return 2;
  }
}
