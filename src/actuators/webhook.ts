// Generic webhook: a JSON POST per scale decision, for any orchestrator with an HTTP hook.
//   body: {"pool":..,"current":..|null,"desired":..,"reason":..,"decision_id":..,"timestamp":..}
//   X-Autoscale-Signature: t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>
//   Idempotency-Key: <hex SHA-256 of "<pool>\n<desired>\n<decision_id>">
// The receiver recomputes v1 over the exact body bytes, compares in constant time and refuses
// timestamps too far from its clock (replay protection); a retried delivery carries the same
// Idempotency-Key, so the receiver can act once.
import { hmacSha256Hex, sha256Hex } from "../crypto/sha256";
import { Credentials, Decision, RequestSpec, bodySnippet, isRetryableStatus, jsonString } from "./actuator";
import { WebhookConfig } from "./schema";

export const kind = "webhook";
export const readsCurrent = false;

export const SIGNATURE_HEADER = "X-Autoscale-Signature";
export const IDEMPOTENCY_HEADER = "Idempotency-Key";

/** The body, with its fields in a fixed order (the signature covers these exact bytes). */
export function webhookBody(decision: Decision, desired: number, timestamp: number): string {
  const current = decision.current === undefined ? "null" : string.format("%d", decision.current);
  return (
    `{"pool":${jsonString(decision.pool)},"current":${current},"desired":${string.format("%d", desired)},` +
    `"reason":${jsonString(decision.reason)},"decision_id":${jsonString(decision.id)},"timestamp":${string.format("%d", timestamp)}}`
  );
}

/** "t=<timestamp>,v1=<hex>" for the given secret, timestamp and body. */
export function signatureHeader(secret: string, timestamp: number, body: string): LuaMultiReturn<[string | undefined, string | undefined]> {
  const t = string.format("%d", timestamp);
  const [mac, err] = hmacSha256Hex(secret, `${t}.${body}`);
  if (mac === undefined) return $multi(undefined, err);
  return $multi(`t=${t},v1=${mac}`, undefined);
}

/** Same pool, same desired value, same decision: same key, however often it is retried. */
export function idempotencyKey(pool: string, desired: number, decisionId: string): LuaMultiReturn<[string | undefined, string | undefined]> {
  return sha256Hex(`${pool}\n${string.format("%d", desired)}\n${decisionId}`);
}

export function describeCurrent(this: void, _cfg: WebhookConfig, _creds: Credentials, _now: number): LuaMultiReturn<[RequestSpec | undefined, string | undefined]> {
  return $multi(undefined, "the webhook actuator cannot read the current replica count");
}

export function parseCurrent(this: void, _status: number, _headers: LuaTable<string, string>, _body: string): LuaMultiReturn<[number | undefined, string | undefined, boolean]> {
  return $multi(undefined, "the webhook actuator cannot read the current replica count", false);
}

export function buildSet(this: void, cfg: WebhookConfig, creds: Credentials, desired: number, now: number, decision: Decision): LuaMultiReturn<[RequestSpec | undefined, string | undefined]> {
  const timestamp = math.floor(now);
  const body = webhookBody(decision, desired, timestamp);
  const headers = new LuaTable<string, string>();
  headers.set("Content-Type", "application/json");
  headers.set("User-Agent", "lua-resty-autoscale");
  const [key, keyErr] = idempotencyKey(decision.pool, desired, decision.id);
  if (key === undefined) return $multi(undefined, keyErr);
  headers.set(IDEMPOTENCY_HEADER, key);
  if (cfg.secret !== undefined) {
    if (creds.hmacSecret === undefined) return $multi(undefined, "webhook secret is configured but was not resolved");
    const [sig, err] = signatureHeader(creds.hmacSecret, timestamp, body);
    if (sig === undefined) return $multi(undefined, err);
    headers.set(SIGNATURE_HEADER, sig);
  }
  return $multi({ method: "POST", url: cfg.url, headers, body }, undefined);
}

export function parseSet(this: void, status: number, _headers: LuaTable<string, string>, body: string): LuaMultiReturn<[boolean | undefined, string | undefined, boolean]> {
  if (status >= 200 && status < 300) return $multi(true, undefined, false);
  return $multi(undefined, `webhook: HTTP ${status}: ${bodySnippet(body)}`, isRetryableStatus(status));
}
