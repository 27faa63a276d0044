// The cosocket HTTP/1.1 and Redis clients, run inside real nginx against a real Node HTTP
// server and a real redis-server.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer, Server } from "node:http";
import { spawn, ChildProcess } from "node:child_process";
import { httpRequest } from "../../src/cli/http_util.js";
import { freePort, Gateway, pool, startGateway, startTestBackends, eventually } from "./harness.js";

let server: Server;
let serverPort: number;
let gw: Gateway;
let luaPort: number;
let redisPort: number;
let redis: ChildProcess;
let backends: Awaited<ReturnType<typeof startTestBackends>>;

function startServer(): Promise<void> {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString();
      switch (url.pathname) {
        case "/len":
          res.writeHead(201, { "content-type": "text/plain", "x-twice": ["a", "b"] });
          res.end(`${req.method} ${body} ${req.headers["x-test"] ?? ""} ${req.headers["content-length"] ?? "-"}`);
          return;
        case "/chunked":
          res.writeHead(200, { "transfer-encoding": "chunked", trailer: "x-end" });
          res.write("hello ");
          res.write("chunked ");
          res.addTrailers({ "x-end": "yes" });
          res.end("world");
          return;
        case "/close":
          res.socket?.write("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end", () => res.socket?.end());
          return;
        case "/keep":
          // The client's port tells whether the connection was reused.
          res.writeHead(200, { "content-type": "text/plain" });
          res.end(String(req.socket.remotePort));
          return;
        case "/bigchunked":
          res.writeHead(200, { "transfer-encoding": "chunked" });
          for (let i = 0; i < 4; i++) res.write(Buffer.alloc(512, 98));
          res.end();
          return;
        case "/big":
          res.writeHead(200, { "content-length": 2 * 1024 * 1024 });
          res.end(Buffer.alloc(2 * 1024 * 1024, 97));
          return;
        case "/slow":
          setTimeout(() => res.end("late"), 1500);
          return;
        case "/garbage":
          res.socket?.write("NOT HTTP AT ALL\r\n\r\n", () => res.socket?.end());
          return;
        default:
          res.writeHead(404);
          res.end();
      }
    });
  });
  return new Promise((resolve) => server.listen(serverPort, "127.0.0.1", () => resolve()));
}

const LUA_SERVER = (port: number, redisPort: number) => `
    server {
        listen 127.0.0.1:${port};
        location /http {
            content_by_lua_block {
                local http = require("resty.autoscale.net.http")
                local cjson = require("cjson.safe")
                local args = ngx.req.get_uri_args()
                local headers = { ["X-Test"] = "yes", ["Bad\\r\\nInjected"] = "no" }
                local res, err = http.request({ method = args.method or "GET", url = args.url, headers = headers,
                    body = args.body, timeoutMs = tonumber(args.timeout) or 1000, maxBodyBytes = tonumber(args.max) })
                ngx.say(cjson.encode({ status = res and res.status, body = res and res.body,
                    headers = res and res.headers, err = err }))
            }
        }
        location /redis {
            content_by_lua_block {
                local redis = require("resty.autoscale.net.redis")
                local cjson = require("cjson.safe")
                local out = {}
                local conn, err = redis.connect({ host = "127.0.0.1", port = tonumber(ngx.var.arg_port) or ${redisPort}, timeoutMs = 500 })
                if not conn then ngx.say(cjson.encode({ connect_error = err })) return end
                out.set = redis.command(conn, { "SET", "k", "v 1\\r\\n" })
                out.get = redis.command(conn, { "GET", "k" })
                out.missing = redis.command(conn, { "GET", "nothing-here" }) or cjson.null
                out.incr = redis.command(conn, { "INCRBY", "n", 5 })
                local _, e = redis.command(conn, { "LPUSH", "k", "x" })
                out.wrongtype = e
                out.pipe = redis.pipeline(conn, { { "RPUSH", "q", "a", "b", "c" }, { "LLEN", "q" }, { "LRANGE", "q", 0, -1 } })
                local script = "return {KEYS[1], ARGV[1], tonumber(ARGV[2]) * 2}"
                local sha = redis.scriptSha1(script)
                redis.command(conn, { "SCRIPT", "FLUSH" })
                out.eval1 = redis.evalScript(conn, script, sha, { "key" }, { "arg", 21 })
                out.eval2 = redis.evalScript(conn, script, sha, { "key" }, { "arg", 4 })
                out.sha = sha
                redis.command(conn, { "DEL", "k", "n", "q" })
                redis.release(conn)
                ngx.say(cjson.encode(out))
            }
        }
    }
`;

before(async () => {
  serverPort = await freePort();
  luaPort = await freePort();
  redisPort = await freePort();
  await startServer();
  redis = spawn("redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
  backends = await startTestBackends([{ delay: 0 }]);
  gw = await startGateway({ pools: { api: pool(backends.ports) }, routes: [{ name: "api", match: { prefix: "/" }, pool: "api" }] }, { workers: 1, extraHttp: LUA_SERVER(luaPort, redisPort) });
  await eventually("redis up", 5000, async () => {
    const r = await httpRequest(`http://127.0.0.1:${luaPort}/redis`);
    return JSON.parse(r.body).connect_error === undefined ? true : undefined;
  });
});

after(async () => {
  await gw?.stop();
  await backends?.stop();
  redis?.kill("SIGTERM");
  server?.closeAllConnections();
  server?.close();
});

async function viaLua(params: Record<string, string | number>): Promise<any> {
  const q = new URLSearchParams(Object.fromEntries(Object.entries(params).map(([k, v]) => [k, String(v)])));
  const r = await httpRequest(`http://127.0.0.1:${luaPort}/http?${q}`, { timeoutMs: 10000 });
  assert.equal(r.status, 200, r.body);
  return JSON.parse(r.body);
}

test("http client: content-length body, status, headers, request body and no header injection", async () => {
  const r = await viaLua({ url: `http://127.0.0.1:${serverPort}/len`, method: "POST", body: "payload" });
  assert.equal(r.err, undefined);
  assert.equal(r.status, 201);
  assert.equal(r.body, "POST payload yes 7");
  assert.equal(r.headers["content-type"], "text/plain");
  assert.equal(r.headers["x-twice"], "a, b");
});

test("http client: chunked body with a trailer, and a body delimited by close", async () => {
  const chunked = await viaLua({ url: `http://127.0.0.1:${serverPort}/chunked` });
  assert.equal(chunked.err, undefined);
  assert.equal(chunked.body, "hello chunked world");
  const closed = await viaLua({ url: `http://127.0.0.1:${serverPort}/close` });
  assert.equal(closed.err, undefined);
  assert.equal(closed.body, "until the end");
});

test("http client: connections are kept alive and reused from the cosocket pool", async () => {
  const first = await viaLua({ url: `http://127.0.0.1:${serverPort}/keep` });
  const second = await viaLua({ url: `http://127.0.0.1:${serverPort}/keep` });
  assert.equal(first.err, undefined);
  assert.match(first.body, /^\d+$/);
  assert.equal(second.body, first.body, "the second request came on the first one's connection");
  // A response delimited by closing the connection takes the pooled one and ends it.
  await viaLua({ url: `http://127.0.0.1:${serverPort}/close` });
  const third = await viaLua({ url: `http://127.0.0.1:${serverPort}/keep` });
  assert.notEqual(third.body, first.body, "a closed connection is not handed out again");
});

test("http client: errors name what went wrong", async () => {
  const big = await viaLua({ url: `http://127.0.0.1:${serverPort}/big`, max: 1024 });
  assert.match(big.err, /response body of 2097152 bytes exceeds 1024 bytes/);
  const bigChunked = await viaLua({ url: `http://127.0.0.1:${serverPort}/bigchunked`, max: 1024 });
  assert.match(bigChunked.err, /response body exceeds 1024 bytes/);
  const slow = await viaLua({ url: `http://127.0.0.1:${serverPort}/slow`, timeout: 300 });
  assert.match(slow.err, /timeout/);
  const refused = await viaLua({ url: `http://127.0.0.1:${await freePort()}/` });
  assert.match(refused.err, /connect to 127\.0\.0\.1:\d+ failed: connection refused/);
  const garbage = await viaLua({ url: `http://127.0.0.1:${serverPort}/garbage` });
  assert.match(garbage.err, /malformed status line .*NOT HTTP AT ALL/);
  const badUrl = await viaLua({ url: "ftp://example.com/" });
  assert.match(badUrl.err, /expected an http:\/\/ or https:\/\/ URL/);
});

test("redis client: commands, binary-safe values, nil, errors, pipelines and scripts", async () => {
  const r = await httpRequest(`http://127.0.0.1:${luaPort}/redis`);
  const out = JSON.parse(r.body);
  assert.equal(out.set, "OK");
  assert.equal(out.get, "v 1\r\n");
  assert.equal(out.missing, null);
  assert.equal(out.incr, 5);
  assert.match(out.wrongtype, /^redis: WRONGTYPE/);
  assert.deepEqual(out.pipe, [3, 3, ["a", "b", "c"]]);
  assert.deepEqual(out.eval1, ["key", "arg", 42], "EVALSHA falls back to EVAL after NOSCRIPT");
  assert.deepEqual(out.eval2, ["key", "arg", 8]);
  assert.match(out.sha, /^[0-9a-f]{40}$/);
});

test("redis client: a refused connection is an error, not a crash", async () => {
  const r = await httpRequest(`http://127.0.0.1:${luaPort}/redis?port=${await freePort()}`);
  assert.match(JSON.parse(r.body).connect_error, /redis connect to 127\.0\.0\.1:\d+ failed: connection refused/);
});
