// Demo and test backends: one nginx serving several ports, each answering after its own delay
// (ngx.sleep in content_by_lua), with a body naming the backend; optionally with a fixed
// concurrency capacity (a FIFO semaphore) and a status switchable at run time.
import { join } from "node:path";
import { Runtime } from "./runtime.js";
import { NginxHandle, startNginx, nginxHead } from "./nginx.js";

export interface BackendSpec {
  port: number;
  /** Seconds each answer waits. 0 answers at once without Lua. */
  delay: number;
  /** Answer status (default 200). */
  status?: number;
  /**
   * Serves at most this many requests at once, each taking `delay` seconds; the others wait in
   * FIFO order (a backend of fixed capacity: capacity / delay requests per second).
   */
  capacity?: number;
  /** GET /__status?code=500 switches the answer status at run time (breaker tests). */
  switchable?: boolean;
}

function luaAnswer(b: BackendSpec, body: string): string {
  const status = b.switchable ? `(ngx.shared.backend_state:get(${b.port}) or ${b.status ?? 200})` : `${b.status ?? 200}`;
  const wait = b.delay > 0 ? `ngx.sleep(${b.delay})` : "";
  const serve =
    b.capacity !== undefined
      ? `local slots = package.loaded.backend_slots or {}
            package.loaded.backend_slots = slots
            local sema = slots[${b.port}]
            if not sema then sema = require("ngx.semaphore").new(${b.capacity}) slots[${b.port}] = sema end
            local ok = sema:wait(300)
            ${wait}
            if ok then sema:post(1) end`
      : wait;
  return `content_by_lua_block {
            ${serve}
            ngx.status = ${status}
            ngx.say(${JSON.stringify(body)})
        }`;
}

/** `statusPort`: also serve nginx's stub_status there (benchmarks count accepted connections). */
export function backendConf(runtime: Runtime, specs: BackendSpec[], workers = 1, statusPort?: number): string {
  const servers = specs
    .map((b) => {
      const body = `backend ${b.port}`;
      const answer = b.delay > 0 || b.capacity !== undefined || b.switchable ? luaAnswer(b, body) : `return ${b.status ?? 200} ${JSON.stringify(body + "\n")};`;
      const control = b.switchable
        ? `
        location = /__status { content_by_lua_block { ngx.shared.backend_state:set(${b.port}, tonumber(ngx.var.arg_code)) ngx.say("ok") } }`
        : "";
      return `    server {
        listen 127.0.0.1:${b.port} reuseport backlog=4096;
        keepalive_requests 1000000;
        # When the backend served it (seconds.milliseconds): tests attribute answers to windows by it.
        add_header X-Served-At $msec always;
        location / { default_type text/plain; ${answer} }${control}
    }`;
    })
    .join("\n");
  return `${nginxHead(runtime, { workers: workers, workerConnections: 8192 })}${specs.some((b) => b.switchable) ? "    lua_shared_dict backend_state 1m;\n" : ""}${servers}
${statusPort === undefined ? "" : `    server { listen 127.0.0.1:${statusPort}; location / { stub_status; } }`}
}
`;
}

export function startBackends(runtime: Runtime, prefix: string, specs: BackendSpec[], workers = 1, statusPort?: number): NginxHandle {
  return startNginx(runtime, join(prefix), backendConf(runtime, specs, workers, statusPort), process.env);
}
