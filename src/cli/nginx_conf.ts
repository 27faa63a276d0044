// Generates the nginx.conf of a standalone gateway from a (validated) config: one upstream per
// pool with the bundle's balancer, one location per route, the admin server.
import { join } from "node:path";
import { chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { Runtime } from "./runtime.js";
import { projectRoot } from "./paths.js";

export interface GatewayConfig {
  listen?: number;
  admin?: { listen?: string | number; token?: string };
  pools: Record<string, unknown>;
  routes: ({ name: string; match: { prefix?: string; exact?: string }; pool: string } & Record<string, unknown>)[];
  redis?: { host?: string; port?: number; password?: { env?: string }; db?: number; timeout_ms?: number };
  cluster?: Record<string, unknown>;
  sources?: Record<string, Record<string, unknown>>;
  tls?: { ca_file?: string };
  state_dir?: string;
}

const SYSTEM_CA_BUNDLES = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"];
const SERVICE_ACCOUNT_CA = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";

type Json = Record<string, any>;

/** Actuators and discovery sections: both may talk to a Kubernetes API with its CA and env. */
function actuators(cfg: GatewayConfig): Json[] {
  const out: Json[] = [];
  for (const pool of Object.values(cfg.pools)) {
    const a = (pool as Json)?.scaling?.actuator;
    if (a && typeof a === "object") out.push(a as Json);
    const d = (pool as Json)?.discovery;
    if (d && typeof d === "object") out.push(d as Json);
  }
  return out;
}

/**
 * Environment variables the workers need (nginx clears the rest): every {"env": NAME} secret
 * reference, the AWS defaults of an aws_asg actuator without credentials, and the in-cluster
 * Kubernetes variables of a kubernetes actuator without api_url.
 */
export function neededEnv(cfg: GatewayConfig): string[] {
  const names = new Set<string>();
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === "object") {
      const o = v as Json;
      if (typeof o.env === "string" && Object.keys(o).length === 1) names.add(o.env);
      Object.values(o).forEach(walk);
    }
  };
  walk(cfg.pools);
  walk(cfg.redis);
  walk(cfg.sources);
  for (const a of actuators(cfg)) {
    if (a.type === "aws_asg" && a.credentials === undefined) ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"].forEach((n) => names.add(n));
    if (a.type === "kubernetes" && a.api_url === undefined) ["KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"].forEach((n) => names.add(n));
  }
  return [...names].sort();
}

/**
 * CA certificates the cosocket client verifies servers with. A cosocket cannot take a CA per
 * request: lua_ssl_trusted_certificate is one file for all, so the system bundle, tls.ca_file and
 * every kubernetes actuator's ca_file (the service account's in cluster) are concatenated.
 */
export function trustedCaFiles(cfg: GatewayConfig): string[] {
  const files: string[] = [];
  const system = SYSTEM_CA_BUNDLES.find((f) => existsSync(f));
  if (system) files.push(system);
  if (cfg.tls?.ca_file) files.push(cfg.tls.ca_file);
  for (const a of actuators(cfg)) {
    if (a.type !== "kubernetes") continue;
    if (typeof a.ca_file === "string") files.push(a.ca_file);
    else if (a.api_url === undefined) files.push(SERVICE_ACCOUNT_CA);
  }
  return [...new Set(files)].filter((f) => existsSync(f));
}

/** nginx does not read /etc/resolv.conf: actuators and sources on host names need a resolver. */
export function resolverLine(): string {
  try {
    const servers = readFileSync("/etc/resolv.conf", "utf8")
      .split("\n")
      .map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1])
      .filter((ns): ns is string => ns !== undefined)
      .map((ns) => (ns.includes(":") ? `[${ns}]` : ns));
    return servers.length > 0 ? `    resolver ${servers.join(" ")} valid=30s;\n` : "";
  } catch {
    return "";
  }
}

/** One file for lua_ssl_trusted_certificate (read by the workers: it must be world-readable). */
function writeCaBundle(prefix: string, files: string[]): string | undefined {
  if (files.length === 0) return undefined;
  if (files.length === 1) return files[0];
  const dir = join(prefix, "conf");
  mkdirSync(dir, { recursive: true });
  const path = join(dir, "autoscale-trusted-ca.pem");
  writeFileSync(path, files.map((f) => readFileSync(f, "utf8").trimEnd() + "\n").join(""), { mode: 0o644 });
  return path;
}

export interface ConfOptions {
  prefix: string;
  runtime: Runtime;
  workers?: number;
  /** error_log target and level, e.g. "stderr notice" (default "logs/error.log notice"). */
  errorLog?: string;
  /** access_log arguments for the proxy server, e.g. "/dev/stdout combined" (default "off"). */
  accessLog?: string;
  /** Overrides config.listen (tests use free ports). */
  listen?: number;
  adminListen?: string;
  /** Extra text for the http block (tests, benchmarks). */
  extraHttp?: string;
  /** Extra directives for the gateway's server block (tests: e.g. an X-Upstream header). */
  extraServer?: string;
}

function adminAddress(v: string | number | undefined): string {
  if (v === undefined) return "127.0.0.1:9180";
  return typeof v === "number" || /^\d+$/.test(v) ? `127.0.0.1:${v}` : v;
}

export function upstreamName(pool: string): string {
  return `autoscale_${pool.replace(/[^A-Za-z0-9_]/g, "_")}`;
}

function luaString(s: string): string {
  return JSON.stringify(s);
}

/**
 * How every server of the gateway proxies (HTTP/1.1 keepalive upstreams, client address, one
 * retry on connection errors and 502-504). The benchmarks' plain nginx uses the same, so the
 * comparison differs only in the bundle.
 */
export const PROXY_SETTINGS = `        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_connect_timeout 2s;
        proxy_next_upstream error timeout http_502 http_503 http_504;
        proxy_next_upstream_tries 2;
`;

/**
 * Creates the config's state_dir when it is missing. The generated nginx.conf sets no `user`, so
 * a master started as root runs its workers as nobody: the new directory is handed to nobody
 * (an existing one is left as its owner made it). standalone_conf.ts does the same.
 */
export function prepareStateDir(dir: string | undefined): void {
  if (dir === undefined || existsSync(dir)) return;
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  if (process.getuid?.() !== 0) return;
  const nobody = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .map((l) => l.split(":"))
    .find((f) => f[0] === "nobody");
  if (nobody !== undefined) chownSync(dir, Number(nobody[2]), Number(nobody[3]));
}

export function generateNginxConf(cfg: GatewayConfig, o: ConfOptions): string {
  prepareStateDir(cfg.state_dir);
  const include = join(projectRoot, "build", "nginx", "autoscale.conf");
  const upstreams = Object.keys(cfg.pools)
    .sort()
    .map(
      (pool) => `    upstream ${upstreamName(pool)} {
        server 0.0.0.1;   # placeholder: the balancer picks the peer
        balancer_by_lua_block { require("resty.autoscale").balance(${luaString(pool)}) }
        keepalive 256;
    }`,
    )
    .join("\n");
  let catchAll = true;
  const locations = cfg.routes
    .map((r) => {
      const where = r.match.exact !== undefined ? `= ${r.match.exact}` : `^~ ${r.match.prefix}`;
      if (r.match.prefix === "/") catchAll = false;
      // As many tries as the pool's balancer allows (it calls set_more_tries; nginx caps it here).
      const balancer = (cfg.pools[r.pool] as { balancer?: unknown } | undefined)?.balancer;
      const tries = typeof balancer === "object" && balancer !== null ? (balancer as { tries?: number }).tries : undefined;
      return `        location ${where} {
            proxy_pass http://${upstreamName(r.pool)};${tries !== undefined ? `
            proxy_next_upstream_tries ${tries};` : ""}
            access_by_lua_block { require("resty.autoscale").access(${luaString(r.name)}) }
            log_by_lua_block { require("resty.autoscale").log(${luaString(r.name)}) }
        }`;
    })
    .join("\n");
  const fallback = catchAll
    ? `        location / {
            default_type application/json;
            return 404 '{"error":"no route matches this path"}\\n';
            log_by_lua_block { require("resty.autoscale").log("unmatched") }
        }`
    : "";
  const envLines = neededEnv(cfg).map((n) => `env ${n};`).join("\n");
  const caBundle = writeCaBundle(o.prefix, trustedCaFiles(cfg));
  const tls = caBundle ? `    lua_ssl_trusted_certificate ${caBundle};\n    lua_ssl_verify_depth 5;\n` : "";
  return `# Generated by \`autoscale run\` from the gateway config. Do not edit: edit the config.
${o.runtime.loadModules.map((m) => `load_module ${m};`).join("\n")}
${envLines}
worker_processes ${o.workers ?? "auto"};
error_log ${o.errorLog ?? "logs/error.log notice"};
pid logs/nginx.pid;
events { worker_connections 4096; }

http {
    access_log ${o.accessLog ?? "off"};
    client_body_temp_path temp/client_body;
    proxy_temp_path temp/proxy;
    fastcgi_temp_path temp/fastcgi;
    uwsgi_temp_path temp/uwsgi;
    scgi_temp_path temp/scgi;
    lua_socket_log_errors off;
${tls}${resolverLine()}
    include ${include};

${upstreams}

    server {
        listen ${o.listen ?? cfg.listen ?? 8080} reuseport;
${PROXY_SETTINGS}${o.extraServer ?? ""}
${locations}
${fallback}
    }

    server {
        listen ${o.adminListen ?? adminAddress(cfg.admin?.listen)};
        access_log off;   # health checks and scrapes stay out of the access log
        location / {
            content_by_lua_block { require("resty.autoscale").admin() }
        }
    }
${o.extraHttp ?? ""}
}
`;
}
