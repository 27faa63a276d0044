// Starting and stopping an nginx with its own prefix directory (nothing written under /etc).
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Runtime } from "./runtime.js";

export interface NginxHandle {
  prefix: string;
  process: ChildProcess;
  /** Resolves with the exit code when nginx has stopped. */
  exited: Promise<number>;
  /** Graceful stop (SIGQUIT: in-flight requests finish); resolves when nginx has exited. */
  stop(): Promise<number>;
}

/** How long a graceful stop may take before the processes are killed. */
const STOP_GRACE_MS = 15000;

/** The worker processes of an nginx master (Linux /proc). */
function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export function preparePrefix(prefix: string): void {
  for (const d of ["logs", "temp", "conf"]) mkdirSync(join(prefix, d), { recursive: true });
}

export function nginxArgs(prefix: string): string[] {
  return ["-p", prefix, "-c", join(prefix, "conf", "nginx.conf"), "-e", join(prefix, "logs", "error.log")];
}

/** `nginx -t`: returns the output when the config is refused, undefined when it is fine. */
export function testConf(runtime: Runtime, prefix: string, env: NodeJS.ProcessEnv): string | undefined {
  const r = spawnSync(runtime.binary, [...nginxArgs(prefix), "-t", "-q"], { encoding: "utf8", env });
  return r.status === 0 ? undefined : (r.stderr || r.stdout).trim();
}

/**
 * Writes conf/nginx.conf and starts nginx in the foreground (`daemon off`). `ownGroup` puts nginx
 * in its own process group: a terminal's Ctrl-C sends SIGINT to the whole foreground group, and
 * nginx takes SIGINT as a fast shutdown that cuts requests in flight; in its own group only the
 * caller gets it and can turn it into a graceful stop().
 */
export function startNginx(runtime: Runtime, prefix: string, conf: string, env: NodeJS.ProcessEnv, stdio: "inherit" | "pipe" = "pipe", ownGroup = false): NginxHandle {
  preparePrefix(prefix);
  writeFileSync(join(prefix, "conf", "nginx.conf"), conf);
  const child = spawn(runtime.binary, [...nginxArgs(prefix), "-g", "daemon off;"], { env, stdio: ["ignore", stdio, stdio], detached: ownGroup });
  const exited = new Promise<number>((resolve) => {
    child.on("exit", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    child.on("error", () => resolve(127));
  });
  return {
    prefix,
    process: child,
    exited,
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGQUIT");
        // A graceful stop waits for in-flight requests and running timers; one that never ends
        // must not hang the caller: after the grace period the master and its workers are killed.
        const workers = child.pid === undefined ? [] : childPids(child.pid);
        const timer = setTimeout(() => {
          for (const pid of workers) {
            try {
              process.kill(pid, "SIGKILL");
            } catch {
              // already gone
            }
          }
          child.kill("SIGKILL");
        }, STOP_GRACE_MS);
        void exited.then(() => clearTimeout(timer));
      }
      return exited;
    },
  };
}

/**
 * The main context and the opening of the http block shared by the helper nginx instances the
 * CLI, tests and benchmarks run (backends, plain-nginx baselines); the caller closes the block.
 */
export function nginxHead(runtime: Runtime, o: { workers: number; errorLog?: string; workerConnections?: number }): string {
  return `${runtime.loadModules.map((m) => `load_module ${m};`).join("\n")}
worker_processes ${o.workers};
error_log ${o.errorLog ?? "logs/error.log warn"};
pid logs/nginx.pid;
events { worker_connections ${o.workerConnections ?? 4096}; }
http {
    access_log off;
    client_body_temp_path temp/client_body;
    proxy_temp_path temp/proxy;
    fastcgi_temp_path temp/fastcgi;
    uwsgi_temp_path temp/uwsgi;
    scgi_temp_path temp/scgi;
`;
}
