// Google Compute Engine managed instance groups (bearer token, scope compute or cloud-platform):
//   GET  {endpoint}/compute/v1/projects/P/zones/Z/instanceGroupManagers/N          -> targetSize
//   POST {endpoint}/compute/v1/projects/P/zones/Z/instanceGroupManagers/N/resize?size=N&requestId=U
// (regions/R instead of zones/Z for a regional group). The resize returns an Operation; a
// requestId derived from the decision lets Compute Engine drop a retried duplicate.
import { sha256Hex } from "../crypto/sha256";
import { Credentials, Decision, RequestSpec, asReplicas, decodeObject, dig, isRetryableStatus, jsonErrorMessage } from "./actuator";
import { GcpConfig } from "./schema";
import { encodeComponent } from "../net/url";

export const kind = "gcp_mig";
export const readsCurrent = true;

function groupUrl(cfg: GcpConfig): string {
  const base = string.gsub(cfg.endpoint, "/+$", "")[0];
  const scope = cfg.zone !== undefined ? `zones/${encodeComponent(cfg.zone)}` : `regions/${encodeComponent(cfg.region!)}`;
  return `${base}/compute/v1/projects/${encodeComponent(cfg.project)}/${scope}/instanceGroupManagers/${encodeComponent(cfg.name)}`;
}

function headersFor(creds: Credentials): LuaMultiReturn<[LuaTable<string, string> | undefined, string | undefined]> {
  if (creds.bearerToken === undefined) return $multi(undefined, "no GCP bearer token");
  const h = new LuaTable<string, string>();
  h.set("Authorization", `Bearer ${creds.bearerToken}`);
  h.set("Accept", "application/json");
  return $multi(h, undefined);
}

/** A UUID-shaped (version 4 layout) request id from the pool, desired value and decision id. */
export function requestId(pool: string, desired: number, decisionId: string): LuaMultiReturn<[string | undefined, string | undefined]> {
  const [h, err] = sha256Hex(`${pool}\n${string.format("%d", desired)}\n${decisionId}`);
  if (h === undefined) return $multi(undefined, err);
  const nibble = tonumber(string.sub(h, 17, 17), 16)! % 4;
  const variant = string.sub("89ab", nibble + 1, nibble + 1);
  return $multi(
    `${string.sub(h, 1, 8)}-${string.sub(h, 9, 12)}-4${string.sub(h, 14, 16)}-${variant}${string.sub(h, 18, 20)}-${string.sub(h, 21, 32)}`,
    undefined,
  );
}

export function describeCurrent(this: void, cfg: GcpConfig, creds: Credentials, _now: number): LuaMultiReturn<[RequestSpec | undefined, string | undefined]> {
  const [headers, err] = headersFor(creds);
  if (headers === undefined) return $multi(undefined, err);
  return $multi({ method: "GET", url: groupUrl(cfg), headers }, undefined);
}

export function buildSet(this: void, cfg: GcpConfig, creds: Credentials, desired: number, _now: number, decision: Decision): LuaMultiReturn<[RequestSpec | undefined, string | undefined]> {
  const [headers, err] = headersFor(creds);
  if (headers === undefined) return $multi(undefined, err);
  const [id, idErr] = requestId(decision.pool, desired, decision.id);
  if (id === undefined) return $multi(undefined, idErr);
  // The resize takes no body; an explicit empty one makes the client send Content-Length: 0.
  return $multi({ method: "POST", url: `${groupUrl(cfg)}/resize?size=${string.format("%d", desired)}&requestId=${id}`, headers, body: "" }, undefined);
}

function failure(status: number, body: string): LuaMultiReturn<[undefined, string, boolean]> {
  return $multi(undefined, `GCP: ${jsonErrorMessage(status, body)}`, isRetryableStatus(status));
}

export function parseCurrent(this: void, status: number, _headers: LuaTable<string, string>, body: string): LuaMultiReturn<[number | undefined, string | undefined, boolean]> {
  if (status !== 200) return failure(status, body);
  const [doc, err] = decodeObject(body);
  if (doc === undefined) return $multi(undefined, `GCP: ${err}`, false);
  const n = asReplicas(dig(doc, "targetSize"));
  if (n === undefined) return $multi(undefined, "GCP: targetSize missing from the instance group manager", false);
  return $multi(n, undefined, false);
}

export function parseSet(this: void, status: number, _headers: LuaTable<string, string>, body: string): LuaMultiReturn<[boolean | undefined, string | undefined, boolean]> {
  if (status !== 200) return failure(status, body);
  const [doc, err] = decodeObject(body);
  if (doc === undefined) return $multi(undefined, `GCP: ${err}`, false);
  // An Operation can carry errors even with HTTP 200.
  const errors = dig(doc, "error", "errors");
  const firstError = type(errors) === "table" ? (errors as unknown[])[0] : undefined;
  if (firstError !== undefined) {
    const code = dig(firstError, "code");
    const message = dig(firstError, "message");
    return $multi(undefined, `GCP operation failed: ${tostring(code ?? "error")}: ${tostring(message ?? "")}`, false);
  }
  return $multi(true, undefined, false);
}
