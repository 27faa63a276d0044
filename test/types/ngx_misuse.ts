// Misuses of the OpenResty API that must not compile (src/ngx/ngx.d.ts, issue 2: "typed so that
// misuse is a compile error"). Every marked line is an error today; if a declaration is loosened
// so that one compiles, its @ts-expect-error is unused and `npm run typecheck` fails.
import * as balancer from "ngx.balancer";
import * as cjson from "cjson.safe";

export function misuses(): void {
  const maybe = ngx.shared.autoscale_metrics;
  // @ts-expect-error a dict is missing when nginx.conf has no lua_shared_dict of that name
  maybe.get("k");
  if (maybe === undefined) return;
  const dict = maybe;
  // @ts-expect-error keys are strings
  dict.get(1);
  // @ts-expect-error incr adds a number
  dict.incr("k", "1");
  // @ts-expect-error values are strings, numbers or booleans, not tables
  dict.set("k", { a: 1 });
  // @ts-expect-error a method taken off the dict loses its self (dict:get in Lua)
  const get: (this: void, key: string) => unknown = dict.get;
  // @ts-expect-error log levels are ngx.ERR, ngx.WARN, ..., not bare numbers
  ngx.log(4, "message");
  // @ts-expect-error ngx.var values are strings (or nil), never numbers
  const status: number = ngx.var.status;
  // @ts-expect-error an upstream variable is nil before any try
  const upstream: string = ngx.var.upstream_addr;
  // @ts-expect-error the timer callback gets `premature` first
  ngx.timer.at(0, (name: string) => name);
  // @ts-expect-error ngx.worker.id() is nil outside a worker
  const id: number = ngx.worker.id();
  // @ts-expect-error the balancer needs the port too
  balancer.set_current_peer("127.0.0.1");
  // @ts-expect-error the port is a number
  ngx.socket.tcp().connect("127.0.0.1", "80");
  // @ts-expect-error socket methods need their socket (sock:send in Lua)
  const send: (this: void, data: string) => unknown = ngx.socket.tcp().send;
  // @ts-expect-error cjson.safe.decode returns the value and an error, the value unknown until checked
  const decoded: string = cjson.decode("1")[0];
  // @ts-expect-error ngx.shared is read-only
  ngx.shared = {};
  // @ts-expect-error ngx.exit takes a status number
  ngx.exit("done");
  void [get, status, upstream, id, send, decoded];
}
