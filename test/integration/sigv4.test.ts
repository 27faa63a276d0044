// The Lua SigV4 signer against the AWS SDK for JavaScript's signer (@smithy/signature-v4):
// generated requests (methods, paths with spaces, unicode and dot segments, repeated and
// special query parameters, headers with extra whitespace, bodies, session tokens, regions,
// services) are signed by both, and the Authorization headers must be identical.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignatureV4 } from "@smithy/signature-v4";
import { Hash } from "@smithy/hash-node";
import { runLuaMain } from "../../src/cli/lua.js";

interface Case {
  method: string;
  host: string;
  path: string;
  query: [string, string][];
  headers: Record<string, string>;
  body?: string;
  region: string;
  service: string;
  now: number;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  contentSha256Header: boolean;
  escapePath: boolean;
}

interface LuaResult {
  authorization?: string;
  headers?: Record<string, string>;
  canonicalRequest?: string;
  error?: string;
}

/** mulberry32: a small seeded generator, so a failing case can be reproduced from the seed. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = Number(process.env.SIGV4_SEED ?? 20240607);
const COUNT = Number(process.env.SIGV4_CASES ?? 600);

function makeCases(seed: number, count: number): Case[] {
  const rnd = generator(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const chance = (p: number) => rnd() < p;
  const pieces = ["a", "Z", "0", "9", "-", "_", ".", "~", " ", "  ", "é", "日本", "😀", "!", "'", "(", ")", "*", "+", ",", ";", "=", ":", "@", "$", "&", "%20", "%2F", "?x", "#", "[", "]", "ü", "\t"];
  const word = (max: number) => {
    let s = "";
    const n = 1 + Math.floor(rnd() * max);
    for (let i = 0; i < n; i++) s += pick(pieces);
    return s;
  };
  const plainWord = () => pick(["Action", "Version", "AutoScalingGroupName", "Names.member.1", "a", "b", "B", "x-y", "x_y", "key", "Key", "k"]);
  const cases: Case[] = [];
  for (let i = 0; i < count; i++) {
    const host = pick(["autoscaling.us-east-1.amazonaws.com", "example.amazonaws.com", "localhost:8443", "127.0.0.1:9000", "ec2.eu-west-3.amazonaws.com"]);
    let path = "";
    const segments = Math.floor(rnd() * 5);
    for (let s = 0; s < segments; s++) path += "/" + (chance(0.15) ? pick([".", "..", "", "a/"]) : word(4));
    if (path === "" || chance(0.2)) path += "/";
    const query: [string, string][] = [];
    const nq = Math.floor(rnd() * 6);
    for (let q = 0; q < nq; q++) {
      const key = chance(0.6) ? plainWord() : word(3);
      if (key.toLowerCase() === "x-amz-signature" || key === "__proto__") continue;
      query.push([key, chance(0.15) ? "" : word(5)]);
      if (chance(0.2)) query.push([key, word(3)]); // a repeated name
    }
    const headers: Record<string, string> = { host };
    const lowerSeen = new Set(["host"]);
    const nh = Math.floor(rnd() * 6);
    for (let h = 0; h < nh; h++) {
      const name = pick(["Content-Type", "X-Custom", "x-amz-meta-Note", "User-Agent", "Connection", "Accept", "X-Amz-Target", "Date", "X-Amz-Date", "Proxy-Authorization", "Sec-Fetch-Mode", "X-Forwarded-For", "Content-Length"]);
      if (lowerSeen.has(name.toLowerCase())) continue;
      lowerSeen.add(name.toLowerCase());
      const pad = () => pick(["", " ", "  ", "\t", " \t "]);
      headers[name] = pad() + word(3) + pick(["", "  ", " \t ", "   "]) + word(2) + pad();
    }
    if (chance(0.1)) headers["X-Amz-Content-Sha256"] = "UNSIGNED-PAYLOAD";
    const body = chance(0.4) ? undefined : chance(0.2) ? "" : "Action=SetDesiredCapacity&x=" + word(20);
    cases.push({
      method: pick(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]),
      host,
      path,
      query,
      headers,
      body,
      region: pick(["us-east-1", "eu-west-3", "ap-southeast-2", "us-gov-west-1", "cn-north-1"]),
      service: pick(["autoscaling", "ec2", "execute-api", "sts", "s3"]),
      now: 946684800 + Math.floor(rnd() * 1300000000),
      accessKeyId: pick(["AKIDEXAMPLE", "ASIAXYZ0123456789", "AKIAIOSFODNN7EXAMPLE"]),
      secretAccessKey: pick(["wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "s3cr3t+/=", "x".repeat(40)]),
      sessionToken: chance(0.3) ? "FwoGZXIvYXdzE" + word(10) + "==" : undefined,
      contentSha256Header: chance(0.3),
      escapePath: chance(0.9),
    });
  }
  return cases;
}

async function signWithSdk(c: Case): Promise<Record<string, string>> {
  const signer = new SignatureV4({
    credentials: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, sessionToken: c.sessionToken },
    region: c.region,
    service: c.service,
    sha256: Hash.bind(null, "sha256"),
    applyChecksum: c.contentSha256Header,
    uriEscapePath: c.escapePath,
  });
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of c.query) {
    const prev = query[k];
    if (prev === undefined) query[k] = v;
    else query[k] = Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  const signed = await signer.sign(
    { method: c.method, protocol: "https:", hostname: c.host, path: c.path, query, headers: { ...c.headers }, body: c.body },
    { signingDate: new Date(c.now * 1000) },
  );
  return signed.headers as Record<string, string>;
}

function lowerKeys(h: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) out[k.toLowerCase()] = v;
  return out;
}

function signWithLua(cases: Case[]): LuaResult[] {
  const dir = mkdtempSync(join(tmpdir(), "sigv4-"));
  try {
    const file = join(dir, "cases.json");
    writeFileSync(file, JSON.stringify(cases));
    const r = runLuaMain("resty.autoscale.tools.sigv4", [file]);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as LuaResult[];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("AWS documented example (get-vanilla-query-order-key-case) signs identically", async () => {
  const c: Case = {
    method: "GET",
    host: "example.amazonaws.com",
    path: "/",
    query: [["Param2", "value2"], ["Param1", "value1"]],
    headers: { Host: "example.amazonaws.com" },
    region: "us-east-1",
    service: "service",
    now: Date.UTC(2015, 7, 30, 12, 36, 0) / 1000,
    accessKeyId: "AKIDEXAMPLE",
    secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    contentSha256Header: false,
    escapePath: true,
  };
  const [lua] = signWithLua([c]);
  const expected =
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500";
  assert.equal(lua.authorization, expected);
  assert.equal(lowerKeys(await signWithSdk(c)).authorization, expected);
});

test(`${COUNT} generated requests (seed ${SEED}): Lua and the AWS SDK produce the same Authorization and headers`, async () => {
  const cases = makeCases(SEED, COUNT);
  const lua = signWithLua(cases);
  assert.equal(lua.length, cases.length);
  let withSession = 0;
  let withRepeatedKeys = 0;
  let withUnicodePath = 0;
  for (let i = 0; i < cases.length; i++) {
    const c = cases[i];
    const sdk = lowerKeys(await signWithSdk(c));
    const mine = lua[i];
    const context = `case ${i} (seed ${SEED}): ${JSON.stringify(c)}\nLua canonical request:\n${mine.canonicalRequest}`;
    assert.equal(mine.error, undefined, context);
    assert.equal(mine.authorization, sdk.authorization, context);
    assert.deepEqual(lowerKeys(mine.headers ?? {}), sdk, context);
    if (c.sessionToken) withSession++;
    if (new Set(c.query.map((q) => q[0])).size < c.query.length) withRepeatedKeys++;
    if (/[^\x00-\x7f]/.test(c.path)) withUnicodePath++;
  }
  // The generator must keep covering what the test claims to cover.
  assert.ok(withSession > COUNT / 10, `only ${withSession} cases with a session token`);
  assert.ok(withRepeatedKeys > COUNT / 20, `only ${withRepeatedKeys} cases with a repeated query name`);
  assert.ok(withUnicodePath > COUNT / 10, `only ${withUnicodePath} cases with a non-ASCII path`);
});

test("a one-character change in any input changes the signature (the comparison can fail)", async () => {
  const base: Case = {
    method: "POST",
    host: "autoscaling.eu-west-3.amazonaws.com",
    path: "/a b/é",
    query: [["Action", "DescribeAutoScalingGroups"]],
    headers: { host: "autoscaling.eu-west-3.amazonaws.com", "Content-Type": "application/x-www-form-urlencoded" },
    body: "Version=2011-01-01",
    region: "eu-west-3",
    service: "autoscaling",
    now: 1700000000,
    accessKeyId: "AKIDEXAMPLE",
    secretAccessKey: "secret",
    sessionToken: "token",
    contentSha256Header: false,
    escapePath: true,
  };
  const variants: Case[] = [
    { ...base, path: base.path + "x" },
    { ...base, query: [...base.query, ["extra", "1"]] },
    { ...base, headers: { ...base.headers, "X-Extra": "1" } },
    { ...base, body: (base.body ?? "") + "x" },
    { ...base, now: base.now + 1 },
    { ...base, region: base.region + "x" },
    { ...base, secretAccessKey: base.secretAccessKey + "x" },
    { ...base, sessionToken: base.sessionToken + "x" },
    { ...base, headers: { ...base.headers, "Content-Type": "text/plain" } },
  ];
  const lua = signWithLua([base, ...variants]);
  const seen = new Set(lua.map((r) => r.authorization));
  assert.equal(seen.size, variants.length + 1);
});
