// Splits an http(s) URL into the parts a socket client needs.

export interface ParsedUrl {
  scheme: "http" | "https";
  host: string;
  port: number;
  /** Path with query string, at least "/". */
  path: string;
  /** The Host header value (host, plus the port when it is not the scheme's default). */
  authority: string;
}

export function parseUrl(url: string): LuaMultiReturn<[ParsedUrl | undefined, string | undefined]> {
  const [scheme, rest] = string.match(url, "^(https?)://(.+)$");
  if (scheme === undefined || rest === undefined) return $multi(undefined, `unsupported URL (expected http:// or https://): ${url}`);
  let [hostport, path] = string.match(rest, "^([^/?#]+)([^#]*)");
  if (hostport === undefined) return $multi(undefined, `URL has no host: ${url}`);
  if (path === undefined || path === "") path = "/";
  else if (string.sub(path, 1, 1) === "?") path = "/" + path;
  let host: string | undefined;
  let portText: string | undefined;
  if (string.sub(hostport, 1, 1) === "[") {
    [host, portText] = string.match(hostport, "^%[([^%]]+)%]:?(%d*)$");
  } else {
    [host, portText] = string.match(hostport, "^([^:]+):?(%d*)$");
  }
  if (host === undefined) return $multi(undefined, `URL has a bad host or port: ${url}`);
  const defaultPort = scheme === "https" ? 443 : 80;
  const port = portText === undefined || portText === "" ? defaultPort : tonumber(portText)!;
  if (port < 1 || port > 65535) return $multi(undefined, `URL has a port out of range: ${url}`);
  return $multi({ scheme: scheme as "http" | "https", host, port, path, authority: hostport }, undefined);
}
