// A pool's peer list, states and version as one compact string for a shared dict, so every
// worker can rebuild its balancer when the version changes. Line format:
//   asp1 <pool> <version> <count>
//   <host> <port> <weight> <u|d|r> <1|0> <since>     (one per peer; u up, d down, r draining;
//                                                      1 healthy, 0 unhealthy; since in seconds)
//   #<adler-32 of everything before this line, 8 hex digits>
// decode checks the header, the count, every field and the checksum: a torn or corrupt value
// is refused (the worker keeps the list it has) rather than half applied.
import { isIpLiteral } from "./address";
import { AdminState } from "./effective";
import { MAX_WEIGHT, MemberPeer, PoolMembers } from "./membership";

const MAGIC = "asp1";

function stateLetter(s: AdminState): string {
  return s === "up" ? "u" : s === "down" ? "d" : "r";
}

function letterState(c: string): AdminState | undefined {
  return c === "u" ? "up" : c === "d" ? "down" : c === "r" ? "draining" : undefined;
}

/** Adler-32 of `s` (a cheap integrity check, not a security measure). */
export function adler32(s: string): number {
  let a = 1;
  let b = 0;
  for (const i of $range(1, s.length)) {
    a = (a + string.byte(s, i)) % 65521;
    b = (b + a) % 65521;
  }
  return b * 65536 + a;
}

export function encode(pool: PoolMembers): string {
  const lines: string[] = [string.format("%s %s %d %d", MAGIC, pool.name, pool.version, pool.peers.length)];
  for (const p of pool.peers) {
    lines.push(string.format("%s %d %d %s %d %.3f", p.host, p.port, p.weight, stateLetter(p.state), p.healthy ? 1 : 0, p.since));
  }
  const body = table.concat(lines, "\n") + "\n";
  return body + string.format("#%08x", adler32(body));
}

/** The version alone, for the cheap "did it change?" check a worker makes. */
export function peekVersion(s: string): number | undefined {
  const [v] = string.match(s, "^asp1 %S+ (%d+) ");
  return v === undefined ? undefined : tonumber(v);
}

export function decode(s: unknown): LuaMultiReturn<[PoolMembers | undefined, string | undefined]> {
  if (type(s) !== "string") return $multi(undefined, "peer list: expected a string");
  const text = s as string;
  const [body, sum] = string.match(text, "^(.*\n)#(%x%x%x%x%x%x%x%x)$");
  if (body === undefined) return $multi(undefined, "peer list: missing checksum line");
  if (tonumber(sum, 16) !== adler32(body)) return $multi(undefined, "peer list: checksum mismatch");
  const [name, version, count] = string.match(body, "^asp1 ([%w_%.%-]+) (%d+) (%d+)\n");
  if (name === undefined) return $multi(undefined, "peer list: bad header");
  const peers: MemberPeer[] = [];
  let lineNo = 1;
  let first = true;
  for (const [line] of string.gmatch(body, "([^\n]*)\n")) {
    if (first) {
      first = false;
      continue;
    }
    lineNo++;
    const [host, port, weight, st, healthy, since] = string.match(line, "^(%S+) (%d+) (%d+) (%a) ([01]) (%d+%.?%d*)$");
    const p = tonumber(port);
    const w = tonumber(weight);
    const state = letterState(st ?? "");
    if (host === undefined || !isIpLiteral(host) || p === undefined || p < 1 || p > 65535 || w === undefined || w > MAX_WEIGHT || state === undefined) {
      return $multi(undefined, `peer list: bad peer on line ${lineNo}`);
    }
    peers.push({ host, port: p, weight: w, state, healthy: healthy === "1", since: tonumber(since)! });
  }
  if (peers.length !== tonumber(count)) return $multi(undefined, `peer list: expected ${count} peers, got ${peers.length}`);
  return $multi({ name, version: tonumber(version)!, peers }, undefined);
}
