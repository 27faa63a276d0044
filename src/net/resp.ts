// The Redis wire protocol (RESP2), the pure half: encoding commands. Replies are read from the
// socket by redis.ts.

/** One command as a RESP array of bulk strings (binary safe: lengths, not delimiters). */
export function encodeCommand(args: (string | number)[]): string {
  const parts: string[] = [`*${args.length}\r\n`];
  for (const a of args) {
    const s = type(a) === "number" ? formatNumber(a as number) : (a as string);
    parts.push(`$${s.length}\r\n${s}\r\n`);
  }
  return table.concat(parts);
}

/** Integers without a decimal point or exponent (Redis rejects "1e+15" and "3.0" as integers). */
export function formatNumber(n: number): string {
  if (math.floor(n) === n && n > -1e18 && n < 1e18) return string.format("%d", n);
  return string.format("%.17g", n);
}
