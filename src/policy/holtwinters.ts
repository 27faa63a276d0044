// Holt-Winters forecaster (additive trend and additive seasonality) over a per-minute series.
// The first full season (a day of minutes by default) bootstraps level and seasonal terms;
// before that it forecasts nothing. Seasonal slots are keyed by the absolute minute modulo the
// season, so a history saved and restored later still lines up with the time of day.
// The forecaster family's interface: newX(config), observe(h, minute, value),
// forecast(h, minute), encode(h), decode(text, config).

export interface HoltWintersConfig {
  season: number;
  alpha: number;
  beta: number;
  gamma: number;
}

export interface HoltWinters {
  season: number;
  alpha: number;
  beta: number;
  gamma: number;
  level: number;
  trend: number;
  /** Slot minute % season + 1 holds that minute's seasonal offset. */
  seasonal: LuaTable<number, number>;
  /** The first two seasons' values, in order from bootStart; emptied after the second. */
  boot: LuaTable<number, number>;
  /** Values in boot; -1 once the two-season fit is done. */
  bootCount: number;
  bootStart: number;
  ready: boolean;
  /** The last minute observed (-1: none). */
  lastMinute: number;
  lastValue: number;
  /** Moving mean of the absolute one-minute-ahead forecast error (the forecast's uncertainty). */
  error: number;
}

export function newHoltWinters(cfg: HoltWintersConfig): HoltWinters {
  return {
    season: cfg.season,
    alpha: cfg.alpha,
    beta: cfg.beta,
    gamma: cfg.gamma,
    level: 0,
    trend: 0,
    seasonal: new LuaTable<number, number>(),
    boot: new LuaTable<number, number>(),
    bootCount: 0,
    bootStart: 0,
    ready: false,
    lastMinute: -1,
    lastValue: 0,
    error: 0,
  };
}

function resetHistory(h: HoltWinters): void {
  h.level = 0;
  h.trend = 0;
  h.error = 0;
  h.seasonal = new LuaTable<number, number>();
  h.boot = new LuaTable<number, number>();
  h.bootCount = 0;
  h.ready = false;
  h.lastMinute = -1;
}

function slotOf(h: HoltWinters, minute: number): number {
  return (minute % h.season) + 1;
}

function bootstrap(h: HoltWinters): void {
  let sum = 0;
  for (const i of $range(1, h.season)) sum += h.boot.get(i);
  const mean = sum / h.season;
  for (const i of $range(1, h.season)) {
    h.seasonal.set(slotOf(h, h.bootStart + i - 1), h.boot.get(i) - mean);
  }
  h.level = mean;
  h.trend = 0;
  h.ready = true;
  // The bootstrap values are kept for a second season: one day cannot tell trend from season.
}

/** After two seasons: the classic initialisation, trend from the two seasons' means. */
function refit(h: HoltWinters): void {
  const m = h.season;
  let sum1 = 0;
  let sum2 = 0;
  for (const i of $range(1, m)) {
    sum1 += h.boot.get(i);
    sum2 += h.boot.get(m + i);
  }
  const mean1 = sum1 / m;
  const mean2 = sum2 / m;
  const trend = (mean2 - mean1) / m;
  const middle = (m + 1) / 2;
  for (const i of $range(1, m)) {
    const detrended = h.boot.get(i) - (mean1 + trend * (i - middle)) + (h.boot.get(m + i) - (mean2 + trend * (i - middle)));
    h.seasonal.set(slotOf(h, h.bootStart + i - 1), detrended / 2);
  }
  h.trend = trend;
  h.level = mean2 + trend * (m - middle);
  h.boot = new LuaTable<number, number>();
  h.bootCount = -1;
}

/** Weight of the newest minute in the forecast error's moving mean (about an hour's memory). */
const ERROR_WEIGHT = 1 / 60;

function update(h: HoltWinters, minute: number, x: number): void {
  if (h.bootCount >= 0) {
    if (h.bootCount === 0) h.bootStart = minute;
    h.bootCount += 1;
    h.boot.set(h.bootCount, x);
    if (h.bootCount === h.season) {
      bootstrap(h);
      return;
    }
    if (h.bootCount === 2 * h.season) {
      refit(h);
      return;
    }
    if (!h.ready) return;
  }
  const slot = slotOf(h, minute);
  const s = h.seasonal.get(slot);
  const previous = h.level;
  h.error = ERROR_WEIGHT * math.abs(x - (h.level + h.trend + s)) + (1 - ERROR_WEIGHT) * h.error;
  h.level = h.alpha * (x - s) + (1 - h.alpha) * (h.level + h.trend);
  h.trend = h.beta * (h.level - previous) + (1 - h.beta) * h.trend;
  h.seasonal.set(slot, h.gamma * (x - h.level) + (1 - h.gamma) * s);
}

/**
 * Adds the mean value of an absolute minute (floor(seconds / 60)). Minutes missing since the
 * last one are filled with the last value; a gap longer than a season starts over; a minute
 * at or before the last one is ignored.
 */
export function observe(h: HoltWinters, minute: number, value: number): void {
  if (h.lastMinute >= 0) {
    if (minute <= h.lastMinute) return;
    if (minute - h.lastMinute > h.season) {
      resetHistory(h);
    } else {
      for (const m of $range(h.lastMinute + 1, minute - 1)) update(h, m, h.lastValue);
    }
  }
  update(h, minute, value);
  h.lastMinute = minute;
  h.lastValue = value;
}

/** The forecast for an absolute minute after the last observed one, or undefined before a season of history. */
export function forecast(h: HoltWinters, minute: number): number | undefined {
  if (!h.ready) return undefined;
  let ahead = minute - h.lastMinute;
  if (ahead < 1) ahead = 1;
  const v = h.level + ahead * h.trend + h.seasonal.get(slotOf(h, minute));
  return v > 0 ? v : 0;
}

/** The forecast's typical absolute error (same unit as the series). */
export function forecastError(h: HoltWinters): number {
  return h.error;
}

/** Minutes of history held (a full season or more once ready). */
export function historyMinutes(h: HoltWinters): number {
  return h.bootCount < 0 ? 2 * h.season : h.bootCount;
}

const FORMAT_TAG = "hw1";

function num(v: number): string {
  return string.format("%.10g", v);
}

/**
 * A compact string of the history (for a shared dict or a file):
 * `hw1;season;ready;lastMinute;lastValue;level;trend;error;bootStart;s1,s2,...|b1,b2,...`: the
 * seasonal slots (once ready), then the values kept for the two-season fit (while it runs).
 */
export function encode(h: HoltWinters): string {
  const parts: string[] = [];
  if (h.ready) {
    for (const i of $range(1, h.season)) parts.push(num(h.seasonal.get(i)));
  }
  const boot: string[] = [];
  for (const i of $range(1, h.bootCount)) boot.push(num(h.boot.get(i)));
  return table.concat(
    [FORMAT_TAG, tostring(h.season), h.ready ? "1" : "0", num(h.lastMinute), num(h.lastValue), num(h.level), num(h.trend), num(h.error), num(h.bootStart), table.concat(parts, ",") + "|" + table.concat(boot, ",")],
    ";",
  );
}

/** Restores a history saved by encode for the same season length; config sets the smoothing. */
export function decode(text: string, cfg: HoltWintersConfig): LuaMultiReturn<[HoltWinters | undefined, string | undefined]> {
  const [tag, season, ready, lastMinute, lastValue, level, trend, error, bootStart, values] = string.match(
    text,
    "^([^;]*);([^;]*);([^;]*);([^;]*);([^;]*);([^;]*);([^;]*);([^;]*);([^;]*);([^;]*)$",
  );
  if (tag !== FORMAT_TAG) return $multi(undefined, "not a Holt-Winters history (expected hw1;...)");
  if (tonumber(season) !== cfg.season) return $multi(undefined, `history season ${season} differs from the configured ${cfg.season}`);
  const h = newHoltWinters(cfg);
  const numbers = [tonumber(lastMinute), tonumber(lastValue), tonumber(level), tonumber(trend), tonumber(error), tonumber(bootStart)];
  for (const v of numbers) {
    if (v === undefined) return $multi(undefined, "history has a field that is not a number");
  }
  h.lastMinute = numbers[0]!;
  h.lastValue = numbers[1]!;
  h.level = numbers[2]!;
  h.trend = numbers[3]!;
  h.error = numbers[4]!;
  h.bootStart = numbers[5]!;
  h.ready = ready === "1";
  const [seasonalText, bootText] = string.match(values!, "^([^|]*)|([^|]*)$");
  if (seasonalText === undefined) return $multi(undefined, "history values are not in the form s1,...|b1,...");
  let count = 0;
  for (const [v] of string.gmatch(seasonalText, "[^,]+")) {
    const x = tonumber(v);
    if (x === undefined) return $multi(undefined, `history value ${string.format("%q", v)} is not a number`);
    count += 1;
    h.seasonal.set(count, x);
  }
  if (h.ready && count !== cfg.season) return $multi(undefined, `history holds ${count} seasonal values, expected ${cfg.season}`);
  let bootCount = 0;
  for (const [v] of string.gmatch(bootText!, "[^,]+")) {
    const x = tonumber(v);
    if (x === undefined) return $multi(undefined, `history value ${string.format("%q", v)} is not a number`);
    bootCount += 1;
    h.boot.set(bootCount, x);
  }
  if (bootCount >= 2 * cfg.season || (!h.ready && bootCount >= cfg.season)) return $multi(undefined, "history bootstrap is too long for the season");
  h.bootCount = h.ready && bootCount === 0 ? -1 : bootCount;
  return $multi(h, undefined);
}
