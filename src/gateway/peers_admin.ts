// The admin API's runtime membership endpoints (admin.ts routes /autoscale/pools/... here):
//   GET    /autoscale/pools/NAME/peers                       the pool's members
//   POST   /autoscale/pools/NAME/peers                       add {"host", "port", "weight"?}
//   GET    /autoscale/pools/NAME/peers/HOST:PORT             one member (with "drained")
//   DELETE /autoscale/pools/NAME/peers/HOST:PORT             remove at once
//   POST   /autoscale/pools/NAME/peers/HOST:PORT/weight      {"weight": 0-1000}
//   POST   /autoscale/pools/NAME/peers/HOST:PORT/drain       no new requests; in-flight finish
//   POST   /autoscale/pools/NAME/peers/HOST:PORT/up | down   back into / out of rotation
// IPv6 peers are written [addr]:port. Bad input gets 400 with every problem, each naming its
// field, and changes nothing. A change is in force on every worker within 0.25 s.
import * as cjson from "cjson.safe";
import { Json, JsonObject, isObject } from "../config/check";
import { MemberPeer, PoolMembers } from "../balancer/membership";
import * as store from "./membership_store";
import { GatewayState } from "./state";

function peerView(pool: string, p: MemberPeer): unknown {
  const address = `${p.host}:${p.port}`;
  let drained: boolean | undefined;
  let waiting: string | undefined;
  if (p.state === "draining") [drained, waiting] = store.peerDrained(pool, address);
  // drain_wait says what a draining peer still waits for (in-flight requests, worker reports).
  return { address, host: p.host, port: p.port, weight: p.weight, state: p.state, healthy: p.healthy, since: p.since, drained, drain_wait: waiting };
}

function poolView(m: PoolMembers): unknown {
  const peers: unknown[] = [];
  for (const p of m.peers) peers.push(peerView(m.name, p));
  // cjson writes an empty Lua table as {}: keep "peers" an array.
  return { pool: m.name, version: m.version, peers: peers.length > 0 ? peers : cjson.empty_array };
}

function problemsReply(problems: string[]): LuaMultiReturn<[number, unknown]> {
  return $multi(400, { error: problems[0], problems });
}

/** The request body as a JSON object, or the problem with it. */
function readJsonBody(): LuaMultiReturn<[JsonObject | undefined, string | undefined]> {
  ngx.req.read_body();
  const body = ngx.req.get_body_data();
  if (body === undefined) {
    if (ngx.req.get_body_file() !== undefined) return $multi(undefined, "body: too large (at most client_body_buffer_size)");
    return $multi(undefined, "body: expected a JSON object, got nothing");
  }
  const [doc] = cjson.decode(body);
  if (doc === undefined) return $multi(undefined, "body: expected a JSON object, got malformed JSON");
  if (type(doc) !== "table" || !isObject(doc)) return $multi(undefined, "body: expected a JSON object");
  return $multi(doc as JsonObject, undefined);
}

/** Builds `{op, host, port, ...}` from the URL address and the allowed body fields. */
function operation(op: string, address: string | undefined, body: JsonObject | undefined, allowed: string[], problems: string[]): JsonObject {
  const o = new LuaTable<string, Json>();
  if (body !== undefined) {
    for (const [k, v] of pairs(body)) {
      if (allowed.includes(k as string)) o.set(k as string, v);
      else problems.push(`${k}: unknown field (expected ${allowed.length === 0 ? "no body" : allowed.join(", ")})`);
    }
  }
  if (address !== undefined) {
    const [host, port] = store.splitAddress(address);
    if (host === undefined) {
      problems.push(`address: expected HOST:PORT (IPv6 as [ADDR]:PORT), got ${string.format("%q", address)}`);
    } else {
      o.set("host", host);
      o.set("port", tonumber(port) ?? port);
    }
  }
  o.set("op", op);
  return o;
}

function apply(pool: string, op: JsonObject, problems: string[], created: boolean): LuaMultiReturn<[number, unknown]> {
  if (problems.length > 0) return problemsReply(problems);
  const [m, more] = store.change(pool, op, ngx.now());
  if (m === undefined) return problemsReply(more);
  return $multi(created ? 201 : 200, poolView(m));
}

const ACTIONS = ["weight", "drain", "up", "down"];

/**
 * Handles `/autoscale/pools/...`; returns the status and the JSON body to send. The caller has
 * checked the bearer token.
 */
export function handlePools(s: GatewayState, method: string, uri: string): LuaMultiReturn<[number, unknown]> {
  const [listPool] = string.match(uri, "^/autoscale/pools/([^/]+)/peers/?$");
  const [onePool, address] = string.match(uri, "^/autoscale/pools/([^/]+)/peers/([^/]+)$");
  const [actPool, actAddress, action] = string.match(uri, "^/autoscale/pools/([^/]+)/peers/([^/]+)/(%a+)$");
  const pool = listPool ?? onePool ?? actPool;
  if (pool === undefined) return $multi(404, { error: `no admin endpoint at ${uri}`, endpoints: ["/autoscale/pools/NAME/peers", "/autoscale/pools/NAME/peers/HOST:PORT[/weight|drain|up|down]"] });
  const known = s.pools.has(pool);
  const problems: string[] = [];

  if (listPool !== undefined) {
    if (method === "GET") {
      const [m, err] = store.load(pool);
      if (!known || m === undefined) return $multi(404, { error: known ? `pool: ${err}` : `pool: unknown pool ${string.format("%q", pool)}` });
      return $multi(200, poolView(m));
    }
    if (method !== "POST") return $multi(405, { error: `${method} not allowed on ${uri}: use GET or POST` });
    const [body, berr] = readJsonBody();
    if (body === undefined) return problemsReply([berr!]);
    return apply(pool, operation("add", undefined, body, ["host", "port", "weight"], problems), problems, true);
  }

  if (onePool !== undefined) {
    if (method === "GET") {
      const [m, err] = store.load(pool);
      if (!known || m === undefined) return $multi(404, { error: known ? `pool: ${err}` : `pool: unknown pool ${string.format("%q", pool)}` });
      const [host, port] = store.splitAddress(address!);
      for (const p of m.peers) {
        if (p.host === host && p.port === tonumber(port)) return $multi(200, peerView(pool, p));
      }
      return $multi(404, { error: `address: no peer ${address} in pool ${string.format("%q", pool)}` });
    }
    if (method !== "DELETE") return $multi(405, { error: `${method} not allowed on ${uri}: use GET or DELETE` });
    return apply(pool, operation("remove", address, undefined, [], problems), problems, false);
  }

  if (!ACTIONS.includes(action!)) return $multi(404, { error: `no action ${string.format("%q", action)} on a peer (expected one of: ${ACTIONS.join(", ")})` });
  if (method !== "POST" && method !== "PUT") return $multi(405, { error: `${method} not allowed on ${uri}: use POST` });
  if (action === "weight") {
    const [body, berr] = readJsonBody();
    if (body === undefined) return problemsReply([berr!]);
    if (body.get("weight") === undefined) problems.push("weight: required integer 0-1000 is missing");
    return apply(pool, operation("set_weight", actAddress, body, ["weight"], problems), problems, false);
  }
  return apply(pool, operation(action!, actAddress, undefined, [], problems), problems, false);
}
