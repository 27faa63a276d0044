// The storage a rate limiter needs, kept to operations that are each atomic on their own in an
// nginx shared dict (and in Redis). An `ngx.shared.DICT` already has this shape, so the shell
// passes the dict itself; specs pass a MemoryStore. No operation compares-and-sets: each
// limiter is designed so that its decision never depends on a get-then-set pair.

/** Counter storage: `incr` creates a missing key from `init` with a TTL, atomically. */
export interface CounterStore {
  /** Adds `by` to the key (creating it as `init + by` with `ttl` seconds when missing); returns the new value. */
  incr(this: CounterStore, key: string, by: number, init: number, ttl: number): LuaMultiReturn<[number | undefined, string | undefined]>;
  /** The current value, or undefined when missing or expired. */
  get(this: CounterStore, key: string): LuaMultiReturn<[number | undefined, unknown]>;
  /** Sets the remaining lifetime of an existing key to `ttl` seconds. */
  expire(this: CounterStore, key: string, ttl: number): LuaMultiReturn<[boolean | undefined, string | undefined]>;
}
