// access_by_lua: resolves the request's route once and keeps it in the request context for
// the log phase. The admission checks and in-flight accounting run here.
import { getState } from "./state";
import { resolveRoute } from "./routing";
import { RequestContext } from "./request_context";
import { inflightStarted } from "./metrics";
import { admit } from "./admission";

export function access(routeName?: string): void {
  const s = getState();
  if (s === undefined) return;
  const route = resolveRoute(s, routeName);
  const ctx: RequestContext = { route, startSecond: inflightStarted(s, route) };
  ngx.ctx.autoscale = ctx;
  admit(ctx);
}
