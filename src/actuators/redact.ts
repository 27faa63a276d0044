// Removes secrets from any text before it is logged: the exact values of the secrets in use
// (tokens, keys, HMAC secrets), and anything shaped like a credential (bearer tokens, SigV4
// signatures and credentials, session tokens, webhook signatures, JSON fields named like a
// secret), so even a secret the caller did not list does not reach the error log.

export const REDACTED = "[REDACTED]";

// [pattern, replacement]: Lua patterns, applied in order.
const SHAPES: [string, string][] = [
  ["([Bb][Ee][Aa][Rr][Ee][Rr]%s+)[%w%-%._~%+/]+=*", `%1${REDACTED}`],
  ["(Signature=)%x+", `%1${REDACTED}`],
  ["(Credential=)[%w]+", `%1${REDACTED}`],
  ["([Xx]%-[Aa]mz%-[Ss]ecurity%-[Tt]oken[\"']?%s*[:=]%s*[\"']?)[^%s\"',;&]+", `%1${REDACTED}`],
  ["(v1=)%x+", `%1${REDACTED}`],
  ["(\"[%w_%-]*[Tt][Oo][Kk][Ee][Nn][%w_%-]*\"%s*:%s*\")[^\"]*", `%1${REDACTED}`],
  ["(\"[%w_%-]*[Ss][Ee][Cc][Rr][Ee][Tt][%w_%-]*\"%s*:%s*\")[^\"]*", `%1${REDACTED}`],
  ["(\"[%w_%-]*[Pp][Aa][Ss][Ss][Ww][Oo][Rr][Dd][%w_%-]*\"%s*:%s*\")[^\"]*", `%1${REDACTED}`],
  ["([%?&][%w_]*[Tt][Oo][Kk][Ee][Nn]=)[^&%s]+", `%1${REDACTED}`],
];

/** Replaces every occurrence of `needle` (plain text, not a pattern). */
function replacePlain(s: string, needle: string): string {
  let out = s;
  let from = 1;
  for (;;) {
    const [i, j] = string.find(out, needle, from, true);
    if (i === undefined) return out;
    out = string.sub(out, 1, i - 1) + REDACTED + string.sub(out, j! + 1);
    from = i + REDACTED.length;
  }
}

/**
 * `text` with every listed secret value and every credential-shaped substring replaced by
 * [REDACTED]. Values shorter than 4 characters are not replaced (they would erase ordinary
 * text and are no secret worth the name).
 */
export function redact(text: string, secrets?: string[]): string {
  let s = text;
  if (secrets !== undefined) {
    for (const secret of secrets) {
      if (secret.length >= 4) s = replacePlain(s, secret);
    }
  }
  for (const shape of SHAPES) s = string.gsub(s, shape[0], shape[1])[0];
  return s;
}
