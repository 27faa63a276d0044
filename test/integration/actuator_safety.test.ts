// The actuators' safety net on real nginx: a Kubernetes token rotated on disk is picked up on the
// 401 without a failed action; a breaker per actuator keeps a failing API from being hammered
// while other pools keep acting; an unchanged value is not sent again until its resend interval;
// failed reads of the current count are logged, counted and shown; a dry run logs the request it
// would send; and the KEDA metrics-api documents.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync, chmodSync } from "node:fs";
import { join } from "node:path";
import { startTraffic } from "../../src/cli/traffic.js";
import { httpRequest } from "../../src/cli/http_util.js";
import { eventually, pool, sleep, startGateway, startTestBackends, tempDir, autoscaleEvents as events, assertNoLoopErrors } from "./harness.js";
import { json, startKubeApi, startServer } from "./control_servers.js";

let backends: Awaited<ReturnType<typeof startTestBackends>>;
before(async () => {
  backends = await startTestBackends([{ delay: 0.002 }]);
  Object.assign(process.env, { TEST_DRY_KEY: "AKIDDRYRUNEXAMPLE", TEST_DRY_SECRET: "dry-secret-Pl9Ok8Ij7Uh6Yg5T" });
});
after(async () => {
  await backends.stop();
  delete process.env.TEST_DRY_KEY;
  delete process.env.TEST_DRY_SECRET;
});



test("a Kubernetes token rotated on disk: the 401 re-reads it and the same attempt succeeds", async (t) => {
  const OLD = "old-kube-token-Rt5Yu8Io2Pa4";
  const NEW = "new-kube-token-Qw3Er6Ty9Ui1";
  const file = join(tempDir("rotate"), "token");
  writeFileSync(file, OLD + "\n");
  chmodSync(file, 0o644);
  const kube = await startKubeApi({ namespace: "shop", name: "api", token: OLD, replicas: 1 });
  t.after(() => kube.close());
  const gw = await startGateway({
    pools: {
      api: pool(backends.ports, {
        scaling: {
          min_replicas: 1,
          max_replicas: 4,
          target: { metric: "requests_per_second", value: 20 },
          actuator: { type: "kubernetes", api_url: kube.url, namespace: "shop", name: "api", token: { file }, retry: { attempts: 1 } },
        },
      }),
    },
    routes: [{ name: "api", match: { prefix: "/" }, pool: "api" }],
  });
  t.after(() => gw.stop());
  // The old token is read and cached (60 s) by the first GET.
  await eventually("current replicas read", 10000, async () => ((await gw.status()).pools.api.scaling.last_decision?.current === 1 ? true : undefined));
  // The kubelet rotates the token: the API server accepts only the new one from now on.
  writeFileSync(file, NEW + "\n");
  kube.token = NEW;
  const traffic = startTraffic(`${gw.url}/x`, 8);
  try {
    await eventually("a scale-out PATCH with the new token", 15000, async () => kube.patches[0]);
  } finally {
    await traffic.stop();
  }
  const log = gw.errorLog();
  assert.ok(kube.refusals.length >= 1 && kube.refusals.every((r) => r === "wrong or missing bearer token"), `refusals: ${kube.refusals}`);
  assert.deepEqual(events(log, "action_failure"), [], "the rotation costs no failed action");
  const action = events(log, "action")[0];
  assert.equal(action.outcome, "sent");
  assert.equal(action.attempts, 1, "re-sent within the one allowed attempt");
  assert.equal(events(log, "credentials_reread")[0]?.pool, "api");
  assert.ok(!log.includes(OLD) && !log.includes(NEW), "no token in the error log");
  assertNoLoopErrors(log);
});

test("breaker per actuator, resend interval, read failures and dry run: each logged, counted and in the status", async (t) => {
  const failing = await startServer((_r, res) => json(res, 500, { error: { code: 500, message: "backend error" } }));
  t.after(() => failing.close());
  const ok = await startServer((_r, res) => json(res, 200, { ok: true }));
  t.after(() => ok.close());
  // A Kubernetes API whose GET of the scale fails: the current count can never be read.
  const unreadable = await startServer((_r, res) => json(res, 500, { kind: "Status", message: "etcd unavailable", code: 500 }));
  t.after(() => unreadable.close());
  // Enough of AWS Auto Scaling for the dry run to read the group's size.
  const aws = await startServer((_r, res) => {
    res.writeHead(200, { "content-type": "text/xml" });
    res.end("<DescribeAutoScalingGroupsResponse><DescribeAutoScalingGroupsResult><AutoScalingGroups><member><AutoScalingGroupName>web-asg</AutoScalingGroupName><DesiredCapacity>1</DesiredCapacity></member></AutoScalingGroups></DescribeAutoScalingGroupsResult></DescribeAutoScalingGroupsResponse>");
  });
  t.after(() => aws.close());
  const tokenFile = join(tempDir("read"), "token");
  writeFileSync(tokenFile, "read-token-Zx8Cv5Bn2Mm7");
  chmodSync(tokenFile, 0o644);
  const scaling = (actuator: Record<string, unknown>) => ({ scaling: { min_replicas: 2, max_replicas: 4, target: { metric: "requests_per_second", value: 1000 }, actuator } });
  const gw = await startGateway({
    pools: {
      down: pool(backends.ports, scaling({ type: "webhook", url: `${failing.url}/down`, retry: { attempts: 2, base_ms: 10, max_ms: 20 }, breaker: { failures: 2, open_seconds: 60 } })),
      up: pool(backends.ports, scaling({ type: "webhook", url: `${ok.url}/up` })),
      resend: pool(backends.ports, scaling({ type: "webhook", url: `${ok.url}/resend`, resend_interval: 1 })),
      unread: pool(backends.ports, scaling({ type: "kubernetes", api_url: unreadable.url, namespace: "shop", name: "api", token: { file: tokenFile } })),
      dry: pool(backends.ports, scaling({ type: "aws_asg", group: "web-asg", region: "eu-west-3", endpoint: `${aws.url}/`, dry_run: true, credentials: { access_key_id: { env: "TEST_DRY_KEY" }, secret_access_key: { env: "TEST_DRY_SECRET" } } })),
    },
    routes: [{ name: "r", match: { prefix: "/" }, pool: "up" }],
  });
  t.after(() => gw.stop());
  await eventually("the failing actuator's breaker opened", 15000, async () => ((await gw.status()).pools.down.scaling.loop?.breaker === "open" ? true : undefined));
  await eventually("the resend pool sent the same value again", 15000, async () => (ok.requests.filter((r) => r.path === "/resend").length >= 2 ? true : undefined));
  await sleep(2500);
  const s = await gw.status();
  const log = gw.errorLog();

  // Breaker: two actions of two attempts each, then nothing while it is open.
  assert.equal(failing.requests.length, 4, "no request to the failing API once its breaker is open");
  const down = s.pools.down.scaling;
  assert.equal(down.actions.failed, 2);
  assert.equal(down.actions.retried, 2);
  assert.ok(down.actions.breaker_open >= 1);
  assert.equal(down.last_action.outcome, "breaker_open");
  assert.equal(down.last_action.event, "action_skipped");
  assert.match(down.last_action.last_error, /HTTP 500/);
  assert.ok(down.last_action.retry_in > 0 && down.last_action.retry_in <= 60);
  assert.ok(events(log, "decision").some((d) => d.pool === "down" && d.action === "breaker_open" && d.breaker === "open"));
  // The other pools have their own breakers and were not held back.
  assert.equal(s.pools.up.scaling.loop.breaker, "closed");
  assert.equal(s.pools.up.scaling.last_action.outcome, "sent");

  // Idempotency: the default resend interval (300 s) sends a value once; 1 s sends it again.
  assert.equal(ok.requests.filter((r) => r.path === "/up").length, 1);
  const resent = ok.requests.filter((r) => r.path === "/resend").map((r) => JSON.parse(r.body).desired);
  assert.ok(resent.length >= 2 && resent.every((d) => d === 2), `resent: ${resent}`);

  // A failed read of the current count: a line, a counter, the status; no blind action.
  const reads = events(log, "read_failure").filter((e) => e.pool === "unread");
  assert.ok(reads.length >= 1);
  assert.equal(reads[0].actuator, "kubernetes");
  assert.match(reads[0].error, /HTTP 500.*etcd unavailable/);
  assert.equal(s.pools.unread.scaling.actions.read_failed, reads.length);
  assert.match(s.pools.unread.scaling.loop.current_error, /etcd unavailable/);
  assert.equal(s.pools.unread.scaling.actions.sent + s.pools.unread.scaling.actions.failed, 0);
  assert.ok(unreadable.requests.every((r) => r.method === "GET"));

  // Dry run: the request it would send, with no credential in it; nothing sent.
  const dry = s.pools.dry.scaling.last_action;
  assert.equal(dry.outcome, "dry_run");
  assert.equal(dry.request.method, "POST");
  assert.equal(dry.request.url, `${aws.url}/`);
  assert.match(dry.request.body, /^Action=SetDesiredCapacity&Version=2011-01-01&AutoScalingGroupName=web-asg&DesiredCapacity=2&HonorCooldown=false$/);
  assert.ok(aws.requests.length >= 1 && aws.requests.every((r) => r.body.includes("Action=DescribeAutoScalingGroups")), "only reads reach AWS");
  assert.ok(!log.includes(process.env.TEST_DRY_SECRET!), "no AWS secret in the error log");

  // The same counters on /metrics.
  const metrics = (await httpRequest(`${gw.adminUrl}/metrics`)).body;
  assert.match(metrics, /^autoscale_scale_actions_total\{pool="down",outcome="failed"\} 2$/m);
  assert.match(metrics, /^autoscale_scale_actions_total\{pool="down",outcome="retried"\} 2$/m);
  assert.match(metrics, /^autoscale_scale_actions_total\{pool="down",outcome="breaker_open"\} [1-9]\d*$/m);
  assert.match(metrics, new RegExp(`^autoscale_scale_actions_total\\{pool="unread",outcome="read_failed"\\} [1-9]\\d*$`, "m"));
  assert.match(metrics, /^autoscale_scale_actions_total\{pool="dry",outcome="dry_run"\} 1$/m);
  assertNoLoopErrors(log);
});

test("KEDA metrics-api: per pool and per route, behind the admin token", async (t) => {
  const hook = await startServer((_r, res) => json(res, 200, { ok: true }));
  t.after(() => hook.close());
  const ADMIN = "admin-token-Lk4Jh7Gf0Ds3Aq6W";
  const gw = await startGateway({
    admin: { token: ADMIN },
    pools: { api: pool(backends.ports, { scaling: { min_replicas: 2, max_replicas: 4, target: { metric: "requests_per_second", value: 1000 }, window: 10, actuator: { type: "webhook", url: `${hook.url}/scale` } } }) },
    routes: [{ name: "shop", match: { prefix: "/" }, pool: "api" }],
  });
  t.after(() => gw.stop());
  const auth = { authorization: `Bearer ${ADMIN}` };
  for (let i = 0; i < 30; i++) assert.equal((await httpRequest(`${gw.url}/x${i}`)).status, 200);
  const poolDoc = await eventually("the pool's rate counts the requests", 10000, async () => {
    const r = await httpRequest(`${gw.adminUrl}/autoscale/keda/pools/api`, { headers: auth });
    assert.equal(r.status, 200, r.body);
    const d = JSON.parse(r.body);
    // All 30 requests flushed (every worker flushes each second) and the loop decided.
    return d.value === 30 / 10 && d.desired_replicas === 2 ? d : undefined;
  });
  assert.equal(poolDoc.pool, "api");
  assert.equal(poolDoc.window, 10);
  assert.equal(poolDoc.requests_per_second, poolDoc.value);
  assert.equal(poolDoc.error_ratio, 0);
  const routeDoc = await eventually("the route's rate", 10000, async () => {
    const d = JSON.parse((await httpRequest(`${gw.adminUrl}/autoscale/keda/routes/shop`, { headers: auth })).body);
    return Math.abs(d.value * d.window - 30) < 1e-6 ? d : undefined;
  });
  assert.equal(routeDoc.route, "shop");
  assert.equal(routeDoc.requests_per_second, routeDoc.value);
  assert.equal((await httpRequest(`${gw.adminUrl}/autoscale/keda/pools/api`)).status, 401, "the admin token is required");
  assert.equal((await httpRequest(`${gw.adminUrl}/autoscale/keda/pools/nope`, { headers: auth })).status, 404);
  assert.equal((await httpRequest(`${gw.adminUrl}/autoscale/keda/routes/nope`, { headers: auth })).status, 404);
});
