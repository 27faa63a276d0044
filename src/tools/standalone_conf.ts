// The standalone gateway's nginx.conf, generated under LuaJIT: the Docker image's entrypoint runs
// this (the image carries no Node). It mirrors src/cli/nginx_conf.ts line for line; the
// integration test standalone_conf.test.ts compares the two outputs for a table of configs.
//
//   luajit scripts/luarun.lua resty.autoscale.tools.standalone_conf --config IN --include PATH
//       [--out FILE] [--write-config FILE] [--write-admin FILE] [--load-module SO]...
//       [--workers N] [--error-log "stderr notice"] [--access-log "/dev/stdout combined"]
//       [--listen PORT] [--admin-listen ADDR]
//       [--admin-token-file PATH | --admin-token-env NAME] [--env NAME]...
//
// --listen, --admin-listen and the admin token override the config file: the overridden config
// is written to --write-config (mode 0600, it may hold the token), which the gateway then loads.
import * as cjson from "cjson.safe";
import { loadConfigFile } from "../config/load";

interface RawRoute {
  name: string;
  match: { prefix?: string; exact?: string };
  pool: string;
}

interface RawConfig {
  listen?: number;
  admin?: { listen?: string | number; token?: string };
  pools: LuaTable<string, unknown>;
  routes: RawRoute[];
  redis?: unknown;
  sources?: unknown;
  tls?: { ca_file?: string };
}

type Obj = LuaTable<string, unknown>;

const SYSTEM_CA_BUNDLES = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"];
const SERVICE_ACCOUNT_CA = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";

function exists(path: string): boolean {
  const [f] = io.open(path, "r");
  if (f === undefined) return false;
  f.close();
  return true;
}

/** Actuator and discovery sections (as nginx_conf.ts's actuators()). */
function actuatorSections(cfg: RawConfig): Obj[] {
  const out: Obj[] = [];
  const names: string[] = [];
  for (const [name] of cfg.pools) names.push(name);
  table.sort(names);
  for (const name of names) {
    const pool = cfg.pools.get(name) as Obj | undefined;
    if (type(pool) !== "table") continue;
    const scaling = pool!.get("scaling") as Obj | undefined;
    const a = type(scaling) === "table" ? scaling!.get("actuator") : undefined;
    if (type(a) === "table") out.push(a as Obj);
    const d = pool!.get("discovery");
    if (type(d) === "table") out.push(d as Obj);
  }
  return out;
}

function collectEnv(v: unknown, names: LuaTable<string, boolean>): void {
  if (type(v) !== "table") return;
  const o = v as Obj;
  const env = o.get("env");
  if (type(env) === "string") {
    const [firstKey] = next(o);
    const [secondKey] = next(o, firstKey);
    if (secondKey === undefined) names.set(env as string, true);
  }
  for (const [, child] of pairs(o)) collectEnv(child, names);
}

/** The `env NAME;` names nginx_conf.ts's neededEnv() finds, plus the extra ones asked for. */
function neededEnv(cfg: RawConfig, extra: string[]): string[] {
  const names = new LuaTable<string, boolean>();
  collectEnv(cfg.pools, names);
  collectEnv(cfg.redis, names);
  collectEnv(cfg.sources, names);
  for (const a of actuatorSections(cfg)) {
    if (a.get("type") === "aws_asg" && a.get("credentials") === undefined) {
      for (const n of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"]) names.set(n, true);
    }
    if (a.get("type") === "kubernetes" && a.get("api_url") === undefined) {
      for (const n of ["KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"]) names.set(n, true);
    }
  }
  for (const n of extra) names.set(n, true);
  const out: string[] = [];
  for (const [n] of names) out.push(n);
  table.sort(out);
  return out;
}

/** The CA files lua_ssl_trusted_certificate needs (as nginx_conf.ts's trustedCaFiles()). */
function trustedCaFiles(cfg: RawConfig): string[] {
  const files: string[] = [];
  const seen = new LuaTable<string, boolean>();
  const add = (f: string) => {
    if (!seen.get(f) && exists(f)) {
      seen.set(f, true);
      files.push(f);
    }
  };
  for (const f of SYSTEM_CA_BUNDLES) {
    if (exists(f)) {
      add(f);
      break;
    }
  }
  const tls = cfg.tls;
  if (type(tls) === "table" && type(tls!.ca_file) === "string") add(tls!.ca_file!);
  for (const a of actuatorSections(cfg)) {
    if (a.get("type") !== "kubernetes") continue;
    const ca = a.get("ca_file");
    if (type(ca) === "string") add(ca as string);
    else if (a.get("api_url") === undefined) add(SERVICE_ACCOUNT_CA);
  }
  return files;
}

/** One file for lua_ssl_trusted_certificate: the only one, or the concatenation in `dir`. */
function caBundle(files: string[], dir: string): string | undefined {
  if (files.length === 0) return undefined;
  if (files.length === 1) return files[0];
  const parts: string[] = [];
  for (const f of files) {
    const [text] = readFile(f);
    if (text !== undefined) parts.push(string.gsub(text, "%s+$", "")[0] + "\n");
  }
  const path = `${dir}/autoscale-trusted-ca.pem`;
  writeFile(path, table.concat(parts), false);
  return path;
}

/** nginx does not read /etc/resolv.conf (as nginx_conf.ts's resolverLine()). */
function resolverLine(): string {
  const [text] = readFile("/etc/resolv.conf");
  if (text === undefined) return "";
  const servers: string[] = [];
  for (const [ns] of string.gmatch(text, "%f[^\n%z]%s*nameserver%s+(%S+)")) {
    servers.push(string.find(ns, ":", 1, true)[0] !== undefined ? `[${ns}]` : ns);
  }
  return servers.length > 0 ? `    resolver ${table.concat(servers, " ")} valid=30s;\n` : "";
}

export interface StandaloneOptions {
  include: string;
  loadModules: string[];
  workers?: number;
  errorLog?: string;
  /** access_log arguments for the proxy server, e.g. "/dev/stdout combined" (default "off"). */
  accessLog?: string;
  listen?: number;
  adminListen?: string;
  extraHttp?: string;
  extraServer?: string;
  /** Environment variables nginx keeps for its workers (`env NAME;`), e.g. secret references. */
  env?: string[];
  /** Where a concatenated CA bundle is written when several CA files are trusted (the conf dir). */
  confDir?: string;
}

function adminAddress(v: string | number | undefined): string {
  if (v === undefined) return "127.0.0.1:9180";
  if (type(v) === "number" || string.match(v as string, "^%d+$")[0] !== undefined) return `127.0.0.1:${v}`;
  return v as string;
}

export function upstreamName(pool: string): string {
  return `autoscale_${string.gsub(pool, "[^A-Za-z0-9_]", "_")[0]}`;
}

/** A Lua string literal for nginx.conf (names are validated to letters, digits, '_', '.', '-'). */
function luaString(s: string): string {
  return string.format("%q", s);
}

export function generateStandaloneConf(cfg: RawConfig, o: StandaloneOptions): string {
  const poolNames: string[] = [];
  for (const [name] of cfg.pools) poolNames.push(name);
  table.sort(poolNames);
  const upstreams: string[] = [];
  for (const pool of poolNames) {
    upstreams.push(`    upstream ${upstreamName(pool)} {
        server 0.0.0.1;   # placeholder: the balancer picks the peer
        balancer_by_lua_block { require("resty.autoscale").balance(${luaString(pool)}) }
        keepalive 256;
    }`);
  }
  let catchAll = true;
  const locations: string[] = [];
  for (const r of cfg.routes) {
    const where = r.match.exact !== undefined ? `= ${r.match.exact}` : `^~ ${r.match.prefix}`;
    if (r.match.prefix === "/") catchAll = false;
    // As many tries as the pool's balancer allows (it calls set_more_tries; nginx caps it here).
    const balancer = (cfg.pools.get(r.pool) as { balancer?: unknown } | undefined)?.balancer;
    const tries = type(balancer) === "table" ? (balancer as { tries?: number }).tries : undefined;
    const triesLine = tries !== undefined ? `
            proxy_next_upstream_tries ${tries};` : "";
    locations.push(`        location ${where} {
            proxy_pass http://${upstreamName(r.pool)};${triesLine}
            access_by_lua_block { require("resty.autoscale").access(${luaString(r.name)}) }
            log_by_lua_block { require("resty.autoscale").log(${luaString(r.name)}) }
        }`);
  }
  const fallback = catchAll
    ? `        location / {
            default_type application/json;
            return 404 '{"error":"no route matches this path"}\\n';
            log_by_lua_block { require("resty.autoscale").log("unmatched") }
        }`
    : "";
  const loads: string[] = [];
  for (const m of o.loadModules) loads.push(`load_module ${m};`);
  const envLines: string[] = [];
  for (const name of neededEnv(cfg, o.env ?? [])) envLines.push(`env ${name};`);
  const bundle = caBundle(trustedCaFiles(cfg), o.confDir ?? ".");
  const tls = bundle !== undefined ? `    lua_ssl_trusted_certificate ${bundle};\n    lua_ssl_verify_depth 5;\n` : "";
  return `# Generated by \`autoscale run\` from the gateway config. Do not edit: edit the config.
${table.concat(loads, "\n")}
${table.concat(envLines, "\n")}
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
    include ${o.include};

${table.concat(upstreams, "\n")}

    server {
        listen ${o.listen ?? cfg.listen ?? 8080} reuseport;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_connect_timeout 2s;
        proxy_next_upstream error timeout http_502 http_503 http_504;
        proxy_next_upstream_tries 2;
${o.extraServer ?? ""}
${table.concat(locations, "\n")}
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

/** Where a local health check connects to reach the admin server: "host port". */
export function adminProbeAddress(listen: string): string {
  const [v6host, v6port] = string.match(listen, "^%[(.*)%]:(%d+)$");
  if (v6host !== undefined) return `${v6host === "::" ? "::1" : v6host} ${v6port}`;
  const [host, port] = string.match(listen, "^(.*):(%d+)$");
  if (host !== undefined) return `${host === "0.0.0.0" || host === "*" ? "127.0.0.1" : host} ${port}`;
  return `127.0.0.1 ${listen}`;
}

function readFile(path: string): LuaMultiReturn<[string | undefined, string | undefined]> {
  const [f, err] = io.open(path, "r");
  if (f === undefined) return $multi(undefined, err);
  const text = f.read("*a") as string | undefined;
  f.close();
  return $multi(text ?? "", undefined);
}

function writeFile(path: string, text: string, secret: boolean): string | undefined {
  // A file that may hold the admin token is created unreadable for others (umask 077).
  if (secret) os.execute(`umask 077 && : > '${string.gsub(path, "'", "'\\''")[0]}'`);
  const [f, err] = io.open(path, "w");
  if (f === undefined) return err;
  f.write(text);
  f.close();
  return undefined;
}

/**
 * Creates the config's state_dir when it is missing, handed to nobody when we run as root (the
 * workers' user: the generated nginx.conf sets no `user`), as nginx_conf.ts's prepareStateDir.
 */
function prepareStateDir(dir: string | undefined): void {
  if (dir === undefined) return;
  const q = `'${string.gsub(dir, "'", "'\\''")[0]}'`;
  os.execute(`[ -d ${q} ] || { mkdir -p -m 755 -- ${q} && { [ "$(id -u)" != 0 ] || chown nobody: -- ${q}; }; }`);
}

function fail(message: string): number {
  io.stderr.write(`autoscale: ${message}\n`);
  return 1;
}

const REPEATED = new LuaTable<string, boolean>();
REPEATED.set("load-module", true);
REPEATED.set("env", true);

export function main(args: string[]): number {
  const flags = new LuaTable<string, string>();
  const lists = new LuaTable<string, string[]>();
  lists.set("load-module", []);
  lists.set("env", []);
  for (let i = 0; i < args.length; i += 2) {
    const [name] = string.match(args[i], "^%-%-([%w%-]+)$");
    const value = args[i + 1];
    if (name === undefined || value === undefined) return fail(`bad option ${args[i]} (see the usage in standalone_conf.lua)`);
    if (REPEATED.get(name)) lists.get(name).push(value);
    else flags.set(name, value);
  }
  const configFile = flags.get("config");
  const include = flags.get("include");
  if (configFile === undefined || include === undefined) return fail("--config FILE and --include PATH are required");

  // The gateway's own validation, before anything is written.
  const [valid, problems] = loadConfigFile(configFile);
  if (valid === undefined) return fail(`invalid config ${configFile}:\n  ${table.concat(problems, "\n  ")}`);
  const [text] = readFile(configFile);
  const [doc] = cjson.decode(text!);
  const cfg = doc as RawConfig;
  prepareStateDir(valid.stateDir);

  let overridden = false;
  const listen = flags.get("listen");
  if (listen !== undefined) {
    cfg.listen = tonumber(listen);
    overridden = true;
  }
  if (cfg.admin === undefined) cfg.admin = {};
  const adminListen = flags.get("admin-listen");
  if (adminListen !== undefined) {
    cfg.admin.listen = adminListen;
    overridden = true;
  }
  const tokenFile = flags.get("admin-token-file");
  const tokenEnv = flags.get("admin-token-env");
  if (tokenFile !== undefined || tokenEnv !== undefined) {
    let token: string | undefined;
    if (tokenFile !== undefined) {
      const [t, err] = readFile(tokenFile);
      if (t === undefined) return fail(`cannot read the admin token file: ${err}`);
      token = t;
    } else {
      token = os.getenv(tokenEnv!);
      if (token === undefined) return fail(`environment variable ${tokenEnv} is not set`);
    }
    token = string.match(token, "^%s*(.-)%s*$")[0]!;
    if (token === "") return fail("the admin token is empty");
    cfg.admin.token = token;
    overridden = true;
  }

  const effectiveFile = flags.get("write-config");
  if (effectiveFile !== undefined) {
    let out = text!;
    if (overridden) {
      const [encoded, encErr] = cjson.encode(cfg);
      if (encoded === undefined) return fail(`cannot encode the config: ${encErr}`);
      out = encoded;
    }
    const err = writeFile(effectiveFile, out, true);
    if (err !== undefined) return fail(`cannot write ${effectiveFile}: ${err}`);
    if (overridden) {
      const [ok, again] = loadConfigFile(effectiveFile);
      if (ok === undefined) return fail(`invalid config after the environment overrides:\n  ${table.concat(again, "\n  ")}`);
    }
  }

  const workers = flags.get("workers");
  const outFile = flags.get("out");
  const conf = generateStandaloneConf(cfg, {
    include,
    loadModules: lists.get("load-module"),
    workers: workers === undefined || workers === "auto" ? undefined : tonumber(workers),
    errorLog: flags.get("error-log"),
    accessLog: flags.get("access-log"),
    env: lists.get("env"),
    confDir: outFile === undefined ? undefined : string.match(outFile, "^(.*)/[^/]*$")[0],
  });
  if (outFile === undefined) io.stdout.write(conf);
  else {
    const err = writeFile(outFile, conf, false);
    if (err !== undefined) return fail(`cannot write ${outFile}: ${err}`);
  }
  const adminFile = flags.get("write-admin");
  if (adminFile !== undefined) {
    const err = writeFile(adminFile, `${adminProbeAddress(adminAddress(cfg.admin.listen))}\n`, false);
    if (err !== undefined) return fail(`cannot write ${adminFile}: ${err}`);
  }
  return 0;
}
