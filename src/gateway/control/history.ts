// Persists each pool's predictive history (Holt-Winters) so it survives `nginx -s reload`
// (shared dict) and restarts (a file in the state directory: the config's state_dir, else the
// nginx prefix).
import * as cjson from "cjson.safe";
import { HoltWinters, decode, encode } from "../../policy/holtwinters";
import { PredictiveConfig } from "../../policy/schema";
import { STATE_DICT, getState } from "../state";

/** Key in STATE_DICT: whether the state directory took the last write (shared by the workers). */
const STORE_KEY = "ctl|state_dir";

function dictKey(pool: string): string {
  return `ctl|history|${pool}`;
}

/** The state directory, with a trailing slash. */
export function stateDir(): string {
  const dir = getState()?.config.stateDir;
  if (dir === undefined) return ngx.config.prefix();
  return string.sub(dir, -1) === "/" ? dir : `${dir}/`;
}

export function historyFile(pool: string): string {
  return `${stateDir()}autoscale-history-${string.gsub(pool, "[^%w_%.%-]", "_")[0]}.txt`;
}

/**
 * Records the outcome of a write for the status page; the error log hears of a directory that
 * refuses writes once (when it starts refusing), not every minute nor once per worker or reload.
 */
function recordStore(path: string, err: string | undefined): void {
  const dict = ngx.shared[STATE_DICT]!;
  const before = dict.get(STORE_KEY)[0];
  const wasRefusing = type(before) === "string" && string.find(before as string, '"writable":false', 1, true)[0] !== undefined;
  const dir = stateDir();
  if (err !== undefined && !wasRefusing) {
    ngx.log(ngx.ERR, "autoscale: the state directory ", dir, " is not writable by the nginx workers (", err, "): the predictive history survives reloads but not restarts; set state_dir to a directory the worker user can write");
  } else if (err === undefined && wasRefusing) {
    ngx.log(ngx.NOTICE, "autoscale: the state directory ", dir, " is writable again");
  }
  const doc = { path: dir, writable: err === undefined, error: err, file: path, time: ngx.now() };
  dict.set(STORE_KEY, cjson.encode(doc)[0] ?? "{}");
}

/** The state directory's last write outcome (path, writable, error), undefined before the first. */
export function stateDirStatus(): unknown {
  const text = ngx.shared[STATE_DICT]!.get(STORE_KEY)[0];
  return type(text) === "string" ? cjson.decode(text as string)[0] : undefined;
}

export function saveHistory(pool: string, h: HoltWinters): void {
  const text = encode(h);
  ngx.shared[STATE_DICT]!.set(dictKey(pool), text);
  const path = historyFile(pool);
  const tmp = `${path}.tmp`;
  const [f, err] = io.open(tmp, "w");
  if (f === undefined) {
    recordStore(path, err ?? "cannot open");
    return;
  }
  const [written, werr] = f.write(text);
  f.close();
  if (written === undefined) {
    os.remove(tmp);
    recordStore(path, werr ?? "cannot write");
    return;
  }
  const [renamed, rerr] = os.rename(tmp, path);
  recordStore(path, renamed === undefined ? (rerr ?? "cannot rename") : undefined);
}

/** The saved history: the shared dict's copy, else the file's; undefined when there is none. */
export function loadHistory(pool: string, cfg: PredictiveConfig): HoltWinters | undefined {
  let text = ngx.shared[STATE_DICT]!.get(dictKey(pool))[0] as string | undefined;
  if (type(text) !== "string") {
    text = undefined;
    const [f] = io.open(historyFile(pool), "r");
    if (f !== undefined) {
      text = f.read("*a") as string | undefined;
      f.close();
    }
  }
  if (text === undefined || text === "") return undefined;
  const [h, err] = decode(text, cfg);
  if (h === undefined) ngx.log(ngx.WARN, "autoscale: saved predictive history of pool ", pool, " is unusable (", err, "): starting afresh");
  return h;
}
