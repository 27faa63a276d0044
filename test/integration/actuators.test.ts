// Every actuator against a real server speaking its API's contract, through the gateway's
// control loop: AWS Auto Scaling (SigV4 verified with the AWS SDK's signer, a wrong signature
// refused with 403), Azure VM Scale Sets, GCP managed instance groups and a webhook whose
// receiver verifies the HMAC. Secrets come from environment variables (the generated nginx.conf
// passes them with `env`) and never reach the error log.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { SignatureV4 } from "@smithy/signature-v4";
import { Hash } from "@smithy/hash-node";
import { httpRequest } from "../../src/cli/http_util.js";
import { eventually, pool, startGateway, startTestBackends } from "./harness.js";
import { json, Recorded, startServer } from "./control_servers.js";

const AWS_KEY = "AKIDEXAMPLE7TESTKEY";
const AWS_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const AWS_SESSION = "FQoGZXIvYXdzEXAMPLEsessionTOKEN0123456789";
const AZURE_TOKEN = "azure-token-9Yk2Lp0QwE7rT5uI";
const GCP_TOKEN = "gcp-token-Vb8Nm3Zx1Cq6Wd4R";
const HOOK_SECRET = "hook-secret-Hj5Kl9Mn2Bv7Gf3D";

let backends: Awaited<ReturnType<typeof startTestBackends>>;
before(async () => {
  backends = await startTestBackends([{ delay: 0 }]);
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: AWS_KEY, AWS_SECRET_ACCESS_KEY: AWS_SECRET, AWS_SESSION_TOKEN: AWS_SESSION, TEST_AZURE_TOKEN: AZURE_TOKEN, TEST_GCP_TOKEN: GCP_TOKEN, TEST_HOOK_SECRET: HOOK_SECRET });
});
after(async () => {
  await backends.stop();
  for (const k of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "TEST_AZURE_TOKEN", "TEST_GCP_TOKEN", "TEST_HOOK_SECRET"]) delete process.env[k];
});

/** Recomputes the SigV4 Authorization of a received request with the AWS SDK's signer. */
async function sdkSignature(req: Recorded, port: number): Promise<string | undefined> {
  const auth = String(req.headers.authorization ?? "");
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m || m[1] !== AWS_KEY) return undefined;
  const signed = m[5].split(";");
  const headers: Record<string, string> = {};
  for (const h of signed) if (h !== "x-amz-date" && req.headers[h] !== undefined) headers[h] = String(req.headers[h]);
  const amzDate = String(req.headers["x-amz-date"]);
  const date = new Date(`${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`);
  const signer = new SignatureV4({ credentials: { accessKeyId: AWS_KEY, secretAccessKey: AWS_SECRET, sessionToken: AWS_SESSION }, region: m[3], service: m[4], sha256: Hash.bind(null, "sha256"), applyChecksum: signed.includes("x-amz-content-sha256") });
  const url = new URL(req.path, `http://127.0.0.1:${port}`);
  const out = await signer.sign(
    { method: req.method, protocol: "http:", hostname: "127.0.0.1", port, path: url.pathname, query: Object.fromEntries(url.searchParams), headers, body: req.body },
    { signingDate: date, signableHeaders: new Set(signed) },
  );
  return String(out.headers.authorization ?? out.headers.Authorization);
}

test("AWS, Azure, GCP and webhook actuators: each server checks the contract; the gateway gets 200", async (t) => {
  let asgDesired = 1;
  const awsRefusals: string[] = [];
  const aws = await startServer(async (req, res) => {
    const expected = await sdkSignature(req, aws.port);
    if (expected === undefined || expected !== req.headers.authorization || req.headers["x-amz-security-token"] !== AWS_SESSION) {
      awsRefusals.push(String(req.headers.authorization));
      if (process.env.DEBUG_SIGV4) console.log(JSON.stringify({ expected, got: req.headers.authorization, headers: req.headers, path: req.path, body: req.body }));
      res.writeHead(403, { "content-type": "text/xml" });
      return res.end("<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided.</Message></Error><RequestId>r-1</RequestId></ErrorResponse>");
    }
    const form = new URLSearchParams(req.body);
    if (req.method !== "POST" || req.path !== "/" || form.get("Version") !== "2011-01-01") {
      res.writeHead(400);
      return res.end("<ErrorResponse><Error><Code>InvalidAction</Code><Message>bad request</Message></Error></ErrorResponse>");
    }
    res.writeHead(200, { "content-type": "text/xml" });
    if (form.get("Action") === "DescribeAutoScalingGroups" && form.get("AutoScalingGroupNames.member.1") === "web-asg") {
      return res.end(`<DescribeAutoScalingGroupsResponse><DescribeAutoScalingGroupsResult><AutoScalingGroups><member><AutoScalingGroupName>web-asg</AutoScalingGroupName><DesiredCapacity>${asgDesired}</DesiredCapacity></member></AutoScalingGroups></DescribeAutoScalingGroupsResult></DescribeAutoScalingGroupsResponse>`);
    }
    if (form.get("Action") === "SetDesiredCapacity" && form.get("AutoScalingGroupName") === "web-asg" && form.get("HonorCooldown") === "false") {
      asgDesired = Number(form.get("DesiredCapacity"));
      return res.end("<SetDesiredCapacityResponse><ResponseMetadata><RequestId>r-2</RequestId></ResponseMetadata></SetDesiredCapacityResponse>");
    }
    return res.end("<Unexpected/>");
  });
  t.after(() => aws.close());

  let vmssCapacity = 1;
  const azurePath = "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg-web/providers/Microsoft.Compute/virtualMachineScaleSets/web-vmss?api-version=2024-07-01";
  const azure = await startServer((req, res) => {
    if (req.path !== azurePath) return json(res, 404, { error: { code: "ResourceNotFound", message: req.path } });
    if (req.headers.authorization !== `Bearer ${AZURE_TOKEN}`) return json(res, 401, { error: { code: "InvalidAuthenticationToken", message: "bad token" } });
    if (req.method === "GET") return json(res, 200, { name: "web-vmss", sku: { name: "Standard_D2s_v3", capacity: vmssCapacity } });
    const body = JSON.parse(req.body || "{}");
    if (req.method !== "PATCH" || req.headers["content-type"] !== "application/json" || Object.keys(body).join() !== "sku" || !Number.isInteger(body.sku?.capacity)) return json(res, 400, { error: { code: "InvalidRequest", message: req.body } });
    vmssCapacity = body.sku.capacity;
    return json(res, 202, { name: "web-vmss", sku: { capacity: vmssCapacity } });
  });
  t.after(() => azure.close());

  let migSize = 1;
  const requestIds = new Set<string>();
  const gcpBase = "/compute/v1/projects/my-project/zones/us-central1-a/instanceGroupManagers/web-mig";
  const gcp = await startServer((req, res) => {
    if (req.headers.authorization !== `Bearer ${GCP_TOKEN}`) return json(res, 401, { error: { code: 401, message: "bad token" } });
    const url = new URL(req.path, "http://x");
    if (req.method === "GET" && url.pathname === gcpBase) return json(res, 200, { kind: "compute#instanceGroupManager", name: "web-mig", targetSize: migSize });
    const size = Number(url.searchParams.get("size"));
    const id = url.searchParams.get("requestId") ?? "";
    if (req.method !== "POST" || url.pathname !== `${gcpBase}/resize` || !Number.isInteger(size) || !/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(id) || req.body !== "") {
      return json(res, 400, { error: { code: 400, message: `bad resize ${req.method} ${req.path}` } });
    }
    if (!requestIds.has(id)) migSize = size;
    requestIds.add(id);
    return json(res, 200, { kind: "compute#operation", operationType: "compute.instanceGroupManagers.resize", status: "RUNNING" });
  });
  t.after(() => gcp.close());

  const hookVerdicts: string[] = [];
  const hook = await startServer((req, res) => {
    const sig = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(req.headers["x-autoscale-signature"] ?? ""));
    const body = JSON.parse(req.body);
    const expected = sig ? createHmac("sha256", HOOK_SECRET).update(`${sig[1]}.${req.body}`).digest("hex") : "";
    const keyExpected = createHash("sha256").update(`${body.pool}\n${body.desired}\n${body.decision_id}`).digest("hex");
    const ok =
      req.method === "POST" && req.path === "/hooks/scale" && req.headers["content-type"] === "application/json" && sig !== null &&
      timingSafeEqual(Buffer.from(sig[2]), Buffer.from(expected)) && Number(sig[1]) === body.timestamp &&
      Math.abs(Date.now() / 1000 - body.timestamp) < 300 && req.headers["idempotency-key"] === keyExpected;
    hookVerdicts.push(ok ? "ok" : "refused");
    return json(res, ok ? 200 : 401, { ok });
  });
  t.after(() => hook.close());

  // min_replicas 2 and every target at 1: each pool asks for 2 at once.
  const scaling = (actuator: Record<string, unknown>) => ({ min_replicas: 2, max_replicas: 5, target: { metric: "requests_per_second", value: 1000 }, actuator });
  const gw = await startGateway({
    pools: {
      aws: pool(backends.ports, { scaling: scaling({ type: "aws_asg", group: "web-asg", region: "eu-west-3", endpoint: `${aws.url}/` }) }),
      azure: pool(backends.ports, { scaling: scaling({ type: "azure_vmss", subscription_id: "00000000-1111-2222-3333-444444444444", resource_group: "rg-web", name: "web-vmss", endpoint: azure.url, token: { env: "TEST_AZURE_TOKEN" } }) }),
      gcp: pool(backends.ports, { scaling: scaling({ type: "gcp_mig", project: "my-project", zone: "us-central1-a", name: "web-mig", endpoint: gcp.url, token: { env: "TEST_GCP_TOKEN" } }) }),
      hook: pool(backends.ports, { scaling: scaling({ type: "webhook", url: `${hook.url}/hooks/scale`, secret: { env: "TEST_HOOK_SECRET" } }) }),
    },
    routes: [{ name: "r", match: { prefix: "/" }, pool: "aws" }],
  });
  t.after(() => gw.stop());

  try {
    await eventually("every target scaled to 2", 15000, async () => (asgDesired === 2 && vmssCapacity === 2 && migSize === 2 && hookVerdicts.includes("ok") ? true : undefined));
  } catch (e) {
    const failures = gw.errorLog().split("\n").filter((l) => /action_failure|"outcome":"skipped"/.test(l)).slice(0, 8).join("\n");
    throw new Error(`${(e as Error).message}: aws ${asgDesired}, azure ${vmssCapacity}, gcp ${migSize}, hook ${hookVerdicts}, aws refusals ${awsRefusals.length}\n${failures}`);
  }
  assert.deepEqual(awsRefusals, [], "the SDK's signer agrees with every request the gateway signed");
  assert.deepEqual(hookVerdicts, ["ok"]);
  assert.equal(requestIds.size, 1);
  const s = await gw.status();
  for (const name of ["aws", "azure", "gcp", "hook"]) {
    assert.equal(s.pools[name].scaling.last_action.outcome, "sent", name);
    assert.equal(s.pools[name].scaling.actions.sent, 1, name);
  }

  // A request with a tampered signature is refused with 403 by the same endpoint.
  const signedOk = aws.requests.find((r) => r.body.includes("SetDesiredCapacity"))!;
  const tampered = String(signedOk.headers.authorization).replace(/Signature=([0-9a-f])/, (_m, c) => `Signature=${c === "0" ? "1" : "0"}`);
  const forged = await httpRequest(`${aws.url}/`, { method: "POST", headers: { ...signedOk.headers, authorization: tampered } as unknown as Record<string, string>, body: signedOk.body });
  assert.equal(forged.status, 403);

  const log = gw.errorLog();
  for (const secret of [AWS_SECRET, AWS_SESSION, AZURE_TOKEN, GCP_TOKEN, HOOK_SECRET]) assert.ok(!log.includes(secret), "no secret in the error log");
  assert.doesNotMatch(log, /control loop failed|stack traceback/);
});
