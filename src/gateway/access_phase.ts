// access_by_lua: resolves the request's route once and keeps it in the request context for
// the log phase. The admission checks and in-flight accounting run here.
import { getState } from "./state";
import { resolveRoute } from "./routing";
import { RequestContext } from "./request_context";
import { admit } from "./admission";

export function access(routeName?: string): void {
  const s = getState();
  if (s === undefined) return;
  // The balancer's fields are named here so the table is created at its final size.
  const ctx: RequestContext = { route: resolveRoute(s, routeName), pick: undefined, picker: undefined, pickedAt: undefined };
  ngx.ctx.autoscale = ctx;
  admit(ctx);
}
