// A small HTTP/1.1 client on nginx cosockets, usable from timers and content handlers.
// TLS uses the certificates trusted by `lua_ssl_trusted_certificate`; verification is on unless
// a request turns it off. Connections are kept alive in nginx's cosocket pool.
import { buildRequestHead, parseChunkSize, parseHeaderLine, parseStatusLine } from "./http_parse";
import { parseUrl } from "./url";

export interface HttpRequest {
  method: string;
  url: string;
  headers?: LuaTable<string, string>;
  body?: string;
  /** One timeout for connect, each send and each read, in milliseconds (default 5000). */
  timeoutMs?: number;
  /** Largest body accepted (default 1 MiB): a larger answer is an error, not a memory hog. */
  maxBodyBytes?: number;
  /** Verify the server certificate and name (default true) against lua_ssl_trusted_certificate. */
  sslVerify?: boolean;
  /** TLS server name (SNI and the name checked in the certificate); default: the URL's host. */
  serverName?: string;
}

export interface HttpResponse {
  status: number;
  headers: LuaTable<string, string>;
  body: string;
}

const MAX_HEADERS = 100;

function readBody(sock: NgxTcpSocket, headers: LuaTable<string, string>, limit: number): LuaMultiReturn<[string | undefined, string | undefined, boolean]> {
  const te = headers.get("transfer-encoding");
  if (te !== undefined && string.find(string.lower(te), "chunked", 1, true)[0] !== undefined) {
    const parts: string[] = [];
    let size = 0;
    while (true) {
      const [line, err] = sock.receive("*l");
      if (line === undefined) return $multi(undefined, `reading a chunk size: ${err}`, false);
      const n = parseChunkSize(line);
      if (n === undefined) return $multi(undefined, `malformed chunk size line "${line}"`, false);
      if (n === 0) {
        // Trailer section: read up to the empty line.
        while (true) {
          const [t, terr] = sock.receive("*l");
          if (t === undefined) return $multi(undefined, `reading the trailer: ${terr}`, false);
          if (t === "") break;
        }
        return $multi(table.concat(parts), undefined, true);
      }
      size += n;
      if (size > limit) return $multi(undefined, `response body exceeds ${limit} bytes`, false);
      const [data, derr] = sock.receive(n);
      if (data === undefined) return $multi(undefined, `reading a chunk: ${derr}`, false);
      parts.push(data);
      const [crlf, cerr] = sock.receive(2);
      if (crlf !== "\r\n") return $multi(undefined, `chunk not followed by CRLF (${cerr ?? "bad framing"})`, false);
    }
  }
  const cl = headers.get("content-length");
  if (cl !== undefined) {
    const n = tonumber(cl);
    if (n === undefined || n < 0 || math.floor(n) !== n) return $multi(undefined, `bad Content-Length "${cl}"`, false);
    if (n > limit) return $multi(undefined, `response body of ${n} bytes exceeds ${limit} bytes`, false);
    if (n === 0) return $multi("", undefined, true);
    const [data, err] = sock.receive(n);
    if (data === undefined) return $multi(undefined, `reading the body: ${err}`, false);
    return $multi(data, undefined, true);
  }
  // No length: the body runs to the end of the connection.
  const parts: string[] = [];
  let size = 0;
  while (true) {
    const [data, err, partial] = sock.receive(65536);
    const piece = data ?? partial;
    if (piece !== undefined && piece !== "") {
      size += piece.length;
      if (size > limit) return $multi(undefined, `response body exceeds ${limit} bytes`, false);
      parts.push(piece);
    }
    if (data === undefined) {
      if (err === "closed") return $multi(table.concat(parts), undefined, false);
      return $multi(undefined, `reading the body: ${err}`, false);
    }
  }
}

/** Sends one request and reads the whole response. Returns the response or an error message. */
export function request(req: HttpRequest): LuaMultiReturn<[HttpResponse | undefined, string | undefined]> {
  const [u, uerr] = parseUrl(req.url);
  if (u === undefined) return $multi(undefined, uerr);
  const timeout = req.timeoutMs ?? 5000;
  const limit = req.maxBodyBytes ?? 1048576;
  const sock = ngx.socket.tcp();
  sock.settimeouts(timeout, timeout, timeout);
  const verify = req.sslVerify ?? true;
  const serverName = req.serverName ?? u.host;
  // Kept-alive TLS connections are only reused for the same name and verification setting.
  const pool = u.scheme === "https" ? `https:${u.host}:${u.port}:${serverName}:${verify ? "v" : "nv"}` : `http:${u.host}:${u.port}`;
  // nginx's resolver does not read /etc/hosts; "localhost" is loopback by definition (RFC 6761).
  const address = u.host === "localhost" ? "127.0.0.1" : u.host;
  const [ok, cerr] = sock.connect(address, u.port, { pool });
  if (ok === undefined) return $multi(undefined, `connect to ${u.host}:${u.port} failed: ${cerr}`);
  if (u.scheme === "https") {
    const [reused] = sock.getreusedtimes();
    if (reused === 0) {
      const [session, serr] = sock.sslhandshake(undefined, serverName, verify);
      if (session === undefined) {
        sock.close();
        const hint = verify && serr !== undefined && string.find(serr, "certificate", 1, true)[0] !== undefined ? " (is its CA in lua_ssl_trusted_certificate? see tls.ca_file)" : "";
        return $multi(undefined, `TLS handshake with ${serverName} (${u.host}:${u.port}) failed: ${serr}${hint}`);
      }
    }
  }
  const body = req.body ?? "";
  const head = buildRequestHead({ method: req.method, path: u.rawQuery === "" ? u.path : `${u.path}?${u.rawQuery}`, authority: u.authority, headers: req.headers, bodyLength: body.length });
  const [sent, serr] = sock.send(head + body);
  if (sent === undefined) {
    sock.close();
    return $multi(undefined, `sending to ${u.host}:${u.port} failed: ${serr}`);
  }
  const [statusLine, rerr] = sock.receive("*l");
  if (statusLine === undefined) {
    sock.close();
    return $multi(undefined, `reading the status line from ${u.host}:${u.port} failed: ${rerr}`);
  }
  const status = parseStatusLine(statusLine);
  if (status === undefined) {
    sock.close();
    return $multi(undefined, `malformed status line from ${u.host}:${u.port}: "${string.sub(statusLine, 1, 80)}"`);
  }
  const headers = new LuaTable<string, string>();
  let count = 0;
  while (true) {
    const [line, herr] = sock.receive("*l");
    if (line === undefined) {
      sock.close();
      return $multi(undefined, `reading headers from ${u.host}:${u.port} failed: ${herr}`);
    }
    if (line === "") break;
    count++;
    if (count > MAX_HEADERS) {
      sock.close();
      return $multi(undefined, `more than ${MAX_HEADERS} response headers from ${u.host}:${u.port}`);
    }
    const [name, value] = parseHeaderLine(line);
    if (name !== undefined) {
      const prev = headers.get(name);
      headers.set(name, prev === undefined ? value! : `${prev}, ${value}`);
    }
  }
  let respBody = "";
  let reusable = false;
  if (req.method !== "HEAD" && status !== 204 && status !== 304) {
    const [b, berr, framed] = readBody(sock, headers, limit);
    if (b === undefined) {
      sock.close();
      return $multi(undefined, `${berr} (from ${u.host}:${u.port})`);
    }
    respBody = b;
    reusable = framed;
  } else {
    reusable = true;
  }
  const conn = headers.get("connection");
  if (reusable && (conn === undefined || string.lower(conn) !== "close")) {
    sock.setkeepalive(60000, 16);
  } else {
    sock.close();
  }
  return $multi({ status, headers, body: respBody }, undefined);
}
