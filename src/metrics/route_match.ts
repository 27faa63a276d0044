// Maps a request path to a configured route: exact paths first, then the longest prefix.
// Built once per config; a lookup is one table access plus one comparison per prefix route.
import { RouteConfig } from "../config/config";

export interface RouteMatcher {
  exact: LuaTable<string, RouteConfig>;
  /** Prefix routes, longest prefix first. */
  prefixes: RouteConfig[];
  prefixLengths: number[];
}

export function buildMatcher(routes: RouteConfig[]): RouteMatcher {
  const exact = new LuaTable<string, RouteConfig>();
  const prefixes: RouteConfig[] = [];
  for (const r of routes) {
    if (r.match.exact !== undefined) {
      if (exact.get(r.match.exact) === undefined) exact.set(r.match.exact, r);
    } else {
      prefixes.push(r);
    }
  }
  // Longest prefix wins, as with nginx prefix locations; a stable insertion sort keeps config
  // order between equal lengths (table.sort is not stable).
  for (let i = 1; i < prefixes.length; i++) {
    const r = prefixes[i];
    let j = i - 1;
    while (j >= 0 && prefixes[j].match.prefix!.length < r.match.prefix!.length) {
      prefixes[j + 1] = prefixes[j];
      j--;
    }
    prefixes[j + 1] = r;
  }
  const prefixLengths: number[] = [];
  for (const r of prefixes) prefixLengths.push(r.match.prefix!.length);
  return { exact, prefixes, prefixLengths };
}

/** The route serving `path`, or undefined when none matches (counted as "unmatched"). */
export function matchRoute(m: RouteMatcher, path: string): RouteConfig | undefined {
  const hit = m.exact.get(path);
  if (hit !== undefined) return hit;
  const prefixes = m.prefixes;
  for (let i = 0; i < prefixes.length; i++) {
    const r = prefixes[i];
    if (string.sub(path, 1, m.prefixLengths[i]) === r.match.prefix) return r;
  }
  return undefined;
}
