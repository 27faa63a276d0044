// The metric-source family: every source type exports `kind` and `fetch(cfg, io)`, which returns
// the current value or a message saying why there is none. I/O comes in through SourceIo (the
// cosocket HTTP and Redis clients in the gateway, fakes in specs), so sources stay pure.
// Staleness is common to all: a value older than max_age is missing, with the reason.
import { SecretRef } from "../actuators/schema";

export interface SourceHttpRequest {
  method: string;
  url: string;
  headers: LuaTable<string, string>;
  timeoutMs: number;
}

export interface SourceIo {
  http(this: void, req: SourceHttpRequest): LuaMultiReturn<[{ status: number; body: string } | undefined, string | undefined]>;
  /** One Redis command through the gateway's `redis` section. */
  redis(this: void, args: (string | number)[], timeoutMs: number): LuaMultiReturn<[unknown, string | undefined]>;
  secret(this: void, ref: SecretRef): LuaMultiReturn<[string | undefined, string | undefined]>;
}

export interface Source<C> {
  readonly kind: string;
  fetch(this: void, cfg: C, io: SourceIo): LuaMultiReturn<[number | undefined, string | undefined]>;
}

/** What the shell keeps per source between fetches. */
export interface SourceEntry {
  value?: number;
  /** When `value` was fetched. */
  fetchedAt?: number;
  /** The last fetch's error, cleared by a success. */
  error?: string;
  /** When the last fetch (good or bad) ended. */
  lastTry?: number;
}

export function newSourceEntry(): SourceEntry {
  return {};
}

/** Records a fetch's outcome. A failure keeps the last good value (it ages out by itself). */
export function recordFetch(e: SourceEntry, value: number | undefined, err: string | undefined, now: number): void {
  e.lastTry = now;
  if (value !== undefined) {
    e.value = value;
    e.fetchedAt = now;
    e.error = undefined;
  } else {
    e.error = err ?? "no value";
  }
}

/** The usable value at `now`, or undefined and the reason (for the decision log). */
export function reading(e: SourceEntry, now: number, maxAge: number): LuaMultiReturn<[number | undefined, string | undefined]> {
  if (e.value === undefined || e.fetchedAt === undefined) {
    return $multi(undefined, e.error === undefined ? "not fetched yet" : `no value yet: ${e.error}`);
  }
  const age = now - e.fetchedAt;
  if (age > maxAge) {
    const why = e.error === undefined ? "" : `; last error: ${e.error}`;
    return $multi(undefined, string.format("stale: last value is %.1f s old (max_age %g s)%s", age, maxAge, why));
  }
  return $multi(e.value, undefined);
}

/** Is a new fetch due? */
export function fetchDue(e: SourceEntry, now: number, interval: number): boolean {
  return e.lastTry === undefined || now - e.lastTry >= interval || now < e.lastTry;
}

/** Headers with a bearer token when the source has one. */
export function authHeaders(token: SecretRef | undefined, io: SourceIo): LuaMultiReturn<[LuaTable<string, string> | undefined, string | undefined]> {
  const h = new LuaTable<string, string>();
  h.set("Accept", "application/json");
  if (token === undefined) return $multi(h, undefined);
  const [value, err] = io.secret(token);
  if (value === undefined) return $multi(undefined, err);
  h.set("Authorization", `Bearer ${value}`);
  return $multi(h, undefined);
}
