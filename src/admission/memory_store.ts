// A CounterStore in a plain Lua table, with TTLs against a clock the owner sets (`store.now`).
// For specs and simulations; the gateway uses an ngx.shared dict with the same methods.
import { CounterStore } from "./store";

export interface MemoryStore extends CounterStore {
  now: number;
  values: LuaTable<string, number>;
  expiresAt: LuaTable<string, number>;
}

function live(s: MemoryStore, key: string): number | undefined {
  const at = s.expiresAt.get(key);
  if (at !== undefined && at <= s.now) {
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
    if (ttl > 0) this.expiresAt.set(key, this.now + ttl);
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
  this.expiresAt.set(key, this.now + ttl);
  return $multi(true, undefined);
}

/** A fresh in-memory store whose clock starts at `now`. */
export function newMemoryStore(now: number): MemoryStore {
  return { now, values: new LuaTable(), expiresAt: new LuaTable(), incr, get, expire };
}
