// Persists each pool's predictive history (Holt-Winters) so it survives `nginx -s reload`
// (shared dict) and restarts (a file under the nginx prefix).
import { HoltWinters, decode, encode } from "../../policy/holtwinters";
import { PredictiveConfig } from "../../policy/schema";
import { STATE_DICT } from "../state";

function dictKey(pool: string): string {
  return `ctl|history|${pool}`;
}

export function historyFile(pool: string): string {
  return `${ngx.config.prefix()}autoscale-history-${string.gsub(pool, "[^%w_%.%-]", "_")[0]}.txt`;
}

let fileWarned = false;

export function saveHistory(pool: string, h: HoltWinters): void {
  const text = encode(h);
  ngx.shared[STATE_DICT]!.set(dictKey(pool), text);
  const path = historyFile(pool);
  const tmp = `${path}.tmp`;
  const [f, err] = io.open(tmp, "w");
  if (f === undefined) {
    if (!fileWarned) ngx.log(ngx.WARN, "autoscale: cannot write the predictive history to ", path, ": ", err, " (it survives reloads, not restarts)");
    fileWarned = true;
    return;
  }
  f.write(text);
  f.close();
  os.rename(tmp, path);
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
