// URLs for the HTTP client and the actuators: RFC 3986 percent-encoding (as SigV4 and the cloud APIs
// expect it: everything but A-Z a-z 0-9 - . _ ~ is encoded, in uppercase hex), query strings
// as ordered lists of pairs (keys may repeat), and splitting an http(s) URL.

/** A query parameter: [name, value], both unencoded. */
export type QueryPair = [string, string];

export interface ParsedUrl {
  scheme: "http" | "https";
  /** Host name or IP literal, without brackets or port. */
  host: string;
  port: number;
  /** The Host header value: host, plus ":port" when the port is not the scheme's default. */
  authority: string;
  /** The path as written in the URL (still percent-encoded), "/" when empty. */
  path: string;
  /** Decoded query parameters, in their order. */
  query: QueryPair[];
  /** The query string exactly as written (after "?"), "" when there is none. */
  rawQuery: string;
}

const ENCODED = new LuaTable<string, string>();
const DECODED = new LuaTable<string, string>();
for (const i of $range(0, 255)) {
  ENCODED.set(string.char(i), string.format("%%%02X", i));
  DECODED.set(string.format("%02x", i), string.char(i));
  DECODED.set(string.format("%02X", i), string.char(i));
}

// Lua's %w is ASCII-only in LuaJIT (its own character table, not the C locale).
const UNRESERVED_COMPLEMENT = "[^%w%-%._~]";
const PATH_COMPLEMENT = "[^%w%-%._~/]";

/** Percent-encodes every byte outside RFC 3986's unreserved set (UTF-8 bytes one by one). */
export function encodeComponent(s: string): string {
  return string.gsub(s, UNRESERVED_COMPLEMENT, ENCODED as unknown as Record<string, string>)[0];
}

/** As encodeComponent, but keeps "/" (for a whole path). */
export function encodePath(s: string): string {
  return string.gsub(s, PATH_COMPLEMENT, ENCODED as unknown as Record<string, string>)[0];
}

/** Decodes %XX escapes; a "%" not followed by two hex digits is kept as it is. "+" stays "+". */
export function decodePercent(s: string): string {
  return string.gsub(s, "%%(%x%x)", DECODED as unknown as Record<string, string>)[0];
}

/** "a=1&b=x%20y": each name and value encoded, in the given order. */
export function buildQuery(query: QueryPair[]): string {
  const parts: string[] = [];
  for (const pair of query) parts.push(`${encodeComponent(pair[0])}=${encodeComponent(pair[1])}`);
  return parts.join("&");
}

/** Splits "a=1&b&c=x%20y" into decoded pairs; a name without "=" gets the value "". */
export function parseQuery(qs: string): QueryPair[] {
  const out: QueryPair[] = [];
  for (const [part] of string.gmatch(qs, "[^&]+")) {
    const [eq] = string.find(part, "=", 1, true);
    if (eq === undefined) out.push([decodePercent(part), ""]);
    else out.push([decodePercent(string.sub(part, 1, eq - 1)), decodePercent(string.sub(part, eq + 1))]);
  }
  return out;
}

/** Splits an absolute http:// or https:// URL; nil and a message for anything else. */
export function parseUrl(url: string): LuaMultiReturn<[ParsedUrl | undefined, string | undefined]> {
  const [scheme, rest] = string.match(url, "^(https?)://(.*)$");
  if (scheme === undefined || rest === undefined) return $multi(undefined, "expected an http:// or https:// URL");
  const [fragmentAt] = string.find(rest, "#", 1, true);
  const noFragment = fragmentAt === undefined ? rest : string.sub(rest, 1, fragmentAt - 1);
  const [authority, pathAndQuery] = string.match(noFragment, "^([^/?]*)(.*)$");
  if (authority === undefined || authority === "") return $multi(undefined, "the URL has no host");
  if (string.find(authority, "@", 1, true)[0] !== undefined) return $multi(undefined, "credentials in the URL are not supported");
  let host: string | undefined;
  let portText: string | undefined;
  if (string.sub(authority, 1, 1) === "[") {
    [host, portText] = string.match(authority, "^%[([%x:.]+)%]:?(%d*)$");
  } else {
    [host, portText] = string.match(authority, "^([^:]+):?(%d*)$");
  }
  if (host === undefined) return $multi(undefined, `bad host in the URL: ${authority}`);
  const defaultPort = scheme === "https" ? 443 : 80;
  const port = portText === undefined || portText === "" ? defaultPort : tonumber(portText)!;
  if (port < 1 || port > 65535) return $multi(undefined, `bad port in the URL: ${portText}`);
  const [q] = string.find(pathAndQuery!, "?", 1, true);
  let path = q === undefined ? pathAndQuery! : string.sub(pathAndQuery!, 1, q - 1);
  const rawQuery = q === undefined ? "" : string.sub(pathAndQuery!, q + 1);
  const query = q === undefined ? [] : parseQuery(rawQuery);
  if (path === "") path = "/";
  const bracketed = string.sub(authority, 1, 1) === "[" ? `[${host}]` : host;
  return $multi(
    {
      scheme: scheme as "http" | "https",
      host,
      port,
      authority: port === defaultPort ? bracketed : `${bracketed}:${port}`,
      path,
      query,
      rawQuery,
    },
    undefined,
  );
}
