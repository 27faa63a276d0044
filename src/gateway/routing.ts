// Which configured route a request belongs to, resolved once per phase call.
import { matchRoute } from "../metrics/route_match";
import { GatewayState, RouteRuntime } from "./state";

/**
 * `routeName` names the route when the location serves exactly one (cheapest); without it
 * (or when the name is unknown) the request path is matched against the config's routes.
 */
export function resolveRoute(s: GatewayState, routeName: string | undefined): RouteRuntime {
  if (routeName !== undefined) {
    const named: RouteRuntime | undefined = s.routes.get(routeName);
    if (named !== undefined) return named;
  }
  const matched = matchRoute(s.matcher, ngx.var.uri);
  return matched === undefined ? s.unmatched : s.routes.get(matched.name);
}
