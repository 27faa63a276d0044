// Hex encoding of binary strings (digests, signatures): lowercase, as AWS SigV4, webhook
// signatures and the RFC test vectors print them.

const HEX_OF_BYTE = new LuaTable<string, string>();
const BYTE_OF_HEX = new LuaTable<string, string>();
for (const i of $range(0, 255)) {
  const c = string.char(i);
  const h = string.format("%02x", i);
  HEX_OF_BYTE.set(c, h);
  BYTE_OF_HEX.set(h, c);
  BYTE_OF_HEX.set(string.upper(h), c);
}

/** Lowercase hex of every byte of `s` (a table-driven gsub: no closure, no per-byte format). */
export function toHex(s: string): string {
  return string.gsub(s, ".", HEX_OF_BYTE as unknown as Record<string, string>)[0];
}

/** The bytes a hex string spells (either case); nil and a message for odd length or a non-hex digit. */
export function fromHex(h: string): LuaMultiReturn<[string | undefined, string | undefined]> {
  if (h.length % 2 !== 0) return $multi(undefined, `hex string of odd length ${h.length}`);
  if (string.find(h, "[^%x]")[0] !== undefined) return $multi(undefined, "hex string with a non-hex character");
  // Mixed-case pairs such as "aB" are not in the table: normalise first.
  return $multi(string.gsub(string.lower(h), "..", BYTE_OF_HEX as unknown as Record<string, string>)[0], undefined);
}
