// Consumer keys for rate limits, from request facts the shell has already read (a header value,
// a query argument, the client address, the Authorization header). Bounded work: values longer
// than MAX_KEY_LENGTH and tokens longer than MAX_TOKEN_LENGTH are refused, not truncated.
//
// JWT claims are read WITHOUT verifying the token's signature: anyone can put any claim in an
// unsigned or forged token. That is fine for choosing a rate-limit bucket (a forger only picks
// which bucket they are counted in) and never fine for authorization.
import * as cjson from "cjson.safe";

export const MAX_KEY_LENGTH = 256;
export const MAX_TOKEN_LENGTH = 4096;

/** A header as ngx.req.get_headers gives it: a string, or a list when repeated (the first counts). */
export function fromHeader(value: string | string[] | undefined): LuaMultiReturn<[string | undefined, string | undefined]> {
  let v: unknown = value;
  if (type(v) === "table") v = (v as string[])[0];
  if (type(v) !== "string" || (v as string).length === 0) return $multi(undefined, "missing");
  if ((v as string).length > MAX_KEY_LENGTH) return $multi(undefined, "too long");
  return $multi(v as string, undefined);
}

/** A query argument as ngx.req.get_uri_args gives it (true for a bare `?name`, a list when repeated). */
export function fromArg(value: string | boolean | string[] | undefined): LuaMultiReturn<[string | undefined, string | undefined]> {
  if (value === true) return $multi(undefined, "missing");
  return fromHeader(value as string | string[] | undefined);
}

/** The client address (ngx.var.remote_addr, or a trusted X-Forwarded-For hop the shell chose). */
export function fromAddress(addr: string | undefined): LuaMultiReturn<[string | undefined, string | undefined]> {
  return fromHeader(addr);
}

// base64url alphabet -> 6-bit values, built once.
const SIXBITS = new LuaTable<number, number>();
{
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (const i of $range(1, 64)) SIXBITS.set(string.byte(alphabet, i), i - 1);
  SIXBITS.set(string.byte("+"), 62); // tolerate standard base64 too
  SIXBITS.set(string.byte("/"), 63);
}

/** Decodes unpadded (or padded) base64url; undefined on a character outside the alphabet. */
export function decodeBase64Url(s: string): string | undefined {
  let n = s.length;
  while (n > 0 && string.byte(s, n) === 61) n--; // '=' padding
  if (n % 4 === 1) return undefined;
  const out = new LuaTable<number, string>();
  let count = 0;
  let acc = 0;
  let bits = 0;
  for (const i of $range(1, n)) {
    const v = SIXBITS.get(string.byte(s, i));
    if (v === undefined) return undefined;
    acc = (acc % 65536) * 64 + v;
    bits = bits + 6;
    if (bits >= 8) {
      bits = bits - 8;
      const p = 2 ** bits;
      count++;
      out.set(count, string.char(math.floor(acc / p) % 256));
      acc = acc % p;
    }
  }
  return table.concat(out as unknown as string[]);
}

/**
 * The value of `claim` in the payload of a bearer JWT in an Authorization header value
 * ("Bearer <header>.<payload>.<signature>"). The signature is NOT verified (see above).
 * String and number claims give a key; anything else is refused.
 */
export function fromJwtClaim(authorization: string | string[] | undefined, claim: string): LuaMultiReturn<[string | undefined, string | undefined]> {
  let auth: unknown = authorization;
  if (type(auth) === "table") auth = (auth as string[])[0];
  if (type(auth) !== "string") return $multi(undefined, "missing");
  if ((auth as string).length > MAX_TOKEN_LENGTH + 7) return $multi(undefined, "token too long");
  const [token] = string.match(auth as string, "^[Bb][Ee][Aa][Rr][Ee][Rr]%s+([%w%-_]+%.[%w%-_]+%.[%w%-_=]*)%s*$");
  if (token === undefined) return $multi(undefined, "not a bearer JWT");
  const [payload] = string.match(token, "^[^.]+%.([^.]+)%.");
  if (payload === undefined) return $multi(undefined, "not a bearer JWT");
  const json = decodeBase64Url(payload);
  if (json === undefined) return $multi(undefined, "bad base64url payload");
  const [doc] = cjson.decode(json);
  if (type(doc) !== "table") return $multi(undefined, "payload is not a JSON object");
  const v = (doc as LuaTable<string, unknown>).get(claim);
  const t = type(v);
  if (t === "string") return fromHeader(v as string);
  if (t === "number") return $multi(tostring(v), undefined);
  return $multi(undefined, "claim missing");
}
