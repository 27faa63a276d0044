// A CounterStore in a plain Lua table, with TTLs against a clock the owner sets (`store.now`).
// For specs and simulations; the gateway uses an ngx.shared dict with the same methods, whose
// lifetimes this store keeps the way nginx does: whole milliseconds (seconds x 1000 truncated),
// 0 meaning "never expires", a key gone once its expiry millisecond is reached.
import { CounterStore } from "./store";

export interface MemoryStore extends CounterStore {
  now: number;
  values: LuaTable<string, number>;
  expiresAt: LuaTable<string, number>;
}

/** nginx's clock for dict lifetimes: milliseconds (the owner's clock rounded to one). */
function nowMs(s: MemoryStore): number {
  return math.floor(s.now * 1000 + 0.5);
}

/** Records `ttl` seconds from now as nginx would: truncated to whole milliseconds, 0 for never. */
function setLifetime(s: MemoryStore, key: string, ttl: number): void {
  const ms = ttl * 1000 - math.fmod(ttl * 1000, 1);
  if (ms > 0) s.expiresAt.set(key, nowMs(s) + ms);
  else s.expiresAt.delete(key);
}

function live(s: MemoryStore, key: string): number | undefined {
  const at = s.expiresAt.get(key);
  if (at !== undefined && at <= nowMs(s)) {
    s.values.delete(key);
    s.expiresAt.delete(key);
    return undefined;
  }
  return s.values.get(key);
}

function incr(this: MemoryStore, key: string, by: number, init: number, ttl: number): LuaMultiReturn<[number | undefined, string | undefined]> {
  const v = live(this, key);
  if (v === undefined) {
    this.values.set(key, init + by);
    setLifetime(this, key, ttl);
    return $multi(init + by, undefined);
  }
  this.values.set(key, v + by);
  return $multi(v + by, undefined);
}

function get(this: MemoryStore, key: string): LuaMultiReturn<[number | undefined, unknown]> {
  return $multi(live(this, key), undefined);
}

function expire(this: MemoryStore, key: string, ttl: number): LuaMultiReturn<[boolean | undefined, string | undefined]> {
  if (live(this, key) === undefined) return $multi(undefined, "not found");
  setLifetime(this, key, ttl);
  return $multi(true, undefined);
}

/** A fresh in-memory store whose clock starts at `now`. */
export function newMemoryStore(now: number): MemoryStore {
  return { now, values: new LuaTable(), expiresAt: new LuaTable(), incr, get, expire };
}
