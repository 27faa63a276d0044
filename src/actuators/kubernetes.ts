// Kubernetes: the scale subresource of a Deployment or StatefulSet (apps/v1).
//   GET   {api}/apis/apps/v1/namespaces/{ns}/{deployments|statefulsets}/{name}/scale
//   PATCH the same, Content-Type: application/merge-patch+json, {"spec":{"replicas":N}}
// Authenticated with a bearer token (the service account's, in cluster). The current value is
// spec.replicas, as the HPA reads it (status.replicas lags while pods start).
import { Credentials, Decision, RequestSpec, asReplicas, decodeObject, dig, isRetryableStatus, jsonErrorMessage } from "./actuator";
import { KubernetesConfig } from "./schema";
import { encodeComponent } from "../net/url";

export const kind = "kubernetes";
export const readsCurrent = true;

function scaleUrl(cfg: KubernetesConfig, creds: Credentials): LuaMultiReturn<[string | undefined, string | undefined]> {
  const base = creds.apiUrl ?? cfg.api_url;
  const namespace = cfg.namespace ?? creds.namespace;
  if (base === undefined) return $multi(undefined, "no Kubernetes API URL");
  if (namespace === undefined) return $multi(undefined, "no Kubernetes namespace");
  const resource = cfg.kind === "statefulset" ? "statefulsets" : "deployments";
  const trimmed = string.gsub(base, "/+$", "")[0];
  return $multi(`${trimmed}/apis/apps/v1/namespaces/${encodeComponent(namespace)}/${resource}/${encodeComponent(cfg.name)}/scale`, undefined);
}

function baseHeaders(creds: Credentials): LuaMultiReturn<[LuaTable<string, string> | undefined, string | undefined]> {
  if (creds.bearerToken === undefined) return $multi(undefined, "no Kubernetes bearer token");
  const h = new LuaTable<string, string>();
  h.set("Authorization", `Bearer ${creds.bearerToken}`);
  h.set("Accept", "application/json");
  return $multi(h, undefined);
}

export function describeCurrent(this: void, cfg: KubernetesConfig, creds: Credentials, _now: number): LuaMultiReturn<[RequestSpec | undefined, string | undefined]> {
  const [url, err] = scaleUrl(cfg, creds);
  if (url === undefined) return $multi(undefined, err);
  const [headers, headerErr] = baseHeaders(creds);
  if (headers === undefined) return $multi(undefined, headerErr);
  return $multi({ method: "GET", url, headers, caFile: creds.caFile ?? cfg.ca_file }, undefined);
}

export function buildSet(this: void, cfg: KubernetesConfig, creds: Credentials, desired: number, _now: number, _decision: Decision): LuaMultiReturn<[RequestSpec | undefined, string | undefined]> {
  const [url, err] = scaleUrl(cfg, creds);
  if (url === undefined) return $multi(undefined, err);
  const [headers, headerErr] = baseHeaders(creds);
  if (headers === undefined) return $multi(undefined, headerErr);
  headers.set("Content-Type", "application/merge-patch+json");
  return $multi({ method: "PATCH", url, headers, body: `{"spec":{"replicas":${string.format("%d", desired)}}}`, caFile: creds.caFile ?? cfg.ca_file }, undefined);
}

function failure(status: number, body: string): LuaMultiReturn<[undefined, string, boolean]> {
  return $multi(undefined, `Kubernetes API: ${jsonErrorMessage(status, body)}`, isRetryableStatus(status));
}

/** spec.replicas of the returned Scale (absent means 0: the API omits zero). */
function replicasOf(body: string): LuaMultiReturn<[number | undefined, string | undefined]> {
  const [doc, err] = decodeObject(body);
  if (doc === undefined) return $multi(undefined, `Kubernetes API: ${err}`);
  if (doc.get("kind") !== "Scale") return $multi(undefined, "Kubernetes API: the response is not a Scale object");
  const raw = dig(doc, "spec", "replicas");
  if (raw === undefined) return $multi(0, undefined);
  const n = asReplicas(raw);
  if (n === undefined) return $multi(undefined, "Kubernetes API: spec.replicas is not a replica count");
  return $multi(n, undefined);
}

export function parseCurrent(this: void, status: number, _headers: LuaTable<string, string>, body: string): LuaMultiReturn<[number | undefined, string | undefined, boolean]> {
  if (status !== 200) return failure(status, body);
  const [n, err] = replicasOf(body);
  return $multi(n, err, false);
}

export function parseSet(this: void, status: number, _headers: LuaTable<string, string>, body: string): LuaMultiReturn<[boolean | undefined, string | undefined, boolean]> {
  if (status !== 200 && status !== 201) return failure(status, body);
  const [, err] = replicasOf(body);
  if (err !== undefined) return $multi(undefined, err, false);
  return $multi(true, undefined, false);
}
