// Prometheus instant query: GET <url>/api/v1/query?query=<expr>. The value is a scalar result,
// or the only sample of a vector result (aggregate with sum() etc. to get one series).
import * as cjson from "cjson.safe";
import { PrometheusSource } from "./schema";
import { SourceIo, authHeaders } from "./source";
import { encodeComponent } from "../net/url";

export const kind = "prometheus";

function sampleValue(pair: unknown): number | undefined {
  if (type(pair) !== "table") return undefined;
  const v = (pair as LuaTable<number, unknown>).get(2);
  if (type(v) !== "string") return undefined;
  const n = tonumber(v as string);
  // NaN and infinities are no usable measure.
  if (n === undefined || n !== n || n === math.huge || n === -math.huge) return undefined;
  return n;
}

/** The value of an instant-query answer, or why there is none. */
export function parseQueryResponse(status: number, body: string): LuaMultiReturn<[number | undefined, string | undefined]> {
  const [doc, derr] = cjson.decode(body);
  if (type(doc) !== "table") return $multi(undefined, `HTTP ${status}: response is not JSON (${derr ?? "not an object"})`);
  const d = doc as LuaTable<string, unknown>;
  if (d.get("status") !== "success") {
    const err = d.get("error");
    return $multi(undefined, `HTTP ${status}: query failed: ${type(err) === "string" ? (err as string) : "no error message"}`);
  }
  const data = d.get("data") as LuaTable<string, unknown> | undefined;
  if (type(data) !== "table") return $multi(undefined, "response has no data");
  const resultType = data!.get("resultType");
  const result = data!.get("result");
  if (resultType === "scalar") {
    const n = sampleValue(result);
    if (n === undefined) return $multi(undefined, "scalar result is not a finite number");
    return $multi(n, undefined);
  }
  if (resultType !== "vector" || type(result) !== "table") return $multi(undefined, `unsupported result type ${tostring(resultType)} (use an instant vector or scalar)`);
  const series = result as LuaTable<number, unknown>;
  const count = series.length();
  if (count === 0) return $multi(undefined, "query returned no series");
  if (count > 1) return $multi(undefined, `query returned ${count} series: aggregate it to one (e.g. sum(...))`);
  const n = sampleValue((series.get(1) as LuaTable<string, unknown>).get("value"));
  if (n === undefined) return $multi(undefined, "sample is not a finite number");
  return $multi(n, undefined);
}

export function queryUrl(cfg: PrometheusSource): string {
  const base = string.gsub(cfg.url, "/+$", "")[0];
  return `${base}/api/v1/query?query=${encodeComponent(cfg.query)}`;
}

export function fetch(this: void, cfg: PrometheusSource, io: SourceIo): LuaMultiReturn<[number | undefined, string | undefined]> {
  const [headers, herr] = authHeaders(cfg.token, io);
  if (headers === undefined) return $multi(undefined, herr);
  const [res, err] = io.http({ method: "GET", url: queryUrl(cfg), headers, timeoutMs: cfg.timeout_ms });
  if (res === undefined) return $multi(undefined, err);
  return parseQueryResponse(res.status, res.body);
}
