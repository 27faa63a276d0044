// init_by_lua and init_worker_by_lua: load and validate the config, start the timers.
import { loadConfigFile } from "../config/load";
import { buildState, getState, METRICS_DICT, STARTED_KEY, STATE_DICT, setState } from "./state";
import { flush } from "./metrics";
import { publishLiveContexts, sweepContexts } from "./request_context";
import * as balancing from "./balancing";
import { startControl } from "./scaler";
import { prepareAdmission, startAdmission } from "./admission_status";

/** Where the config file is: the argument, else $AUTOSCALE_CONFIG, else <nginx prefix>/autoscale.json. */
function configPath(path?: string): string {
  return path ?? os.getenv("AUTOSCALE_CONFIG") ?? `${ngx.config.prefix()}autoscale.json`;
}

/** init_by_lua: a bad config stops nginx start-up with every problem, each naming its JSON path. */
export function init(path?: string): void {
  const file = configPath(path);
  const [config, problems] = loadConfigFile(file);
  if (config === undefined) {
    error(`lua-resty-autoscale: invalid config ${file}:\n  ${problems.join("\n  ")}`, 0);
  }
  for (const name of [METRICS_DICT, STATE_DICT]) {
    if (ngx.shared[name] === undefined) error(`lua-resty-autoscale: missing "lua_shared_dict ${name} <size>;" in the http block (include nginx/autoscale.conf)`, 0);
  }
  const state = buildState(config, file);
  const berr = balancing.init(state);
  if (berr !== undefined) error(`lua-resty-autoscale: ${berr}`, 0);
  setState(state);
  prepareAdmission(state);
}

function logFailure(this: void, err: unknown): string {
  return debug.traceback(tostring(err), 2);
}

/** Runs a timer's work so that an error is logged with its traceback and the timer lives on. */
function guarded(this: void, what: string, fn: (this: void, now: number) => void): void {
  const [ok, err] = xpcall(fn, logFailure, ngx.now());
  if (!ok) ngx.log(ngx.ERR, "autoscale: ", what, " failed: ", tostring(err));
}

function onTick(this: void, premature: boolean): void {
  if (premature) return;
  const s = getState();
  if (s === undefined) return;
  guarded("metrics flush", (now) => flush(s, now));
  guarded("request contexts sweep", (now) => publishLiveContexts(ngx.shared[STATE_DICT]!, ngx.worker.id() ?? 0, sweepContexts(now, s.config.metrics.inflightMaxAge)));
}

/** init_worker_by_lua: per-worker timers; the control loop runs on one worker (a lease among them). */
export function init_worker(): void {
  math.randomseed(math.floor(ngx.now() * 1000) + ngx.worker.pid());
  const s = getState();
  if (s === undefined) return;
  ngx.shared[STATE_DICT]!.add(STARTED_KEY, ngx.now());
  const [ok, err] = ngx.timer.every(1, onTick);
  if (!ok) ngx.log(ngx.ERR, "autoscale: cannot start the metrics timer: ", err);
  balancing.initWorker(s);
  startAdmission();
  startControl(s);
}
