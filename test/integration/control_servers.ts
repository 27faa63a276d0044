// Test servers for the control loop: a CA and certificates made with openssl, a Kubernetes API
// server for the scale subresource, a recording HTTP(S) server, and redis-server instances.
import { createServer as createHttp, IncomingMessage, Server, ServerResponse } from "node:http";
import { createServer as createHttps } from "node:https";
import { ChildProcess, execFileSync, spawn } from "node:child_process";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, sleep, tempDir } from "./harness.js";

export interface Pki {
  dir: string;
  caFile: string;
  /** Certificate and key for "localhost", signed by the CA. */
  cert: string;
  key: string;
  /** Signed by the same CA for another name. */
  wrongNameCert: string;
  wrongNameKey: string;
  /** A second CA that signed nothing of the above. */
  otherCaFile: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: "pipe" });
}

function makeCa(dir: string, name: string): void {
  openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.pem`, "-days", "2", "-subj", `/CN=${name} test CA`], dir);
}

function makeLeaf(dir: string, ca: string, name: string, dns: string): void {
  writeFileSync(join(dir, `${name}.ext`), `subjectAltName=DNS:${dns}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n`);
  openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${dns}`], dir);
  openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.pem`, "-CAkey", `${ca}.key`, "-CAcreateserial", "-out", `${name}.pem`, "-days", "2", "-extfile", `${name}.ext`], dir);
}

/** A CA, a good "localhost" certificate, one for another name, and an unrelated CA. */
export function makePki(): Pki {
  const dir = tempDir("pki");
  makeCa(dir, "ca");
  makeCa(dir, "otherca");
  makeLeaf(dir, "ca", "server", "localhost");
  makeLeaf(dir, "ca", "wrongname", "not-this-host.test");
  for (const f of ["ca.pem", "otherca.pem"]) chmodSync(join(dir, f), 0o644);
  return {
    dir,
    caFile: join(dir, "ca.pem"),
    cert: readFileSync(join(dir, "server.pem"), "utf8"),
    key: readFileSync(join(dir, "server.key"), "utf8"),
    wrongNameCert: readFileSync(join(dir, "wrongname.pem"), "utf8"),
    wrongNameKey: readFileSync(join(dir, "wrongname.key"), "utf8"),
    otherCaFile: join(dir, "otherca.pem"),
  };
}

export interface Recorded {
  at: number;
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
  body: string;
}

export type Handler = (req: Recorded, res: ServerResponse) => unknown;

export interface TestServer {
  port: number;
  url: string;
  requests: Recorded[];
  server: Server;
  close(): Promise<void>;
}

/** An HTTP (or HTTPS, with `tls`) server that records every request and answers with `handler`. */
export async function startServer(handler: Handler, tls?: { cert: string; key: string }, host = "127.0.0.1"): Promise<TestServer> {
  const port = await freePort();
  const requests: Recorded[] = [];
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const rec: Recorded = { at: Date.now(), method: req.method ?? "", path: req.url ?? "/", headers: req.headers, body: Buffer.concat(chunks).toString("utf8") };
      requests.push(rec);
      Promise.resolve(handler(rec, res)).catch(() => {
        res.writeHead(500);
        res.end();
      });
    });
  };
  const server = tls ? createHttps({ cert: tls.cert, key: tls.key }, listener) : createHttp(listener);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port,
    url: `${tls ? "https" : "http"}://${tls ? "localhost" : "127.0.0.1"}:${port}`,
    requests,
    server,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

export interface KubeApi extends TestServer {
  replicas: number;
  /** The bearer token accepted now (a test may rotate it). */
  token: string;
  /** Accepted PATCHes in order: [time, replicas, sender, fencing token]. */
  patches: { at: number; replicas: number; instance?: string; fencing?: string }[];
  /** Refusals the server made, with the reason (wrong path, token, type, body). */
  refusals: string[];
  /** Next answers to force (status codes; "hang" never answers, "garbage" sends malformed JSON). */
  faults: (number | "hang" | "garbage")[];
}

/**
 * The scale subresource of one Deployment: GET and PATCH /apis/apps/v1/namespaces/NS/deployments/NAME/scale,
 * bearer token, merge-patch JSON {"spec":{"replicas":N}}; the count it keeps is what GET returns.
 */
export async function startKubeApi(opts: { namespace: string; name: string; token: string; replicas: number; tls?: { cert: string; key: string } }): Promise<KubeApi> {
  const path = `/apis/apps/v1/namespaces/${opts.namespace}/deployments/${opts.name}/scale`;
  const api = {} as KubeApi;
  api.replicas = opts.replicas;
  api.token = opts.token;
  api.patches = [];
  api.refusals = [];
  api.faults = [];
  const scale = () => ({ kind: "Scale", apiVersion: "autoscaling/v1", metadata: { name: opts.name, namespace: opts.namespace }, spec: { replicas: api.replicas }, status: { replicas: api.replicas } });
  const refuse = (res: ServerResponse, status: number, why: string) => {
    api.refusals.push(why);
    json(res, status, { kind: "Status", status: "Failure", message: why, reason: status === 401 ? "Unauthorized" : "BadRequest", code: status });
  };
  const server = await startServer((req, res) => {
    if (req.path !== path) return refuse(res, 404, `wrong path ${req.path}`);
    if (req.headers.authorization !== `Bearer ${api.token}`) return refuse(res, 401, "wrong or missing bearer token");
    const fault = req.method === "PATCH" ? api.faults.shift() : undefined;
    if (fault === "hang") return; // never answers: the client times out
    if (fault === "garbage") {
      res.writeHead(200, { "content-type": "application/json" });
      return res.end('{"kind":"Scale","spec":{"replicas":');
    }
    if (typeof fault === "number") return json(res, fault, { kind: "Status", message: "injected fault", code: fault });
    if (req.method === "GET") return json(res, 200, scale());
    if (req.method !== "PATCH") return refuse(res, 405, `method ${req.method}`);
    if (req.headers["content-type"] !== "application/merge-patch+json") return refuse(res, 415, `content type ${req.headers["content-type"]}`);
    let body: any;
    try {
      body = JSON.parse(req.body);
    } catch {
      return refuse(res, 400, "body is not JSON");
    }
    const n = body?.spec?.replicas;
    if (!Number.isInteger(n) || n < 0 || Object.keys(body).length !== 1 || Object.keys(body.spec).length !== 1) return refuse(res, 422, `bad body ${req.body}`);
    api.replicas = n;
    api.patches.push({ at: req.at, replicas: n, instance: req.headers["x-autoscale-instance"] as string | undefined, fencing: req.headers["x-autoscale-fencing-token"] as string | undefined });
    return json(res, 200, scale());
  }, opts.tls);
  return Object.assign(api, server);
}

export interface RedisServer {
  port: number;
  process: ChildProcess;
  stop(): Promise<void>;
  start(): Promise<void>;
}

/** A throwaway redis-server on a free port (no persistence); stop() and start() keep the port. */
export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  const dir = tempDir("redis");
  const r = {} as RedisServer;
  r.port = port;
  r.start = async () => {
    r.process = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], { stdio: "ignore" });
    for (let i = 0; i < 50; i++) {
      try {
        execFileSync("redis-cli", ["-p", String(port), "ping"], { stdio: "pipe" });
        return;
      } catch {
        await sleep(100);
      }
    }
    throw new Error("redis-server did not start");
  };
  r.stop = () =>
    new Promise((resolve) => {
      if (r.process.exitCode !== null) return resolve();
      r.process.once("exit", () => resolve());
      r.process.kill("SIGKILL");
    });
  await r.start();
  return r;
}

export function redisCli(port: number, ...args: string[]): string {
  return execFileSync("redis-cli", ["-p", String(port), ...args], { encoding: "utf8" }).trim();
}
