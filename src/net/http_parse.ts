// Pure parsing of HTTP/1.1 response heads, for the cosocket client.

/** "HTTP/1.1 200 OK" → 200, or undefined when the line is not a status line. */
export function parseStatusLine(line: string): number | undefined {
  const code = string.match(line, "^HTTP/1%.[01] (%d%d%d)")[0];
  return code === undefined ? undefined : tonumber(code);
}

/** "Content-Type: text/plain" → ["content-type", "text/plain"] (lower-cased name, trimmed). */
export function parseHeaderLine(line: string): LuaMultiReturn<[string | undefined, string | undefined]> {
  const [name, value] = string.match(line, "^([^:%s]+)%s*:%s*(.-)%s*$");
  if (name === undefined) return $multi(undefined, undefined);
  return $multi(string.lower(name), value);
}

/** The size of a chunk from its size line ("1a; ext=1" → 26), undefined when malformed. */
export function parseChunkSize(line: string): number | undefined {
  const hex = string.match(line, "^%s*(%x+)")[0];
  return hex === undefined ? undefined : tonumber(hex, 16);
}

export interface RequestHead {
  method: string;
  path: string;
  authority: string;
  headers?: LuaTable<string, string>;
  bodyLength: number;
}

/** Serializes a request head; a Content-Length is always sent for a body. */
export function buildRequestHead(r: RequestHead): string {
  const lines: string[] = [`${r.method} ${r.path} HTTP/1.1`, `Host: ${r.authority}`];
  let hasLength = false;
  let hasAgent = false;
  if (r.headers !== undefined) {
    for (const [name, value] of r.headers) {
      // CR or LF in a header would let a value smuggle another header or a request.
      if (string.find(name, "[\r\n:]")[0] !== undefined || string.find(value, "[\r\n]")[0] !== undefined) continue;
      const lower = string.lower(name);
      if (lower === "host") continue;
      if (lower === "content-length") hasLength = true;
      if (lower === "user-agent") hasAgent = true;
      lines.push(`${name}: ${value}`);
    }
  }
  if (!hasAgent) lines.push("User-Agent: lua-resty-autoscale");
  if (!hasLength && (r.bodyLength > 0 || r.method === "POST" || r.method === "PUT" || r.method === "PATCH")) {
    lines.push(`Content-Length: ${r.bodyLength}`);
  }
  return table.concat(lines, "\r\n") + "\r\n\r\n";
}
