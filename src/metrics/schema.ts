// The `metrics` section of the config: windows, cardinality cap, in-flight expiry, bytes, StatsD.
// Pure, called by src/config/config.ts.
import { Json, Problems, index, join, readArray, readBoolean, readInteger, readObject, readString, rejectUnknownKeys } from "../config/check";

export interface StatsdConfig {
  host: string;
  port: number;
  /** First element of every metric path, e.g. "autoscale". */
  prefix: string;
  /** Seconds between pushes. */
  interval: number;
}

export interface MetricsConfig {
  /**
   * false: the request path counts nothing (for gateways that only want admission or balancing;
   * scaling policies and the adaptive rate need the figures and are refused then).
   */
  enabled: boolean;
  /** Sliding-window spans in seconds, e.g. [10, 60]; the first one drives balancing by default. */
  windows: number[];
  /** Most routes and peers with their own keys in the dict; later ones share an `_overflow` series. */
  maxSeries: number;
  /** Seconds after which a request whose end was never seen stops counting as in flight. */
  inflightMaxAge: number;
  /**
   * Count request and response bytes. Off by default: its four nginx variable reads cost ten
   * times the rest of the log phase's counting (bench/: about 0.75 us a request).
   */
  bytes: boolean;
  statsd?: StatsdConfig;
}

export const DEFAULT_WINDOWS = [10, 60];
const MAX_WINDOW = 3600;

function readWindows(p: Problems, path: string, v: Json): number[] | undefined {
  if (v === undefined) return DEFAULT_WINDOWS;
  const arr = readArray(p, path, v, true);
  if (arr === undefined) return undefined;
  if (arr.length === 0 || arr.length > 4) {
    p.add(path, `expected 1 to 4 window spans in seconds, got ${arr.length}`);
    return undefined;
  }
  const out: number[] = [];
  for (let i = 0; i < arr.length; i++) {
    const w = readInteger(p, index(path, i), arr[i], 1, MAX_WINDOW, undefined);
    if (w === undefined) return undefined;
    out.push(w);
  }
  return out;
}

function readStatsd(p: Problems, path: string, v: Json): StatsdConfig | undefined {
  const o = readObject(p, path, v, false);
  if (o === undefined) return undefined;
  rejectUnknownKeys(p, path, o, ["host", "port", "prefix", "interval"]);
  const host = readString(p, join(path, "host"), o.get("host") ?? "127.0.0.1", true);
  if (host !== undefined && string.match(host, "^%d+%.%d+%.%d+%.%d+$")[0] === undefined && string.match(host, "^[%x:]+$")[0] === undefined) {
    p.add(join(path, "host"), `expected an IPv4 or IPv6 address (no resolver in timers), got ${string.format("%q", host)}`);
  }
  const port = readInteger(p, join(path, "port"), o.get("port"), 1, 65535, 8125);
  const prefix = readString(p, join(path, "prefix"), o.get("prefix"), false, "^[%w_%-%.]*$", "letters, digits, '_', '-' or '.'") ?? "autoscale";
  const interval = readInteger(p, join(path, "interval"), o.get("interval"), 1, 3600, 10);
  if (host === undefined || port === undefined || interval === undefined) return undefined;
  return { host, port, prefix, interval };
}

/** Validates the metrics section (absent: every default). Undefined when it has a problem. */
export function validateMetrics(p: Problems, path: string, v: Json): MetricsConfig | undefined {
  const before = p.list.length;
  const o = readObject(p, path, v, false);
  if (o === undefined) {
    if (p.list.length > before) return undefined;
    return { enabled: true, windows: DEFAULT_WINDOWS, maxSeries: 1000, inflightMaxAge: 300, bytes: false };
  }
  rejectUnknownKeys(p, path, o, ["enabled", "windows", "max_series", "inflight_max_age", "bytes", "statsd"]);
  const enabled = readBoolean(p, join(path, "enabled"), o.get("enabled"), true);
  const windows = readWindows(p, join(path, "windows"), o.get("windows"));
  const maxSeries = readInteger(p, join(path, "max_series"), o.get("max_series"), 1, 1000000, 1000);
  const inflightMaxAge = readInteger(p, join(path, "inflight_max_age"), o.get("inflight_max_age"), 2, 86400, 300);
  const bytes = readBoolean(p, join(path, "bytes"), o.get("bytes"), false);
  const statsd = readStatsd(p, join(path, "statsd"), o.get("statsd"));
  if (enabled === false && statsd !== undefined) p.add(join(path, "statsd"), "has nothing to push: metrics.enabled is false");
  if (enabled === undefined || windows === undefined || maxSeries === undefined || inflightMaxAge === undefined || p.list.length > before) return undefined;
  return { enabled, windows, maxSeries, inflightMaxAge, bytes, statsd };
}
