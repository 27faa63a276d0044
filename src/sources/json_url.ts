// A JSON document over HTTP(S) with the value at a dotted path ("queue.depth", "items.0.value";
// array indexes are 0-based), as KEDA's metrics-api scaler reads it. Numbers and numeric
// strings count.
import * as cjson from "cjson.safe";
import { JsonUrlSource } from "./schema";
import { SourceIo, authHeaders } from "./source";

export const kind = "json_url";

/** The number at `path` in decoded JSON, or why there is none. */
export function valueAt(doc: unknown, path: string): LuaMultiReturn<[number | undefined, string | undefined]> {
  let v = doc;
  let walked = "";
  for (const [part] of string.gmatch(path, "[^%.]+")) {
    if (type(v) !== "table") return $multi(undefined, `no value at ${path}: ${walked === "" ? "the document" : walked} is not an object or array`);
    const t = v as LuaTable<string | number, unknown>;
    const i = tonumber(part);
    let next = t.get(part);
    if (next === undefined && i !== undefined && math.floor(i) === i && i >= 0) next = t.get(i + 1);
    walked = walked === "" ? part : `${walked}.${part}`;
    if (next === undefined) return $multi(undefined, `no value at ${path}: ${walked} is missing`);
    v = next;
  }
  if (type(v) === "number") return $multi(v as number, undefined);
  if (type(v) === "string") {
    const n = tonumber(v as string);
    if (n !== undefined) return $multi(n, undefined);
  }
  return $multi(undefined, `value at ${path} is not a number`);
}

export function parseResponse(status: number, body: string, path: string): LuaMultiReturn<[number | undefined, string | undefined]> {
  if (status < 200 || status > 299) return $multi(undefined, `HTTP ${status}`);
  const [doc, err] = cjson.decode(body);
  if (doc === undefined) return $multi(undefined, `response is not JSON (${err})`);
  return valueAt(doc, path);
}

export function fetch(this: void, cfg: JsonUrlSource, io: SourceIo): LuaMultiReturn<[number | undefined, string | undefined]> {
  const [headers, herr] = authHeaders(cfg.token, io);
  if (headers === undefined) return $multi(undefined, herr);
  const [res, err] = io.http({ method: "GET", url: cfg.url, headers, timeoutMs: cfg.timeout_ms });
  if (res === undefined) return $multi(undefined, err);
  return parseResponse(res.status, res.body, cfg.path);
}
