// AWS Signature Version 4 (header signing), pure: the time comes in as an argument.
// Steps as AWS documents them: canonical request -> string to sign -> signing key (an HMAC
// chain over date, region, service) -> signature -> Authorization header. Behaviour matches the
// AWS SDK for JavaScript's signer (@smithy/signature-v4), which the integration test checks on
// generated requests:
// - the path is normalised ("." and ".." segments, repeated "/") and percent-encoded once more
//   (every service but S3 signs the double-encoded path; escapePath = false signs it as is);
// - query pairs are encoded (RFC 3986) and sorted by name, then value; a repeated name is kept;
// - header names are lowercased, values trimmed with inner runs of spaces and tabs collapsed;
//   hop-by-hop and proxy-set headers (user-agent, connection, ...) are not signed;
// - the payload hash is x-amz-content-sha256 when the caller set it, else SHA-256 of the body.
import { hmacSha256, sha256Hex } from "../../crypto/sha256";
import { toHex } from "../../crypto/hex";
import { QueryPair, encodeComponent, encodePath, parseUrl } from "../../net/url";

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  /** Present for temporary credentials (STS, instance roles): sent as x-amz-security-token. */
  sessionToken?: string;
}

export interface SigV4Options {
  region: string;
  service: string;
  /** Signing time, seconds since the epoch (UTC). */
  now: number;
  /** Also send x-amz-content-sha256 (S3 requires it; other services accept it). Default false. */
  contentSha256Header?: boolean;
  /** Normalise and encode the path once more before signing (true for all services but S3). */
  escapePath?: boolean;
}

export interface SigV4Request {
  method: string;
  /** The Host header value (host, or host:port for a non-default port). */
  host: string;
  /** The path as sent on the wire (already percent-encoded where needed). */
  path: string;
  /** Unencoded query pairs, in any order. */
  query: QueryPair[];
  /** Header names in any case. host, authorization, x-amz-date and date are set by the signer. */
  headers: LuaTable<string, string>;
  body?: string;
}

export interface SignedRequest {
  /** Every header to send: the caller's (minus the ones the signer owns) plus the signer's. */
  headers: LuaTable<string, string>;
  authorization: string;
  amzDate: string;
  signature: string;
  signedHeaders: string;
  canonicalRequest: string;
  stringToSign: string;
}

export const ALGORITHM = "AWS4-HMAC-SHA256";
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// Headers the signer sets itself: a caller's copy is dropped.
const GENERATED = new LuaTable<string, boolean>();
for (const name of ["authorization", "x-amz-date", "date", "host"]) GENERATED.set(name, true);

// Headers that intermediaries may add, drop or rewrite: signing them would break the signature.
const UNSIGNABLE = new LuaTable<string, boolean>();
for (const name of [
  "authorization",
  "cache-control",
  "connection",
  "expect",
  "from",
  "keep-alive",
  "max-forwards",
  "pragma",
  "referer",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "user-agent",
  "x-amzn-trace-id",
]) {
  UNSIGNABLE.set(name, true);
}

function isSignable(lowerName: string): boolean {
  if (UNSIGNABLE.get(lowerName)) return false;
  return string.sub(lowerName, 1, 6) !== "proxy-" && string.sub(lowerName, 1, 4) !== "sec-";
}

/** A header value as SigV4 signs it: line breaks become spaces, runs of blanks one space, trimmed. */
export function canonicalHeaderValue(v: string): string {
  let s = string.gsub(v, "[\r\n]", " ")[0];
  s = string.gsub(s, "[ \t]+", " ")[0];
  s = string.gsub(s, "^ ", "")[0];
  return string.gsub(s, " $", "")[0];
}

/** "20150830T123600Z" for the given epoch seconds. */
export function amzDate(now: number): string {
  return os.date("!%Y%m%dT%H%M%SZ", math.floor(now)) as string;
}

/** The canonical URI: "." and ".." resolved, empty segments dropped, then percent-encoded. */
export function canonicalPath(path: string, escape: boolean): string {
  if (!escape) return path;
  const segments: string[] = [];
  for (const [segment] of string.gmatch(path, "[^/]+")) {
    if (segment === ".") continue;
    if (segment === "..") {
      if (segments.length > 0) segments.pop();
    } else {
      segments.push(segment);
    }
  }
  let normalised = segments.join("/");
  if (string.sub(path, 1, 1) === "/") normalised = "/" + normalised;
  if (segments.length > 0 && string.sub(path, -1) === "/") normalised = normalised + "/";
  return encodePath(normalised);
}

interface EncodedPair {
  name: string;
  value: string;
}

function byNameThenValue(this: void, a: EncodedPair, b: EncodedPair): boolean {
  if (a.name !== b.name) return a.name < b.name;
  return a.value < b.value;
}

/** The canonical query string: encoded pairs sorted by name, then by value. */
export function canonicalQuery(query: QueryPair[]): string {
  const encoded: EncodedPair[] = [];
  for (const pair of query) {
    // A presigned URL's own signature is never part of what it signs.
    if (string.lower(pair[0]) === "x-amz-signature") continue;
    encoded.push({ name: encodeComponent(pair[0]), value: encodeComponent(pair[1]) });
  }
  table.sort(encoded, byNameThenValue);
  const parts: string[] = [];
  for (const p of encoded) parts.push(`${p.name}=${p.value}`);
  return parts.join("&");
}

/** The signing key: HMAC chain of "AWS4"+secret over date, region, service, "aws4_request". */
export function signingKey(secret: string, shortDate: string, region: string, service: string): LuaMultiReturn<[string | undefined, string | undefined]> {
  let key: string | undefined = "AWS4" + secret;
  let err: string | undefined;
  for (const part of [shortDate, region, service, "aws4_request"]) {
    [key, err] = hmacSha256(key!, part);
    if (key === undefined) return $multi(undefined, err);
  }
  return $multi(key, undefined);
}

/** Signs a request: returns the headers to send, with Authorization, or nil and a message. */
export function sign(req: SigV4Request, creds: AwsCredentials, opts: SigV4Options): LuaMultiReturn<[SignedRequest | undefined, string | undefined]> {
  if (creds.accessKeyId === "" || creds.secretAccessKey === "") return $multi(undefined, "AWS credentials are empty");
  if (opts.region === "" || opts.service === "") return $multi(undefined, "SigV4 needs a region and a service");
  const date = amzDate(opts.now);
  const shortDate = string.sub(date, 1, 8);
  const scope = `${shortDate}/${opts.region}/${opts.service}/aws4_request`;

  const headers = new LuaTable<string, string>();
  let callerPayloadHash: string | undefined;
  for (const [name, value] of pairs(req.headers)) {
    const lower = string.lower(name);
    if (GENERATED.get(lower)) continue;
    if (lower === "x-amz-content-sha256") callerPayloadHash = value;
    headers.set(name, value);
  }
  headers.set("host", req.host);
  headers.set("x-amz-date", date);
  if (creds.sessionToken !== undefined && creds.sessionToken !== "") headers.set("x-amz-security-token", creds.sessionToken);
  let payloadHash = callerPayloadHash;
  if (payloadHash === undefined) {
    if (req.body === undefined || req.body === "") {
      payloadHash = EMPTY_SHA256;
    } else {
      const [h, err] = sha256Hex(req.body);
      if (h === undefined) return $multi(undefined, err);
      payloadHash = h;
    }
    if (opts.contentSha256Header) headers.set("x-amz-content-sha256", payloadHash);
  }

  // Canonical headers; two names differing only in case are joined with "," (sorted for a
  // stable order).
  const originalNames: string[] = [];
  for (const [name] of pairs(headers)) originalNames.push(name);
  table.sort(originalNames);
  const canonical = new LuaTable<string, string>();
  const names: string[] = [];
  for (const name of originalNames) {
    const lower = string.lower(name);
    if (!isSignable(lower)) continue;
    const value = canonicalHeaderValue(headers.get(name));
    const previous = canonical.get(lower);
    if (previous === undefined) {
      names.push(lower);
      canonical.set(lower, value);
    } else {
      canonical.set(lower, `${previous},${value}`);
    }
  }
  table.sort(names);
  const headerLines: string[] = [];
  for (const name of names) headerLines.push(`${name}:${canonical.get(name)}\n`);
  const signedHeaders = names.join(";");

  const canonicalRequest = [
    req.method,
    canonicalPath(req.path, opts.escapePath ?? true),
    canonicalQuery(req.query),
    headerLines.join(""),
    signedHeaders,
    payloadHash,
  ].join("\n");
  const [requestHash, hashErr] = sha256Hex(canonicalRequest);
  if (requestHash === undefined) return $multi(undefined, hashErr);
  const stringToSign = `${ALGORITHM}\n${date}\n${scope}\n${requestHash}`;
  const [key, keyErr] = signingKey(creds.secretAccessKey, shortDate, opts.region, opts.service);
  if (key === undefined) return $multi(undefined, keyErr);
  const [mac, macErr] = hmacSha256(key, stringToSign);
  if (mac === undefined) return $multi(undefined, macErr);
  const signature = toHex(mac);
  const authorization = `${ALGORITHM} Credential=${creds.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  headers.set("authorization", authorization);
  return $multi({ headers, authorization, amzDate: date, signature, signedHeaders, canonicalRequest, stringToSign }, undefined);
}

/** A request as the actuators describe it (and the HTTP client sends it). */
export interface RequestSpec {
  method: string;
  url: string;
  headers: LuaTable<string, string>;
  body?: string;
}

/** Signs a RequestSpec in place of its headers: returns a new spec with the signed headers. */
export function signSpec(spec: RequestSpec, creds: AwsCredentials, opts: SigV4Options): LuaMultiReturn<[RequestSpec | undefined, string | undefined]> {
  const [url, urlErr] = parseUrl(spec.url);
  if (url === undefined) return $multi(undefined, urlErr);
  const [signed, err] = sign({ method: spec.method, host: url.authority, path: url.path, query: url.query, headers: spec.headers, body: spec.body }, creds, opts);
  if (signed === undefined) return $multi(undefined, err);
  return $multi({ method: spec.method, url: spec.url, headers: signed.headers, body: spec.body }, undefined);
}
