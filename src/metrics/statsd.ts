// StatsD lines (etsy/statsd plain text) for the periodic push. Pure: the gateway reads the
// figures and sends the packets over UDP.
import { Histogram, bucketValue } from "./histogram";
import { Totals } from "./counters";

/** A metric path element: anything but letters, digits, '_' and '-' becomes '_'. */
export function statsdSegment(s: string): string {
  const [out] = string.gsub(s, "[^%w_%-]", "_");
  return out;
}

function counter(out: string[], name: string, n: number): void {
  if (n > 0) out.push(`${name}:${string.format("%d", n)}|c`);
}

/**
 * Lines for one series over one push interval: counters of what changed since the previous
 * push (`now` minus `before` totals), one timer line per latency bucket (its midpoint in ms,
 * with the sample rate 1/count so that receivers count every request), and the in-flight gauge.
 */
export function seriesLines(out: string[], name: string, now: Totals, before: Totals | undefined, hist: Histogram | undefined, inflight: number): void {
  const d = (a: number, b: number | undefined) => a - (b ?? 0);
  counter(out, `${name}.requests`, d(now.requests, before?.requests));
  counter(out, `${name}.errors`, d(now.errors, before?.errors));
  counter(out, `${name}.responses.1xx`, d(now.c1, before?.c1));
  counter(out, `${name}.responses.2xx`, d(now.c2, before?.c2));
  counter(out, `${name}.responses.3xx`, d(now.c3, before?.c3));
  counter(out, `${name}.responses.4xx`, d(now.c4, before?.c4));
  counter(out, `${name}.responses.5xx`, d(now.c5, before?.c5));
  counter(out, `${name}.connect_failures`, d(now.connectFailures, before?.connectFailures));
  counter(out, `${name}.timeouts`, d(now.timeouts, before?.timeouts));
  counter(out, `${name}.request_bytes`, d(now.bytesIn, before?.bytesIn));
  counter(out, `${name}.response_bytes`, d(now.bytesOut, before?.bytesOut));
  if (hist !== undefined) {
    const buckets: number[] = [];
    for (const [b] of hist) buckets.push(b);
    table.sort(buckets);
    for (const b of buckets) {
      const n = hist.get(b);
      const ms = string.format("%.3f", bucketValue(b) * 1000);
      out.push(n === 1 ? `${name}.latency:${ms}|ms` : `${name}.latency:${ms}|ms|@${string.format("%.6g", 1 / n)}`);
    }
  }
  out.push(`${name}.inflight:${inflight}|g`);
}

/** Joins lines into packets of at most `maxBytes` (a line longer than that goes alone). */
export function packets(lines: string[], maxBytes: number): string[] {
  const out: string[] = [];
  let current: string[] = [];
  let size = 0;
  for (const line of lines) {
    if (current.length > 0 && size + 1 + line.length > maxBytes) {
      out.push(table.concat(current, "\n"));
      current = [];
      size = 0;
    }
    size += (current.length > 0 ? 1 : 0) + line.length;
    current.push(line);
  }
  if (current.length > 0) out.push(table.concat(current, "\n"));
  return out;
}
