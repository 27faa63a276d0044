// Pool membership (peers, weights, admin states, health verdicts) in the autoscale_state shared
// dict, so every worker agrees and the state survives `nginx -s reload`. Per pool:
//   bal|members|<pool>   the peer list (balancer/peer_list_codec.ts: checksummed text)
//   bal|version|<pool>   its version as a number: what workers poll (one dict get per pool)
//   bal|seed|<pool>      the config's peer list the members were seeded from
//   bal|drain|<pool>|<host:port>            when a drain was stored (after the write)
//   bal|inflight|<pool>|<host:port>|<wid>   "<in-flight> <time>", published by each worker for
//                                           its draining peers (balancing.ts)
// Writers (admin API, health checker, control loop) read, modify and write under a small
// shared-dict lock, so two concurrent changes cannot lose one another. Readers never lock.
// Not on the hot path: nothing here runs per request.
import { Json, JsonObject } from "../config/check";
import { PoolConfig } from "../config/config";
import * as membership from "../balancer/membership";
import { MemberPeer, PoolMembers } from "../balancer/membership";
import { decode, encode } from "../balancer/peer_list_codec";
import { GatewayState, STATE_DICT, getState } from "./state";

const MEMBERS = "bal|members|";
const VERSION = "bal|version|";
const SEED = "bal|seed|";
const LOCK = "bal|lock|";
const DRAIN = "bal|drain|";
const INFLIGHT = "bal|inflight|";
/** A lock holder that dies frees the lock after this many seconds. */
const LOCK_TTL = 5;
const LOCK_WAIT = 2;
/** Published in-flight figures expire, so a dead worker's figure does not linger. */
const INFLIGHT_TTL = 60;

function dict(): NgxSharedDict {
  return ngx.shared[STATE_DICT]!;
}

/** "10.0.0.7:8080" or "[::1]:8080" → host, port (the port as given, so errors can quote it). */
export function splitAddress(address: string): LuaMultiReturn<[string | undefined, string | undefined]> {
  let [host, port] = string.match(address, "^%[([^%]]+)%]:([^:]*)$");
  if (host === undefined) [host, port] = string.match(address, "^(.+):([^:]*)$");
  return $multi(host, port);
}

/** What a pool's config peers look like, to tell whether the config file changed them. */
function fingerprint(config: PoolConfig): string {
  const parts: string[] = [];
  for (const p of config.peers) parts.push(string.format("%s %d %d", p.host, p.port, p.weight));
  return table.concat(parts, ",");
}

/** The pool's version as workers see it (cheap: one dict get). */
export function version(pool: string): number | undefined {
  const v = dict().get(VERSION + pool)[0];
  return type(v) === "number" ? (v as number) : undefined;
}

/** The pool's stored membership. */
export function load(pool: string): LuaMultiReturn<[PoolMembers | undefined, string | undefined]> {
  const raw = dict().get(MEMBERS + pool)[0];
  if (raw === undefined) return $multi(undefined, `no membership stored for pool ${string.format("%q", pool)}`);
  return decode(raw);
}

function store(m: PoolMembers): string | undefined {
  const d = dict();
  const [ok, err] = d.safe_set(MEMBERS + m.name, encode(m));
  if (!ok) return `cannot store the membership of pool ${m.name}: ${err}`;
  // The version goes last: a worker that sees it finds the list it belongs to.
  const [vok, verr] = d.safe_set(VERSION + m.name, m.version);
  return vok ? undefined : `cannot store the version of pool ${m.name}: ${verr}`;
}

/**
 * init_by_lua (master, before any worker): writes each pool's membership from the config
 * unless the dict already holds one seeded from the same config peers (a reload keeps the
 * runtime changes; editing a pool's peers in the config file resets that pool to the file).
 */
export function seed(s: GatewayState): string | undefined {
  const d = dict();
  for (const name of s.config.poolNames) {
    const config = s.pools.get(name).config;
    const print = fingerprint(config);
    const [current] = load(name);
    if (current !== undefined && d.get(SEED + name)[0] === print) continue;
    // Config peers serve from time 0: no slow start at gateway start.
    const fresh = membership.fromConfig(name, config.peers, 0);
    fresh.version = (current?.version ?? version(name) ?? 0) + 1;
    const err = store(fresh);
    if (err !== undefined) return err;
    d.set(SEED + name, print);
  }
  return undefined;
}

function lock(pool: string): boolean {
  const d = dict();
  const key = LOCK + pool;
  const deadline = ngx.now() + LOCK_WAIT;
  while (true) {
    const [ok] = d.add(key, ngx.worker.pid(), LOCK_TTL);
    if (ok) return true;
    if (ngx.now() > deadline) return false;
    ngx.sleep(0.002);
  }
}

function unlock(pool: string): void {
  dict().delete(LOCK + pool);
}

/**
 * Applies one membership operation (`{op, host, port, weight?}`, see balancer/membership.ts) to
 * `pool`, under the pool's lock. Returns the new membership, or the problems (each naming its
 * field) and nothing changed.
 */
export function change(pool: string, op: JsonObject, now: number): LuaMultiReturn<[PoolMembers | undefined, string[]]> {
  const s = getState();
  const pools = new LuaTable<string, PoolMembers>();
  op.set("pool", pool);
  if (s === undefined || !s.pools.has(pool)) {
    // membership.apply names the unknown pool (and every other bad field) for us.
    return membership.apply(pools, op, now);
  }
  if (!lock(pool)) return $multi(undefined, [`pool: pool ${string.format("%q", pool)} is busy with another change; try again`]);
  const [current, err] = load(pool);
  if (current === undefined) {
    unlock(pool);
    return $multi(undefined, [`pool: ${err}`]);
  }
  pools.set(pool, current);
  const [next, problems] = membership.apply(pools, op, now, s.pools.get(pool).config.balancer.health_check !== undefined);
  if (next !== undefined) {
    const serr = store(next);
    if (serr !== undefined) {
      unlock(pool);
      return $multi(undefined, [`pool: ${serr}`]);
    }
    if (op.get("op") === "drain") {
      // Taken after the write: a worker figure published at or after this time was computed
      // by a worker that had already read the draining state (see peerDrained).
      ngx.update_time();
      dict().set(`${DRAIN}${pool}|${op.get("host")}:${op.get("port")}`, ngx.now());
    }
  }
  unlock(pool);
  return $multi(next, problems);
}

function operation(op: string, address: string, weight?: number): JsonObject {
  const o = new LuaTable<string, Json>();
  const [host, port] = splitAddress(address);
  o.set("op", op);
  o.set("host", host ?? address);
  o.set("port", tonumber(port) ?? port);
  if (weight !== undefined) o.set("weight", weight);
  return o;
}

function firstProblem(m: PoolMembers | undefined, problems: string[]): LuaMultiReturn<[PoolMembers | undefined, string | undefined]> {
  return $multi(m, m === undefined ? table.concat(problems, "; ") : undefined);
}

// --- The functions the control loop calls (issue 8, graceful scale-in) ----------------------
// Each returns the new membership, or undefined and a message naming the bad field. They lock,
// so call them from a timer or a request handler (not from init_by_lua).

/** Adds `address` ("host:port") with `weight` (default 1); it ramps up per slow start. */
export function addPeer(pool: string, address: string, weight?: number): LuaMultiReturn<[PoolMembers | undefined, string | undefined]> {
  const [m, problems] = change(pool, operation("add", address, weight), ngx.now());
  return firstProblem(m, problems);
}

/** Removes `address` at once (drain it first for a graceful removal). */
export function removePeer(pool: string, address: string): LuaMultiReturn<[PoolMembers | undefined, string | undefined]> {
  const [m, problems] = change(pool, operation("remove", address), ngx.now());
  return firstProblem(m, problems);
}

/** No new requests to `address`; in-flight ones finish. Poll `peerDrained` until true. */
export function drainPeer(pool: string, address: string): LuaMultiReturn<[PoolMembers | undefined, string | undefined]> {
  const [m, problems] = change(pool, operation("drain", address), ngx.now());
  return firstProblem(m, problems);
}

export function setWeight(pool: string, address: string, weight: number): LuaMultiReturn<[PoolMembers | undefined, string | undefined]> {
  const [m, problems] = change(pool, operation("set_weight", address, weight), ngx.now());
  return firstProblem(m, problems);
}

/**
 * True once `address` is draining and every worker has reported, after the drain began, that no
 * request is in flight to it. Workers report every 0.25 s, so this turns true within about half
 * a second of the last in-flight request finishing. (false, reason) otherwise.
 */
export function peerDrained(pool: string, address: string): LuaMultiReturn<[boolean, string | undefined]> {
  const [m, err] = load(pool);
  if (m === undefined) return $multi(false, err);
  const [host, port] = splitAddress(address);
  const at = membership.find(m, host ?? "", tonumber(port) ?? -1);
  if (at < 0) return $multi(false, `no peer ${address} in pool ${pool}`);
  const peer: MemberPeer = m.peers[at];
  if (peer.state !== "draining") return $multi(false, `peer ${address} is ${peer.state}, not draining`);
  const key = `${peer.host}:${peer.port}`;
  const d = dict();
  const began = (d.get(`${DRAIN}${pool}|${key}`)[0] as number | undefined) ?? 0;
  let waiting = 0;
  let busy = 0;
  for (const w of $range(0, ngx.worker.count() - 1)) {
    const v = d.get(`${INFLIGHT}${pool}|${key}|${w}`)[0];
    const [count, at] = string.match(tostring(v ?? ""), "^(%d+) ([%d.]+)$");
    if (count === undefined || tonumber(at)! < began) waiting++;
    else if (tonumber(count)! > 0) busy += tonumber(count)!;
  }
  if (waiting > 0) return $multi(false, string.format("waiting for %d worker(s) to report", waiting));
  if (busy > 0) return $multi(false, string.format("%d request(s) in flight", busy));
  return $multi(true, undefined);
}

/** A worker's in-flight figure for one of its draining peers (balancing.ts, every refresh). */
export function publishInflight(pool: string, address: string, worker: number, inflight: number, now: number): void {
  dict().set(`${INFLIGHT}${pool}|${address}|${worker}`, string.format("%d %.3f", inflight, now), INFLIGHT_TTL);
}

/** The health checker's verdict; stores a new version only when the verdict changed. */
export function setHealth(pool: string, host: string, port: number, healthy: boolean, now: number): string | undefined {
  if (!lock(pool)) return `pool ${pool} is busy`;
  const [current, err] = load(pool);
  let serr: string | undefined = err;
  if (current !== undefined) {
    const next = membership.setHealth(current, host, port, healthy, now);
    serr = next === undefined ? undefined : store(next);
  }
  unlock(pool);
  return serr;
}
