// IP literal checks for peer hosts: the balancer phase cannot resolve host names per request.

function isIPv4(s: string): boolean {
  const [a, b, c, d] = string.match(s, "^(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)$");
  if (a === undefined) return false;
  return tonumber(a)! <= 255 && tonumber(b)! <= 255 && tonumber(c)! <= 255 && tonumber(d)! <= 255;
}

/** Counts the ":"-separated groups of `s` (no "::" inside), each 1-4 hex digits; -1 if bad. */
function hexGroups(s: string): number {
  if (s === "") return 0;
  let count = 0;
  for (const [group] of string.gmatch(s + ":", "([^:]*):")) {
    if (string.match(group, "^%x%x?%x?%x?$")[0] === undefined) return -1;
    count++;
  }
  return count;
}

function isIPv6(s: string): boolean {
  if (string.match(s, "^[%x:.]+$")[0] === undefined || string.find(s, ":", 1, true)[0] === undefined) return false;
  // An IPv4 tail ("::ffff:10.0.0.1") counts as two groups.
  let head = s;
  let extra = 0;
  const [prefix, v4] = string.match(s, "^(.*:)([%d.]+)$");
  if (v4 !== undefined && string.find(v4, ".", 1, true)[0] !== undefined) {
    if (!isIPv4(v4)) return false;
    head = string.sub(prefix!, -2) === "::" ? prefix! : string.sub(prefix!, 1, -2);
    extra = 2;
  } else if (string.find(s, ".", 1, true)[0] !== undefined) {
    return false;
  }
  const [double] = string.find(head, "::", 1, true);
  if (double === undefined) {
    return hexGroups(head) + extra === 8;
  }
  if (string.find(head, "::", double + 1, true)[0] !== undefined) return false;
  const left = hexGroups(string.sub(head, 1, double - 1));
  const right = hexGroups(string.sub(head, double + 2));
  return left >= 0 && right >= 0 && left + right + extra <= 7;
}

/** True for an IPv4 or IPv6 literal (without brackets). */
export function isIpLiteral(s: string): boolean {
  return isIPv4(s) || isIPv6(s);
}
