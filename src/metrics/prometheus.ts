// Prometheus text exposition (format 0.0.4) of the gateway's series. Pure: the figures come in
// already read from the dict; the result is a list of lines for table.concat.
import { PROMETHEUS_BOUNDS, PROMETHEUS_SLOTS } from "./histogram";
import { Totals, WindowFigures } from "./counters";

/** One route or peer, as read from the dict. */
export interface SeriesFigures {
  /** "route" or "peer": the metric name prefix. */
  kind: "route" | "peer";
  /** Rendered labels without braces, e.g. `route="api"` or `pool="api",peer="10.0.0.1:80"`. */
  labels: string;
  totals: Totals;
  inflight: number;
  /** Window name ("10s") → figures with percentiles. */
  windows: LuaTable<string, WindowFigures>;
}

/** Backslash, double quote and newline escaped, as label values need. */
export function escapeLabel(v: string): string {
  const [s] = string.gsub(v, '[\\"\n]', (c: string) => (c === "\n" ? "\\n" : `\\${c}`));
  return s;
}

export function formatValue(v: number): string {
  if (v !== v) return "NaN";
  if (v === math.huge) return "+Inf";
  if (v === -math.huge) return "-Inf";
  if (v === math.floor(v) && math.abs(v) < 1e15) return string.format("%d", v);
  // The shortest form that reads back as the same number (0.025, not 0.025000000000000001).
  const short = string.format("%.15g", v);
  return tonumber(short) === v ? short : string.format("%.17g", v);
}

function header(out: string[], name: string, type: string, help: string): void {
  out.push(`# HELP ${name} ${help}`);
  out.push(`# TYPE ${name} ${type}`);
}

type TotalField = "requests" | "errors" | "connectFailures" | "timeouts" | "bytesIn" | "bytesOut";

const COUNTERS: [string, TotalField, string][] = [
  ["requests_total", "requests", "Requests finished."],
  ["errors_total", "errors", "Requests answered 5xx (for peers: tries that failed to connect, timed out or answered 5xx)."],
  ["upstream_connect_failures_total", "connectFailures", "Upstream tries that could not connect."],
  ["upstream_timeouts_total", "timeouts", "Upstream tries that timed out before the response header."],
  ["request_bytes_total", "bytesIn", "Bytes of requests (received from clients; for peers, sent to the peer)."],
  ["response_bytes_total", "bytesOut", "Bytes of responses (sent to clients; for peers, received from the peer)."],
];

const CLASSES: [string, "c1" | "c2" | "c3" | "c4" | "c5"][] = [
  ["1xx", "c1"],
  ["2xx", "c2"],
  ["3xx", "c3"],
  ["4xx", "c4"],
  ["5xx", "c5"],
];

function renderKind(out: string[], series: SeriesFigures[], kind: "route" | "peer", windowNames: string[]): void {
  const prefix = `autoscale_${kind}_`;
  const what = kind === "route" ? "route" : "upstream peer";
  let any = false;
  for (const s of series) if (s.kind === kind) any = true;
  if (!any) return;

  for (const [suffix, field, help] of COUNTERS) {
    header(out, prefix + suffix, "counter", `${help} Per ${what}.`);
    for (const s of series) if (s.kind === kind) out.push(`${prefix}${suffix}{${s.labels}} ${formatValue(s.totals[field])}`);
  }

  header(out, `${prefix}responses_total`, "counter", `Answers by status class. Per ${what}.`);
  for (const s of series) {
    if (s.kind !== kind) continue;
    for (const [label, field] of CLASSES) out.push(`${prefix}responses_total{${s.labels},class="${label}"} ${formatValue(s.totals[field])}`);
  }

  const hist = `${prefix}latency_seconds`;
  header(out, hist, "histogram", `Latency in seconds (routes: request time; peers: upstream response time). Per ${what}.`);
  for (const s of series) {
    if (s.kind !== kind) continue;
    let cumulative = 0;
    for (const i of $range(1, PROMETHEUS_SLOTS)) {
      cumulative += s.totals.slots[i - 1];
      const le = i < PROMETHEUS_SLOTS ? formatValue(PROMETHEUS_BOUNDS[i - 1]) : "+Inf";
      out.push(`${hist}_bucket{${s.labels},le="${le}"} ${formatValue(cumulative)}`);
    }
    out.push(`${hist}_sum{${s.labels}} ${formatValue(s.totals.latency)}`);
    out.push(`${hist}_count{${s.labels}} ${formatValue(cumulative)}`);
  }

  header(out, `${prefix}inflight`, "gauge", `Requests in progress (started, not finished; forgotten after metrics.inflight_max_age). Per ${what}.`);
  for (const s of series) if (s.kind === kind) out.push(`${prefix}inflight{${s.labels}} ${formatValue(s.inflight)}`);

  header(out, `${prefix}window_rate`, "gauge", `Requests per second over the sliding window. Per ${what}.`);
  for (const s of series) {
    if (s.kind !== kind) continue;
    for (const w of windowNames) out.push(`${prefix}window_rate{${s.labels},window="${w}"} ${formatValue(s.windows.get(w).rate)}`);
  }
  header(out, `${prefix}window_error_ratio`, "gauge", `Errors / requests over the sliding window. Per ${what}.`);
  for (const s of series) {
    if (s.kind !== kind) continue;
    for (const w of windowNames) out.push(`${prefix}window_error_ratio{${s.labels},window="${w}"} ${formatValue(s.windows.get(w).errorRatio)}`);
  }
  header(out, `${prefix}window_latency_seconds`, "gauge", `Latency percentiles over the sliding window (relative error at most 5 %; absent without requests). Per ${what}.`);
  for (const s of series) {
    if (s.kind !== kind) continue;
    for (const w of windowNames) {
      const f = s.windows.get(w);
      if (f.p50 !== undefined) out.push(`${prefix}window_latency_seconds{${s.labels},window="${w}",percentile="50"} ${formatValue(f.p50)}`);
      if (f.p90 !== undefined) out.push(`${prefix}window_latency_seconds{${s.labels},window="${w}",percentile="90"} ${formatValue(f.p90)}`);
      if (f.p99 !== undefined) out.push(`${prefix}window_latency_seconds{${s.labels},window="${w}",percentile="99"} ${formatValue(f.p99)}`);
    }
  }
}

export interface DictFigures {
  capacity: number;
  free: number;
  /** Series that asked for their own keys, and the cap. */
  series: number;
  maxSeries: number;
}

/** The whole exposition, ending with a newline. */
export function renderPrometheus(series: SeriesFigures[], windowNames: string[], dict: DictFigures): string {
  const out: string[] = [];
  renderKind(out, series, "route", windowNames);
  renderKind(out, series, "peer", windowNames);
  header(out, "autoscale_metrics_dict_capacity_bytes", "gauge", "Size of the lua_shared_dict holding the metrics.");
  out.push(`autoscale_metrics_dict_capacity_bytes ${formatValue(dict.capacity)}`);
  header(out, "autoscale_metrics_dict_free_bytes", "gauge", "Free pages of the lua_shared_dict holding the metrics, in bytes.");
  out.push(`autoscale_metrics_dict_free_bytes ${formatValue(dict.free)}`);
  header(out, "autoscale_metrics_series", "gauge", "Series (routes and peers) that asked for their own keys; above max_series they are counted under _overflow.");
  out.push(`autoscale_metrics_series ${formatValue(dict.series)}`);
  header(out, "autoscale_metrics_series_max", "gauge", "metrics.max_series.");
  out.push(`autoscale_metrics_series_max ${formatValue(dict.maxSeries)}`);
  out.push("");
  return table.concat(out, "\n");
}
