// access_by_lua: resolves the request's route once and keeps it in the request context for
// the log phase. The admission checks and in-flight accounting run here.
import { getState } from "./state";
import { resolveRoute } from "./routing";
import { newContext } from "./request_context";
import { admit } from "./admission";
import { inflightStarted } from "./metrics";

export function access(routeName?: string): void {
  const s = getState();
  if (s === undefined) return;
  const route = resolveRoute(s, routeName);
  const ctx = newContext(route);
  if (s.config.metrics.enabled) ctx.startSecond = inflightStarted(s, route);
  admit(ctx);
}
