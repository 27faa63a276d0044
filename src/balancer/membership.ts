// Runtime membership: applies one admin operation to a pool's peer list, validated field by
// field like the config file (400-style messages that name the field), and returns a new list
// with the version bumped, or the problems and nothing changed. Pure: the admin API shell
// decodes the request, calls `apply`, writes `peer_list_codec.encode(...)` to the shared dict,
// and every worker rebuilds its balancer when it sees the new version.
import * as cjson from "cjson.safe";
import { Json, Problems, describe, readEnum, readInteger, readObject, readString, rejectUnknownKeys } from "../config/check";
import { isIpLiteral } from "./address";
import { AdminState } from "./effective";
import { peerKey } from "./types";

export interface MemberPeer {
  host: string;
  port: number;
  weight: number;
  /** up: in rotation; draining: no new requests, in-flight ones finish; down: out. */
  state: AdminState;
  /** Verdict of the active health checker (true when checks are off). */
  healthy: boolean;
  /** When the peer last started serving (added, marked up, healthy again): slow start. */
  since: number;
}

export interface PoolMembers {
  name: string;
  /** Bumped by every change, so workers know to rebuild. */
  version: number;
  peers: MemberPeer[];
}

export const OPERATIONS = ["add", "remove", "set_weight", "drain", "up", "down"] as const;
export type Operation = (typeof OPERATIONS)[number];

export const MAX_WEIGHT = 1000;

export function fromConfig(name: string, peers: { host: string; port: number; weight: number }[], now: number): PoolMembers {
  const list: MemberPeer[] = [];
  for (const p of peers) list.push({ host: p.host, port: p.port, weight: p.weight, state: "up", healthy: true, since: now });
  return { name, version: 1, peers: list };
}

export function find(pool: PoolMembers, host: string, port: number): number {
  for (let i = 0; i < pool.peers.length; i++) {
    const p = pool.peers[i];
    if (p.host === host && p.port === port) return i;
  }
  return -1;
}

function copyPeers(pool: PoolMembers): MemberPeer[] {
  const out: MemberPeer[] = [];
  for (const p of pool.peers) out.push({ host: p.host, port: p.port, weight: p.weight, state: p.state, healthy: p.healthy, since: p.since });
  return out;
}

/**
 * Applies `{op, pool, host, port, weight?}` to `pools` (not modified). add: weight defaults to
 * 1; set_weight: weight required; remove, drain, up, down: host and port only.
 */
/**
 * `probed`: the pool has active health checks, so an added peer gets no traffic until its first
 * passing verdict (its slow start begins then, not at the add).
 */
export function apply(pools: LuaTable<string, PoolMembers>, raw: Json, now: number, probed?: boolean): LuaMultiReturn<[PoolMembers | undefined, string[]]> {
  const p = new Problems();
  const o = readObject(p, "body", raw, true);
  if (o === undefined) return $multi(undefined, p.list);
  rejectUnknownKeys(p, "", o, ["op", "pool", "host", "port", "weight"]);
  const op = readEnum(p, "op", o.get("op"), OPERATIONS, undefined);
  const poolName = readString(p, "pool", o.get("pool"), true);
  let pool: PoolMembers | undefined;
  if (poolName !== undefined) {
    pool = pools.get(poolName);
    if (pool === undefined) p.add("pool", `unknown pool ${string.format("%q", poolName)}`);
  }
  let host = readString(p, "host", o.get("host"), true);
  if (host !== undefined && !isIpLiteral(host)) {
    p.add("host", `expected an IPv4 or IPv6 address (host names are not resolved in the balancer), got ${describe(host)}`);
    host = undefined;
  }
  const port = readInteger(p, "port", o.get("port"), 1, 65535, undefined);
  let weight: number | undefined;
  if (op === "add" || op === "set_weight") {
    weight = readInteger(p, "weight", o.get("weight"), 0, MAX_WEIGHT, op === "add" ? 1 : undefined);
  } else if (op !== undefined && o.get("weight") !== undefined) {
    p.add("weight", `not allowed with op ${string.format("%q", op)}`);
  }
  if (p.list.length > 0 || op === undefined || pool === undefined || host === undefined || port === undefined) {
    return $multi(undefined, p.list);
  }
  const at = find(pool, host, port);
  const key = peerKey(host, port);
  if (op === "add") {
    if (at >= 0) return $multi(undefined, [`host: peer ${key} is already in pool ${string.format("%q", pool.name)}`]);
  } else if (at < 0) {
    return $multi(undefined, [`host: no peer ${key} in pool ${string.format("%q", pool.name)}`]);
  }
  const peers = copyPeers(pool);
  if (op === "add") {
    peers.push({ host, port, weight: weight!, state: "up", healthy: probed !== true, since: now });
  } else if (op === "remove") {
    table.remove(peers, at + 1);
  } else if (op === "set_weight") {
    peers[at].weight = weight!;
  } else if (op === "drain") {
    peers[at].state = "draining";
  } else if (op === "down") {
    peers[at].state = "down";
  } else if (op === "up") {
    // A peer coming back ramps up again (slow start), one already up keeps its ramp.
    if (peers[at].state !== "up") peers[at].since = now;
    peers[at].state = "up";
  }
  return $multi({ name: pool.name, version: pool.version + 1, peers }, []);
}

/** `apply` on a raw request body: malformed JSON is a problem like any other. */
export function applyBody(pools: LuaTable<string, PoolMembers>, body: string | undefined, now: number): LuaMultiReturn<[PoolMembers | undefined, string[]]> {
  if (body === undefined || body === "") return $multi(undefined, ["body: expected a JSON object, got nothing"]);
  const [doc] = cjson.decode(body);
  if (doc === undefined) return $multi(undefined, ["body: expected a JSON object, got malformed JSON"]);
  return apply(pools, doc, now);
}

/** The health checker's verdict for one peer; a new list (version bumped) or undefined if unchanged. */
export function setHealth(pool: PoolMembers, host: string, port: number, healthy: boolean, now: number): PoolMembers | undefined {
  const at = find(pool, host, port);
  if (at < 0 || pool.peers[at].healthy === healthy) return undefined;
  const peers = copyPeers(pool);
  peers[at].healthy = healthy;
  if (healthy) peers[at].since = now;
  return { name: pool.name, version: pool.version + 1, peers };
}

/** A draining peer is drained once no request is in flight to it. */
export function drained(peer: MemberPeer, inflight: number): boolean {
  return peer.state === "draining" && inflight <= 0;
}
