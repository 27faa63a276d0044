// The Docker image and the compose demo, with testcontainers against a real dockerd
// (scripts/docker-setup.sh starts one and makes the base image when needed; scripts/test.sh runs
// it). Builds the image, runs it as a gateway in front of backend containers, reads its status,
// stops it with requests in flight, compares its generated nginx.conf with `autoscale run`'s,
// and brings docker-compose.yml up until the webhook receiver logs a scale signal.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DockerComposeEnvironment, GenericContainer, Network, StartedNetwork, StartedTestContainer, Wait } from "testcontainers";
import { projectRoot } from "../../src/cli/paths.js";
import { generateNginxConf } from "../../src/cli/nginx_conf.js";
import { httpRequest } from "../../src/cli/http_util.js";
import { eventually, freePort, sleep, tempDir } from "./harness.js";

process.env.TESTCONTAINERS_RYUK_DISABLED ??= "true";
process.env.TESTCONTAINERS_HOST_OVERRIDE ??= "localhost";

const IMAGE = process.env.AUTOSCALE_TEST_IMAGE ?? "lua-resty-autoscale:test";
const TOKEN = "admin-token-from-a-mounted-file-42";
const CA_DIR = "/usr/local/share/ca-certificates";

/** Extra CAs of this machine (a TLS-intercepting proxy in front of the npm registry), for the build stage. */
function extraCaCerts(): string {
  if (process.env.EXTRA_CA_CERTS !== undefined) return process.env.EXTRA_CA_CERTS;
  if (!existsSync(CA_DIR)) return "";
  return readdirSync(CA_DIR)
    .filter((f) => f.endsWith(".crt"))
    .map((f) => readFileSync(join(CA_DIR, f), "utf8").trim())
    .join("\n");
}

function docker(args: string[]): string {
  return execFileSync("docker", args, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
}

/** A file the container's non-root user can read through a bind mount. */
function shareableDir(name: string): string {
  const dir = tempDir(name);
  chmodSync(dir, 0o755);
  return dir;
}

let network: StartedNetwork;
const started: StartedTestContainer[] = [];
const dirs: string[] = [];

async function startBackend(delay: number, name: string): Promise<{ container: StartedTestContainer; ip: string }> {
  const container = await new GenericContainer(IMAGE)
    .withNetwork(network)
    .withCommand(["backend", String(delay)])
    .withEnvironment({ BACKEND_NAME: name })
    .withHealthCheck({ test: ["CMD", "autoscale-healthcheck"], interval: 500, timeout: 2000, retries: 20, startPeriod: 0 })
    .withWaitStrategy(Wait.forHealthCheck())
    .start();
  started.push(container);
  return { container, ip: container.getIpAddress(network.getName()) };
}

async function startGateway(config: unknown, opts: { waitForImageHealthcheck?: boolean } = {}): Promise<StartedTestContainer> {
  const dir = shareableDir("dockercfg");
  dirs.push(dir);
  writeFileSync(join(dir, "autoscale.json"), JSON.stringify(config, null, 2));
  writeFileSync(join(dir, "admin_token"), `${TOKEN}\n`);
  chmodSync(join(dir, "autoscale.json"), 0o644);
  chmodSync(join(dir, "admin_token"), 0o644);
  let gw = new GenericContainer(IMAGE)
    .withNetwork(network)
    .withBindMounts([
      { source: join(dir, "autoscale.json"), target: "/etc/autoscale/autoscale.json", mode: "ro" },
      { source: join(dir, "admin_token"), target: "/run/secrets/admin_token", mode: "ro" },
    ])
    .withEnvironment({ AUTOSCALE_ADMIN_LISTEN: "0.0.0.0:9180", AUTOSCALE_ADMIN_TOKEN_FILE: "/run/secrets/admin_token", AUTOSCALE_WORKERS: "2" })
    .withExposedPorts(8080, 9180)
    .withWaitStrategy(Wait.forHealthCheck())
    .withStartupTimeout(60000);
  if (!opts.waitForImageHealthcheck) {
    gw = gw.withHealthCheck({ test: ["CMD", "autoscale-healthcheck"], interval: 500, timeout: 2000, retries: 20, startPeriod: 0 });
  }
  const container = await gw.start();
  started.push(container);
  return container;
}

const urlOf = (c: StartedTestContainer, port: number) => `http://${c.getHost()}:${c.getMappedPort(port)}`;
const auth = { authorization: `Bearer ${TOKEN}` };

before(async () => {
  const info = spawnSync("docker", ["info"], { encoding: "utf8" });
  if (info.status !== 0) throw new Error("no Docker daemon: run `bash scripts/docker-setup.sh up` (scripts/test.sh does)");
  await GenericContainer.fromDockerfile(projectRoot)
    .withBuildArgs({ EXTRA_CA_CERTS: extraCaCerts() })
    .build(IMAGE, { deleteOnExit: false });
  network = await new Network().start();
});

after(async () => {
  for (const c of started.reverse()) await c.stop({ timeout: 5000 }).catch(() => undefined);
  await network?.stop().catch(() => undefined);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test("the image: nginx and the compiled Lua without Node, a non-root user, a health check", (t) => {
  const [inspect] = JSON.parse(docker(["image", "inspect", IMAGE]));
  assert.equal(inspect.Config.User, "autoscale");
  assert.deepEqual(inspect.Config.Healthcheck.Test, ["CMD", "autoscale-healthcheck"]);
  assert.deepEqual(inspect.Config.Entrypoint, ["autoscale-entrypoint"]);
  const probe = spawnSync("docker", ["run", "--rm", "--entrypoint", "bash", IMAGE, "-c", "command -v node npm; id -u; test -f /usr/local/share/lua/5.1/resty/autoscale/init.lua && echo lua-ok"], { encoding: "utf8" });
  assert.equal(probe.stdout, "10001\nlua-ok\n", probe.stderr);
  const mb = inspect.Size / 1e6;
  t.diagnostic(`image ${IMAGE}: ${mb.toFixed(1)} MB`);
  // 127 MB here (a 106 MB debootstrap base); a Node runtime left in the final stage would pass 150.
  assert.ok(mb < 150, `image size ${mb.toFixed(1)} MB`);
});

test("the entrypoint generates the nginx.conf that `autoscale run` generates", () => {
  const dir = shareableDir("dockerconf");
  dirs.push(dir);
  const config = {
    listen: 8080,
    pools: { api: { peers: [{ host: "10.0.0.2", port: 80 }] }, web: { peers: [{ host: "10.0.0.3", port: 80 }], balancer: "round_robin" } },
    routes: [{ name: "api", match: { prefix: "/api" }, pool: "api" }, { name: "home", match: { exact: "/" }, pool: "web" }],
  };
  writeFileSync(join(dir, "autoscale.json"), JSON.stringify(config));
  chmodSync(join(dir, "autoscale.json"), 0o644);
  const fromImage = docker(["run", "--rm", "-e", "AUTOSCALE_ADMIN_LISTEN=0.0.0.0:9180", "-v", `${join(dir, "autoscale.json")}:/etc/autoscale/autoscale.json:ro`, IMAGE, "conf"]);
  const modules = ["/usr/share/nginx/modules/ndk_http_module.so", "/usr/share/nginx/modules/ngx_http_lua_module.so"];
  const fromNode = generateNginxConf(config as any, { prefix: "/var/lib/autoscale", runtime: { binary: "nginx", loadModules: modules }, errorLog: "stderr notice", accessLog: "/dev/stdout combined buffer=32k flush=1s", adminListen: "0.0.0.0:9180" })
    .replace(/^    include .*$/m, "    include /usr/local/share/lua-resty-autoscale/nginx/autoscale.conf;");
  // The resolver comes from each machine's /etc/resolv.conf: compare everything else exactly.
  const machineFree = (conf: string) => conf.replace(/^    resolver .*\n/m, "");
  assert.equal(machineFree(fromImage), machineFree(fromNode));
  assert.match(fromImage, /lua_ssl_trusted_certificate \/etc\/ssl\/certs\/ca-certificates\.crt;/, "the image trusts the system CAs");
});

test("a gateway container balances over backend containers, counts, signals, and logs decisions as JSON", async () => {
  const backends = [await startBackend(0.01, "fast-a"), await startBackend(0.01, "fast-b"), await startBackend(0.05, "slow")];
  const receiver = await new GenericContainer(IMAGE)
    .withNetwork(network)
    .withCommand(["webhook-receiver"])
    .withHealthCheck({ test: ["CMD", "autoscale-healthcheck"], interval: 500, timeout: 2000, retries: 20, startPeriod: 0 })
    .withWaitStrategy(Wait.forHealthCheck())
    .start();
  started.push(receiver);
  const gw = await startGateway(
    {
      metrics: { windows: [2, 60] },
      pools: {
        api: {
          peers: backends.map((b) => ({ host: b.ip, port: 8080 })),
          balancer: "ewma",
          scaling: { min_replicas: 1, max_replicas: 10, interval: 1, window: 2, target: { metric: "requests_per_second", value: 5 }, actuator: { type: "webhook", url: `http://${receiver.getIpAddress(network.getName())}:8080/scale` } },
        },
      },
      routes: [{ name: "api", match: { prefix: "/api" }, pool: "api" }],
    },
    { waitForImageHealthcheck: true },
  );
  const [state] = JSON.parse(docker(["inspect", gw.getId()]));
  assert.equal(state.State.Health.Status, "healthy", "the image's own HEALTHCHECK passed");

  const names = new Set<string>();
  let next = 0;
  const client = async () => {
    while (next < 120) {
      next++;
      const r = await httpRequest(`${urlOf(gw, 8080)}/api/item`, { headers: { connection: "close" } });
      assert.equal(r.status, 200);
      names.add(r.body.trim());
    }
  };
  await Promise.all([client(), client(), client(), client()]);
  assert.deepEqual([...names].sort(), ["backend fast-a", "backend fast-b", "backend slow"]);
  const unmatched = await httpRequest(`${urlOf(gw, 8080)}/elsewhere`);
  assert.equal(unmatched.status, 404);

  const denied = await httpRequest(`${urlOf(gw, 9180)}/autoscale/status`);
  assert.equal(denied.status, 401, "the token from the mounted file is required");
  const status: any = await eventually("counts flushed", 5000, async () => {
    const r = await httpRequest(`${urlOf(gw, 9180)}/autoscale/status`, { headers: auth });
    const s = JSON.parse(r.body);
    return s.routes.api.windows["60s"].requests === 120 && s.routes.unmatched.windows["60s"].requests === 1 ? s : undefined;
  });
  assert.equal(status.workers, 2);
  assert.equal(status.config, "/var/lib/autoscale/autoscale.json");
  assert.equal(status.pools.api.peers.reduce((n: number, p: any) => n + p.windows["60s"].requests, 0), 120);
  const metrics = await httpRequest(`${urlOf(gw, 9180)}/metrics`, { headers: auth });
  assert.equal(metrics.status, 200);
  assert.match(metrics.body, /^autoscale_route_requests_total\{route="api"\} 120$/m);
  assert.match(metrics.body, /^autoscale_route_requests_total\{route="unmatched"\} 1$/m);

  // The access log goes to stdout (buffered, flushed every second); the admin server's polls and
  // health checks stay out of it.
  const accessLines = await eventually("the access log on stdout", 5000, async () => {
    const lines = spawnSync("docker", ["logs", gw.getId()], { encoding: "utf8" }).stdout.split("\n").filter((l) => l !== "");
    return lines.filter((l) => / "GET \/api\/item HTTP\/1\.[01]" 200 /.test(l)).length === 120 ? lines : undefined;
  });
  assert.equal(accessLines.filter((l) => / "GET \/elsewhere HTTP\/1\.[01]" 404 /.test(l)).length, 1);
  assert.equal(accessLines.length, 121, "only the proxy's requests are logged");

  const signal = await eventually("a scale signal at the receiver", 15000, async () =>
    docker(["logs", receiver.getId()]).split("\n").find((l) => l.startsWith("scale signal received: POST /scale ")),
  );
  const body = JSON.parse(signal.slice("scale signal received: POST /scale ".length));
  assert.equal(body.pool, "api");
  assert.equal(body.current, 3);
  const logs = spawnSync("docker", ["logs", gw.getId()], { encoding: "utf8" });
  const decision = logs.stderr.split("\n").find((l) => l.includes("autoscale_event {") && l.includes('"event":"action"') && l.includes('"outcome":"sent"'));
  assert.ok(decision, "the action is logged on stderr as one JSON line");
  const logged = JSON.parse(decision!.slice(decision!.indexOf("{"), decision!.lastIndexOf("}") + 1));
  assert.equal(logged.decision_id, body.decision_id);
  assert.doesNotMatch(logs.stdout + logs.stderr, new RegExp(TOKEN), "the token never reaches the logs");
  const user = await gw.exec(["bash", "-c", "stat -c %U /proc/$(cat /var/lib/autoscale/logs/nginx.pid)"]);
  assert.equal(user.output.trim(), "autoscale", "nginx's master runs as the image's user");

  // SIGHUP with a config the gateway cannot read: the reload is refused, the running nginx keeps
  // serving with the config it has.
  const mounted = join(dirs[dirs.length - 1], "autoscale.json");
  chmodSync(mounted, 0o600); // root's file: unreadable for the image's user
  try {
    docker(["kill", "--signal", "HUP", gw.getId()]);
    await eventually("the refused reload in the log", 5000, async () =>
      spawnSync("docker", ["logs", gw.getId()], { encoding: "utf8" }).stderr.includes("autoscale: reload refused") || undefined,
    );
    assert.equal(JSON.parse(docker(["inspect", gw.getId()]))[0].State.Running, true);
    assert.equal((await httpRequest(`${urlOf(gw, 8080)}/api/after-hup`)).status, 200);
  } finally {
    chmodSync(mounted, 0o644);
  }
});

test("docker stop (SIGTERM) lets in-flight requests finish, then the container exits 0", async () => {
  const slow = await startBackend(2, "slow-2s");
  const gw = await startGateway({ pools: { api: { peers: [{ host: slow.ip, port: 8080 }] } }, routes: [{ name: "api", match: { prefix: "/" }, pool: "api" }] });
  const inFlight = Array.from({ length: 8 }, (_, i) => httpRequest(`${urlOf(gw, 8080)}/job/${i}`, { headers: { connection: "close" }, timeoutMs: 15000 }));
  await sleep(700); // the requests reach the 2 s backend; the stop comes while they wait for it
  await gw.stop({ timeout: 30000, remove: false }); // milliseconds
  const answers = await Promise.all(inFlight);
  assert.deepEqual(answers.map((a) => a.status), Array(8).fill(200));
  assert.ok(answers.every((a) => a.body.trim() === "backend slow-2s"));
  const [state] = JSON.parse(docker(["inspect", gw.getId()]));
  assert.equal(state.State.ExitCode, 0);
  const logs = spawnSync("docker", ["logs", gw.getId()], { encoding: "utf8" });
  assert.match(logs.stderr, /gracefully shutting down/);
  docker(["rm", "-f", gw.getId()]);
});

test("docker-compose.yml: the demo comes up and the webhook receiver logs a scale signal", async () => {
  const env = await new DockerComposeEnvironment(projectRoot, "docker-compose.yml")
    .withProjectName("autoscaledemo")
    .withClientOptions({ executable: { standalone: true, executablePath: "docker-compose" } })
    .withEnvironment({
      AUTOSCALE_IMAGE: IMAGE,
      AUTOSCALE_DEMO_PORT: String(await freePort()),
      AUTOSCALE_DEMO_ADMIN_PORT: String(await freePort()),
      EXTRA_CA_CERTS: extraCaCerts(),
    })
    .withWaitStrategy("autoscaledemo_gateway_1", Wait.forHealthCheck())
    .withStartupTimeout(180000)
    .up();
  try {
    const gateway = env.getContainer("autoscaledemo_gateway_1");
    const receiver = env.getContainer("autoscaledemo_webhook_1");
    // Before the traffic client starts, the idle pool may be signalled down to min_replicas; the
    // demo's point is the scale-up signal under the traffic.
    const signal = await eventually("a scale-up signal in the receiver's log", 30000, async () =>
      docker(["logs", receiver.getId()])
        .split("\n")
        .filter((l) => l.startsWith("scale signal received: POST /scale "))
        .map((l) => JSON.parse(l.slice(l.indexOf("{"))))
        .find((s) => s.desired > s.current),
    );
    assert.equal(signal.pool, "api");
    assert.equal(signal.current, 3);
    assert.equal(typeof signal.reason, "string");
    assert.ok(signal.desired > signal.current && signal.desired <= 20, `a scale-up within max_replicas (desired ${signal.desired})`);
    const r = await httpRequest(`http://${gateway.getHost()}:${gateway.getMappedPort(8080)}/api/hello`);
    assert.equal(r.status, 200);
    assert.match(r.body, /^backend (fast|medium|slow)/);
    const status: any = await eventually("the cluster-wide limit on the demo's Redis", 10000, async () => {
      const r = await httpRequest(`http://127.0.0.1:${gateway.getMappedPort(9180)}/autoscale/status`, { headers: { authorization: "Bearer demo-admin-token-change-me" } });
      const s = JSON.parse(r.body);
      return s.admission?.redis?.mode === "cluster" ? s : undefined;
    });
    assert.equal(status.admission.redis.address, "10.251.77.14:6379");
    assert.deepEqual(status.pools.api.peers.map((p: any) => p.address), ["10.251.77.11:8080", "10.251.77.12:8080", "10.251.77.13:8080"]);
  } finally {
    await env.down({ timeout: 5000 });
  }
});
