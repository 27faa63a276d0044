// access_by_lua: resolves the request's route once and keeps it in the request context for
// the log phase. The admission checks, in-flight accounting and the wait for a pool scaled to
// zero run here.
import { getState } from "./state";
import { resolveRoute } from "./routing";
import { newContext } from "./request_context";
import { admit } from "./admission";
import { inflightStarted } from "./metrics";
import { holdForPeer } from "./control/activation";

export function access(routeName?: string): void {
  const s = getState();
  if (s === undefined) return;
  const route = resolveRoute(s, routeName);
  const ctx = newContext(route);
  if (s.config.metrics.enabled) ctx.startSecond = inflightStarted(s, route);
  admit(ctx);
  // A pool scaled to zero: the request waits for its first replica (counted in flight above, so it wakes the pool).
  holdForPeer(route);
}
