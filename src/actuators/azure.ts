// Azure Virtual Machine Scale Sets through the ARM REST API (bearer token from Entra ID):
//   GET   {endpoint}/subscriptions/S/resourceGroups/G/providers/Microsoft.Compute/virtualMachineScaleSets/N?api-version=V
//   PATCH the same with {"sku":{"capacity":N}}; 200 or 202 (accepted, applied asynchronously).
import { Credentials, Decision, RequestSpec, asReplicas, decodeObject, dig, isRetryableStatus, jsonErrorMessage } from "./actuator";
import { AzureConfig } from "./schema";
import { encodeComponent } from "../net/url";

export const kind = "azure_vmss";
export const readsCurrent = true;

function vmssUrl(cfg: AzureConfig): string {
  const base = string.gsub(cfg.endpoint, "/+$", "")[0];
  return (
    `${base}/subscriptions/${encodeComponent(cfg.subscription_id)}/resourceGroups/${encodeComponent(cfg.resource_group)}` +
    `/providers/Microsoft.Compute/virtualMachineScaleSets/${encodeComponent(cfg.name)}?api-version=${encodeComponent(cfg.api_version)}`
  );
}

function headersFor(creds: Credentials): LuaMultiReturn<[LuaTable<string, string> | undefined, string | undefined]> {
  if (creds.bearerToken === undefined) return $multi(undefined, "no Azure bearer token");
  const h = new LuaTable<string, string>();
  h.set("Authorization", `Bearer ${creds.bearerToken}`);
  h.set("Accept", "application/json");
  return $multi(h, undefined);
}

export function describeCurrent(this: void, cfg: AzureConfig, creds: Credentials, _now: number): LuaMultiReturn<[RequestSpec | undefined, string | undefined]> {
  const [headers, err] = headersFor(creds);
  if (headers === undefined) return $multi(undefined, err);
  return $multi({ method: "GET", url: vmssUrl(cfg), headers }, undefined);
}

export function buildSet(this: void, cfg: AzureConfig, creds: Credentials, desired: number, _now: number, _decision: Decision): LuaMultiReturn<[RequestSpec | undefined, string | undefined]> {
  const [headers, err] = headersFor(creds);
  if (headers === undefined) return $multi(undefined, err);
  headers.set("Content-Type", "application/json");
  return $multi({ method: "PATCH", url: vmssUrl(cfg), headers, body: `{"sku":{"capacity":${string.format("%d", desired)}}}` }, undefined);
}

function failure(status: number, body: string): LuaMultiReturn<[undefined, string, boolean]> {
  return $multi(undefined, `Azure: ${jsonErrorMessage(status, body)}`, isRetryableStatus(status));
}

export function parseCurrent(this: void, status: number, _headers: LuaTable<string, string>, body: string): LuaMultiReturn<[number | undefined, string | undefined, boolean]> {
  if (status !== 200) return failure(status, body);
  const [doc, err] = decodeObject(body);
  if (doc === undefined) return $multi(undefined, `Azure: ${err}`, false);
  const n = asReplicas(dig(doc, "sku", "capacity"));
  if (n === undefined) return $multi(undefined, "Azure: sku.capacity missing from the scale set", false);
  return $multi(n, undefined, false);
}

export function parseSet(this: void, status: number, _headers: LuaTable<string, string>, body: string): LuaMultiReturn<[boolean | undefined, string | undefined, boolean]> {
  if (status === 200 || status === 202) return $multi(true, undefined, false);
  return failure(status, body);
}
