// access_by_lua: resolves the request's route once and keeps it in the request context for
// the log phase. The admission checks and in-flight accounting run here.
import { getState } from "./state";
import { resolveRoute } from "./routing";
import { RequestContext } from "./request_context";
import { admit } from "./admission";
import { inflightStarted } from "./metrics";

export function access(routeName?: string): void {
  const s = getState();
  if (s === undefined) return;
  const route = resolveRoute(s, routeName);
  // The balancer's and metrics' fields are named here so the table is created at its final size.
  const ctx: RequestContext = {
    route,
    pick: undefined,
    picker: undefined,
    pickedAt: undefined,
    tries: 0,
    startSecond: inflightStarted(s, route),
    peer: undefined,
    peerSecond: undefined,
  };
  ngx.ctx.autoscale = ctx;
  admit(ctx);
}
