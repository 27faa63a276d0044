// Demo and test backends: one nginx serving several ports, each answering after its own delay
// (ngx.sleep in content_by_lua), with a body naming the backend.
import { join } from "node:path";
import { Runtime } from "./runtime.js";
import { NginxHandle, startNginx } from "./nginx.js";

export interface BackendSpec {
  port: number;
  /** Seconds each answer waits. 0 answers at once without Lua. */
  delay: number;
  /** Answer status (default 200). */
  status?: number;
}

export function backendConf(runtime: Runtime, specs: BackendSpec[], workers = 1): string {
  const servers = specs
    .map((b) => {
      const body = `backend ${b.port}`;
      const answer =
        b.delay > 0
          ? `content_by_lua_block { ngx.sleep(${b.delay}) ngx.status = ${b.status ?? 200} ngx.say(${JSON.stringify(body)}) }`
          : `return ${b.status ?? 200} ${JSON.stringify(body + "\n")};`;
      return `    server {
        listen 127.0.0.1:${b.port} reuseport backlog=4096;
        keepalive_requests 1000000;
        location / { default_type text/plain; ${answer} }
    }`;
    })
    .join("\n");
  return `${runtime.loadModules.map((m) => `load_module ${m};`).join("\n")}
worker_processes ${workers};
error_log logs/error.log warn;
pid logs/nginx.pid;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path temp/client_body;
    proxy_temp_path temp/proxy;
    fastcgi_temp_path temp/fastcgi;
    uwsgi_temp_path temp/uwsgi;
    scgi_temp_path temp/scgi;
${servers}
}
`;
}

export function startBackends(runtime: Runtime, prefix: string, specs: BackendSpec[], workers = 1): NginxHandle {
  return startNginx(runtime, join(prefix), backendConf(runtime, specs, workers), process.env);
}
