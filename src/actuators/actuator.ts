// The actuator family: one interface for every way of changing a pool's replica count
// (Kubernetes, AWS Auto Scaling, Azure VM Scale Sets, GCP managed instance groups, webhooks).
// Actuators are pure: they describe the HTTP request to send and interpret the response; the
// gateway's timer shell sends it with the cosocket HTTP client and applies the guard
// (guard.ts) around it. Adding an actuator touches registry.ts and schema.ts, nothing else.
import * as cjson from "cjson.safe";

/** One HTTP request, as the HTTP client sends it. */
export interface RequestSpec {
  method: string;
  url: string;
  /** Header names as given; for signed requests (AWS) `host` is set and must be sent as is. */
  headers: LuaTable<string, string>;
  body?: string;
  /** CA bundle to verify the server with, when it differs from the system's (Kubernetes). */
  caFile?: string;
}

/** Why the gateway wants a new replica count: carried to webhooks, logs and idempotency keys. */
export interface Decision {
  pool: string;
  /** Unique per decision (e.g. "<pool>-<epoch ms>-<counter>"). */
  id: string;
  reason: string;
  /** The replica count the gateway believes is current, when known. */
  current?: number;
}

/**
 * What an actuator needs at run time besides its config, resolved from env vars and files by
 * credentials.ts (never inline in the config).
 */
export interface Credentials {
  /** Kubernetes, Azure, GCP. */
  bearerToken?: string;
  /** AWS. */
  aws?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Webhook HMAC key. */
  hmacSecret?: string;
  /** Kubernetes: API server base URL (in-cluster default from KUBERNETES_SERVICE_HOST/PORT). */
  apiUrl?: string;
  /** Kubernetes: CA bundle path (in-cluster default: the service account's ca.crt). */
  caFile?: string;
  /** Kubernetes: the namespace (in-cluster default: the service account's namespace). */
  namespace?: string;
}

/**
 * Every actuator module exports these. Each function returns a value and an error message
 * (nil, err on failure); parse functions add a third value: whether retrying may help
 * (timeouts, 5xx, 429, throttling), as opposed to a refusal that will not change (401, 404, 422).
 */
export interface Actuator<C> {
  readonly kind: string;
  /** False when the target cannot be asked for its current replicas (webhook). */
  readonly readsCurrent: boolean;
  describeCurrent(this: void, cfg: C, creds: Credentials, now: number): LuaMultiReturn<[RequestSpec | undefined, string | undefined]>;
  parseCurrent(this: void, status: number, headers: LuaTable<string, string>, body: string): LuaMultiReturn<[number | undefined, string | undefined, boolean]>;
  buildSet(this: void, cfg: C, creds: Credentials, desired: number, now: number, decision: Decision): LuaMultiReturn<[RequestSpec | undefined, string | undefined]>;
  parseSet(this: void, status: number, headers: LuaTable<string, string>, body: string): LuaMultiReturn<[boolean | undefined, string | undefined, boolean]>;
}

/** Statuses worth retrying: timeouts, conflicts with an operation in progress, throttling, 5xx. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 425 || status === 429 || status >= 500;
}

const MAX_ERROR_BODY = 200;

/** The start of a response body for an error message, on one line. */
export function bodySnippet(body: string): string {
  let s = string.gsub(body, "%s+", " ")[0];
  if (s.length > MAX_ERROR_BODY) s = string.sub(s, 1, MAX_ERROR_BODY) + "...";
  return s;
}

/** Decodes a JSON object body; nil and a message when it is not one. */
export function decodeObject(body: string): LuaMultiReturn<[LuaTable<string, unknown> | undefined, string | undefined]> {
  const [doc, err] = cjson.decode(body);
  if (doc === undefined) return $multi(undefined, `response is not valid JSON (${err})`);
  if (type(doc) !== "table") return $multi(undefined, "response is not a JSON object");
  return $multi(doc as LuaTable<string, unknown>, undefined);
}

/** Follows a path of keys through decoded JSON; undefined when any step is missing. */
export function dig(doc: unknown, ...keys: string[]): unknown {
  let v = doc;
  for (const k of keys) {
    if (type(v) !== "table") return undefined;
    v = (v as LuaTable<string, unknown>).get(k);
  }
  return v;
}

/** A non-negative integer replica count from decoded JSON, or undefined. */
export function asReplicas(v: unknown): number | undefined {
  if (type(v) !== "number") return undefined;
  const n = v as number;
  if (n < 0 || math.floor(n) !== n || n > 1e9) return undefined;
  return n;
}

/**
 * The message of a JSON error body in the shapes the cloud APIs use: {"error":{"code","message"}}
 * (Azure, GCP) or a Kubernetes Status {"reason","message"}.
 */
export function jsonErrorMessage(status: number, body: string): string {
  const [doc] = cjson.decode(body);
  const nested = dig(doc, "error");
  let code = dig(nested, "status") ?? dig(nested, "code") ?? dig(doc, "reason");
  let message = dig(nested, "message") ?? dig(doc, "message");
  if (type(code) !== "string" && type(code) !== "number") code = undefined;
  if (type(message) !== "string") message = undefined;
  if (message === undefined) return `HTTP ${status}: ${bodySnippet(body)}`;
  return code === undefined ? `HTTP ${status}: ${message}` : `HTTP ${status} ${tostring(code)}: ${message}`;
}

/** One JSON string literal (cjson escapes quotes, control characters and "/"). */
export function jsonString(s: string): string {
  return cjson.encode(s)[0]!;
}
