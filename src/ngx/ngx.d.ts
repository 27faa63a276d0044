// Declarations for the part of the OpenResty / lua-nginx-module API this project uses.
// Typed tightly on purpose: a wrong argument or an ignored error is a compile error.
// Interfaces called with a dot are @noSelf; objects called with a colon (dicts, sockets) are
// plain interfaces whose methods take `this`.

/** A value a shared dict can hold. */
type ShdictValue = string | number | boolean;

interface NgxSharedDict {
  get(this: NgxSharedDict, key: string): LuaMultiReturn<[ShdictValue | undefined, number | undefined]>;
  get_stale(this: NgxSharedDict, key: string): LuaMultiReturn<[ShdictValue | undefined, number | undefined, boolean]>;
  /** Returns ok, err, forcible (true when a valid item was evicted to make room). */
  set(this: NgxSharedDict, key: string, value: ShdictValue | undefined, exptime?: number, flags?: number): LuaMultiReturn<[boolean, string | undefined, boolean]>;
  safe_set(this: NgxSharedDict, key: string, value: ShdictValue, exptime?: number, flags?: number): LuaMultiReturn<[boolean, string | undefined]>;
  /** Fails with "exists" when the key is already there: an atomic create. */
  add(this: NgxSharedDict, key: string, value: ShdictValue, exptime?: number, flags?: number): LuaMultiReturn<[boolean, string | undefined, boolean]>;
  safe_add(this: NgxSharedDict, key: string, value: ShdictValue, exptime?: number, flags?: number): LuaMultiReturn<[boolean, string | undefined]>;
  replace(this: NgxSharedDict, key: string, value: ShdictValue, exptime?: number, flags?: number): LuaMultiReturn<[boolean, string | undefined, boolean]>;
  /** Atomic add; creates the key from `init` (with `initTtl`) when missing. */
  incr(this: NgxSharedDict, key: string, value: number, init?: number, initTtl?: number): LuaMultiReturn<[number | undefined, string | undefined, boolean]>;
  delete(this: NgxSharedDict, key: string): void;
  expire(this: NgxSharedDict, key: string, exptime: number): LuaMultiReturn<[boolean, string | undefined]>;
  ttl(this: NgxSharedDict, key: string): LuaMultiReturn<[number | undefined, string | undefined]>;
  flush_expired(this: NgxSharedDict, maxCount?: number): number;
  /** Locks the whole zone: never on a hot dict. */
  get_keys(this: NgxSharedDict, maxCount?: number): string[];
  capacity(this: NgxSharedDict): number;
  free_space(this: NgxSharedDict): number;
  lpush(this: NgxSharedDict, key: string, value: string | number): LuaMultiReturn<[number | undefined, string | undefined]>;
  rpush(this: NgxSharedDict, key: string, value: string | number): LuaMultiReturn<[number | undefined, string | undefined]>;
  lpop(this: NgxSharedDict, key: string): LuaMultiReturn<[string | number | undefined, string | undefined]>;
  llen(this: NgxSharedDict, key: string): LuaMultiReturn<[number | undefined, string | undefined]>;
}

/** @noSelf */
interface NgxTimer {
  at(delay: number, callback: (this: void, premature: boolean, ...args: any[]) => void, ...args: any[]): LuaMultiReturn<[true | undefined, string | undefined]>;
  every(delay: number, callback: (this: void, premature: boolean, ...args: any[]) => void, ...args: any[]): LuaMultiReturn<[true | undefined, string | undefined]>;
  running_count(): number;
  pending_count(): number;
}

/** @noSelf */
interface NgxWorker {
  id(): number | undefined;
  pid(): number;
  count(): number;
  exiting(): boolean;
}

/** @noSelf */
interface NgxReq {
  get_method(): string;
  get_headers(maxHeaders?: number, raw?: boolean): LuaTable<string, string | string[]>;
  get_uri_args(maxArgs?: number): LuaTable<string, string | boolean | string[]>;
  read_body(): void;
  get_body_data(): string | undefined;
  get_body_file(): string | undefined;
  start_time(): number;
  set_header(name: string, value: string | number | undefined): void;
}

interface NgxTcpSocket {
  connect(this: NgxTcpSocket, host: string, port: number, options?: { pool?: string; pool_size?: number; backlog?: number }): LuaMultiReturn<[1 | undefined, string | undefined]>;
  sslhandshake(this: NgxTcpSocket, reusedSession: unknown, serverName?: string, sslVerify?: boolean): LuaMultiReturn<[unknown, string | undefined]>;
  send(this: NgxTcpSocket, data: string): LuaMultiReturn<[number | undefined, string | undefined]>;
  /** `*l` reads a line, `*a` until close, a number that many bytes. */
  receive(this: NgxTcpSocket, pattern?: "*l" | "*a" | number): LuaMultiReturn<[string | undefined, string | undefined, string | undefined]>;
  receiveany(this: NgxTcpSocket, max: number): LuaMultiReturn<[string | undefined, string | undefined]>;
  settimeouts(this: NgxTcpSocket, connectMs: number, sendMs: number, readMs: number): void;
  settimeout(this: NgxTcpSocket, ms: number): void;
  setkeepalive(this: NgxTcpSocket, idleMs?: number, poolSize?: number): LuaMultiReturn<[1 | undefined, string | undefined]>;
  getreusedtimes(this: NgxTcpSocket): LuaMultiReturn<[number | undefined, string | undefined]>;
  close(this: NgxTcpSocket): LuaMultiReturn<[1 | undefined, string | undefined]>;
}

interface NgxUdpSocket {
  setpeername(this: NgxUdpSocket, host: string, port: number): LuaMultiReturn<[1 | undefined, string | undefined]>;
  send(this: NgxUdpSocket, data: string): LuaMultiReturn<[1 | undefined, string | undefined]>;
  receive(this: NgxUdpSocket, size?: number): LuaMultiReturn<[string | undefined, string | undefined]>;
  settimeout(this: NgxUdpSocket, ms: number): void;
  close(this: NgxUdpSocket): LuaMultiReturn<[1 | undefined, string | undefined]>;
}

/** @noSelf */
interface NgxSocket {
  tcp(): NgxTcpSocket;
  udp(): NgxUdpSocket;
}

/** @noSelf */
interface NgxConfig {
  prefix(): string;
  subsystem: "http" | "stream";
  ngx_lua_version: number;
  nginx_version: number;
  is_console: boolean;
}

/** Variables used by this project; all are strings when set. */
interface NgxVar {
  uri: string;
  request_uri: string;
  host: string;
  remote_addr: string;
  status: string;
  request_time: string;
  bytes_sent: string;
  request_length: string;
  upstream_addr: string | undefined;
  upstream_status: string | undefined;
  upstream_response_time: string | undefined;
  upstream_connect_time: string | undefined;
  [name: string]: string | undefined;
}

type NgxLogLevel = number & { readonly __ngxLogLevel: unique symbol };

/** @noSelf */
interface Ngx {
  readonly shared: { readonly [name: string]: NgxSharedDict | undefined };
  readonly var: NgxVar;
  readonly header: { [name: string]: string | number | string[] | undefined };
  readonly ctx: { [key: string]: unknown };
  readonly req: NgxReq;
  readonly timer: NgxTimer;
  readonly worker: NgxWorker;
  readonly socket: NgxSocket;
  readonly config: NgxConfig;
  status: number;

  readonly STDERR: NgxLogLevel;
  readonly EMERG: NgxLogLevel;
  readonly ALERT: NgxLogLevel;
  readonly CRIT: NgxLogLevel;
  readonly ERR: NgxLogLevel;
  readonly WARN: NgxLogLevel;
  readonly NOTICE: NgxLogLevel;
  readonly INFO: NgxLogLevel;
  readonly DEBUG: NgxLogLevel;

  readonly OK: 0;
  readonly ERROR: -1;
  readonly HTTP_OK: 200;
  readonly HTTP_BAD_REQUEST: 400;
  readonly HTTP_UNAUTHORIZED: 401;
  readonly HTTP_FORBIDDEN: 403;
  readonly HTTP_NOT_FOUND: 404;
  readonly HTTP_TOO_MANY_REQUESTS: 429;
  readonly HTTP_INTERNAL_SERVER_ERROR: 500;
  readonly HTTP_BAD_GATEWAY: 502;
  readonly HTTP_SERVICE_UNAVAILABLE: 503;

  /** Seconds since the epoch with millisecond precision, cached per event-loop tick. */
  now(): number;
  time(): number;
  update_time(): void;
  today(): string;
  localtime(): string;
  utctime(): string;
  http_time(sec: number): string;
  sleep(seconds: number): void;
  log(level: NgxLogLevel, ...args: (string | number | boolean | undefined)[]): void;
  say(...args: (string | number)[]): LuaMultiReturn<[1 | undefined, string | undefined]>;
  print(...args: (string | number)[]): LuaMultiReturn<[1 | undefined, string | undefined]>;
  flush(wait?: boolean): void;
  exit(status: number): never;
  eof(): void;
  get_phase(): string;
  encode_base64(s: string, noPadding?: boolean): string;
  decode_base64(s: string): string | undefined;
  md5(s: string): string;
  sha1_bin(s: string): string;
  hmac_sha1(key: string, s: string): string;
  crc32_short(s: string): number;
  escape_uri(s: string): string;
  unescape_uri(s: string): string;
  quote_sql_str(s: string): string;
}

declare const ngx: Ngx;

declare module "ngx.balancer" {
  /** Selects the peer for this try; returns ok, err. */
  export function set_current_peer(this: void, host: string, port: number): LuaMultiReturn<[boolean | undefined, string | undefined]>;
  export function set_more_tries(this: void, count: number): LuaMultiReturn<[boolean | undefined, string | undefined]>;
  /** "failed" or "next" and the status code of the previous try, nil on the first try. */
  export function get_last_failure(this: void): LuaMultiReturn<["failed" | "next" | undefined, number | undefined]>;
  export function set_timeouts(this: void, connect?: number, send?: number, read?: number): LuaMultiReturn<[boolean | undefined, string | undefined]>;
}

declare module "ngx.process" {
  export function type(this: void): "master" | "worker" | "single" | "signaller" | "privileged agent";
  export function get_master_pid(this: void): number | undefined;
  export function enable_privileged_agent(this: void, connections?: number): LuaMultiReturn<[boolean | undefined, string | undefined]>;
}

declare module "cjson.safe" {
  /** Returns nil and a message instead of throwing on bad input. */
  export function decode(this: void, text: string): LuaMultiReturn<[unknown, string | undefined]>;
  export function encode(this: void, value: unknown): LuaMultiReturn<[string | undefined, string | undefined]>;
  export function encode_empty_table_as_object(this: void, on: boolean): void;
  export function encode_escape_forward_slash(this: void, on: boolean): void;
  export const empty_array: unknown;
  export const array_mt: unknown;
}

declare module "table.new" {
  function tableNew(this: void, narr: number, nrec: number): any;
  export = tableNew;
}

declare module "table.clear" {
  function tableClear(this: void, t: object): void;
  export = tableClear;
}

declare module "resty.core.base" {
  /**
   * The current request's ngx_http_request_t pointer (a cdata pointer from thread.exdata on
   * OpenResty's LuaJIT, compiled by the JIT), undefined outside a request.
   */
  export function get_request(this: void): object | undefined;
}
