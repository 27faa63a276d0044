// A small Redis client on nginx cosockets: commands, pipelines and Lua scripts (EVALSHA with a
// fallback to EVAL when the server does not know the script yet). Errors are returned, never
// thrown; a Redis error reply comes back as the error message "redis: <reply>".
import { encodeCommand } from "./resp";

export interface RedisOptions {
  host: string;
  port: number;
  /** Connect, send and read timeout in milliseconds (default 1000). */
  timeoutMs?: number;
  password?: string;
  db?: number;
  /** Keepalive pool size (default 32) and idle time (default 60 s). */
  poolSize?: number;
  idleMs?: number;
}

export type RedisReply = string | number | boolean | RedisReply[] | undefined;

export interface RedisConnection {
  sock: NgxTcpSocket;
  opts: RedisOptions;
}

/** Reads one reply. A nil bulk string is `undefined`; an error reply is [undefined, "redis: ..."]. */
function readReply(sock: NgxTcpSocket): LuaMultiReturn<[RedisReply, string | undefined]> {
  const [line, err] = sock.receive("*l");
  if (line === undefined) return $multi(undefined, `redis read failed: ${err}`);
  const prefix = string.sub(line, 1, 1);
  const rest = string.sub(line, 2);
  if (prefix === "+") return $multi(rest, undefined);
  if (prefix === "-") return $multi(undefined, `redis: ${rest}`);
  if (prefix === ":") return $multi(tonumber(rest), undefined);
  if (prefix === "$") {
    const n = tonumber(rest);
    if (n === undefined) return $multi(undefined, `redis: bad bulk length "${rest}"`);
    if (n < 0) return $multi(undefined, undefined);
    const [data, derr] = sock.receive(n + 2);
    if (data === undefined) return $multi(undefined, `redis read failed: ${derr}`);
    return $multi(string.sub(data, 1, n), undefined);
  }
  if (prefix === "*") {
    const n = tonumber(rest);
    if (n === undefined) return $multi(undefined, `redis: bad array length "${rest}"`);
    if (n < 0) return $multi(undefined, undefined);
    const out: RedisReply[] = [];
    for (const i of $range(1, n)) {
      const [item, ierr] = readReply(sock);
      // An error inside an array (e.g. from EXEC) is kept as a string, the rest stays readable.
      if (ierr !== undefined && string.sub(ierr, 1, 7) !== "redis: ") return $multi(undefined, ierr);
      out[i - 1] = ierr ?? item;
    }
    return $multi(out, undefined);
  }
  return $multi(undefined, `redis: unexpected reply "${string.sub(line, 1, 40)}"`);
}

/** Connects (or reuses a pooled connection), authenticating and selecting the db on new ones. */
export function connect(opts: RedisOptions): LuaMultiReturn<[RedisConnection | undefined, string | undefined]> {
  const sock = ngx.socket.tcp();
  const t = opts.timeoutMs ?? 1000;
  sock.settimeouts(t, t, t);
  const [ok, err] = sock.connect(opts.host, opts.port, { pool: `redis:${opts.host}:${opts.port}:${opts.db ?? 0}` });
  if (ok === undefined) return $multi(undefined, `redis connect to ${opts.host}:${opts.port} failed: ${err}`);
  const conn: RedisConnection = { sock, opts };
  const [reused] = sock.getreusedtimes();
  if (reused === 0) {
    if (opts.password !== undefined) {
      const [, aerr] = command(conn, ["AUTH", opts.password]);
      if (aerr !== undefined) {
        sock.close();
        return $multi(undefined, aerr === "redis: ERR invalid password" ? "redis: authentication failed" : aerr);
      }
    }
    if (opts.db !== undefined && opts.db !== 0) {
      const [, serr] = command(conn, ["SELECT", opts.db]);
      if (serr !== undefined) {
        sock.close();
        return $multi(undefined, serr);
      }
    }
  }
  return $multi(conn, undefined);
}

/** Sends one command and reads its reply. A socket error closes the connection. */
export function command(conn: RedisConnection, args: (string | number)[]): LuaMultiReturn<[RedisReply, string | undefined]> {
  const [sent, err] = conn.sock.send(encodeCommand(args));
  if (sent === undefined) {
    conn.sock.close();
    return $multi(undefined, `redis send failed: ${err}`);
  }
  const [reply, rerr] = readReply(conn.sock);
  if (rerr !== undefined && string.sub(rerr, 1, 7) !== "redis: ") conn.sock.close();
  return $multi(reply, rerr);
}

/** Sends several commands in one write and reads every reply (errors kept per command). */
export function pipeline(conn: RedisConnection, commands: (string | number)[][]): LuaMultiReturn<[RedisReply[] | undefined, string | undefined]> {
  const parts: string[] = [];
  for (const c of commands) parts.push(encodeCommand(c));
  const [sent, err] = conn.sock.send(table.concat(parts));
  if (sent === undefined) {
    conn.sock.close();
    return $multi(undefined, `redis send failed: ${err}`);
  }
  const replies: RedisReply[] = [];
  for (let i = 0; i < commands.length; i++) {
    const [reply, rerr] = readReply(conn.sock);
    if (rerr !== undefined && string.sub(rerr, 1, 7) !== "redis: ") {
      conn.sock.close();
      return $multi(undefined, rerr);
    }
    replies[i] = rerr ?? reply;
  }
  return $multi(replies, undefined);
}

/** Runs a Lua script by its SHA-1, loading it with EVAL when Redis answers NOSCRIPT. */
export function evalScript(conn: RedisConnection, script: string, sha1: string, keys: string[], args: (string | number)[]): LuaMultiReturn<[RedisReply, string | undefined]> {
  const call: (string | number)[] = ["EVALSHA", sha1, keys.length];
  for (const k of keys) call.push(k);
  for (const a of args) call.push(a);
  const [reply, err] = command(conn, call);
  if (err === undefined || string.find(err, "NOSCRIPT", 1, true)[0] === undefined) return $multi(reply, err);
  call[0] = "EVAL";
  call[1] = script;
  return command(conn, call);
}

/** Returns the connection to the keepalive pool. */
export function release(conn: RedisConnection): void {
  conn.sock.setkeepalive(conn.opts.idleMs ?? 60000, conn.opts.poolSize ?? 32);
}

/** The SHA-1 of a script in hex, as Redis names it (for EVALSHA). */
export function scriptSha1(script: string): string {
  const bin = ngx.sha1_bin(script);
  const hex: string[] = [];
  for (const i of $range(1, bin.length)) hex.push(string.format("%02x", string.byte(bin, i)));
  return table.concat(hex);
}
