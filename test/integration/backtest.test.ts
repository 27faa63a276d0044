// `autoscale backtest` on the real traces (../shared/traces or $AUTOSCALE_TRACES) and on bad input.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = join(__dirname, "..", "..", "..", "..");
const cli = join(root, "bin", "autoscale.js");
const traces = process.env.AUTOSCALE_TRACES ?? join(root, "..", "shared", "traces");
const tmp = mkdtempSync(join(tmpdir(), "backtest-"));

function run(args: string[]) {
  return spawnSync(process.execPath, [cli, "backtest", ...args], { encoding: "utf8" });
}

interface P { name: string; overloadedMinutes: number; replicaHours: number; scaleActions: number }

for (const file of ["worldcup98_jul1998_7d.csv", "alibaba_genai_sd_requests_7d.csv"]) {
  test(`${file}: the default policy against the HPA baselines`, { skip: !existsSync(join(traces, file)) && `no ${traces}` }, () => {
    const r = run(["--trace", join(traces, file), "--peak-replicas", "20", "--provision-delay", "60", "--json"]);
    assert.equal(r.status, 0, r.stderr);
    const byName = new Map<string, P>();
    for (const p of JSON.parse(r.stdout).policies as P[]) byName.set(p.name, p);
    const ours = byName.get("default")!;
    const hpa = byName.get("hpa")!;
    const noStab = byName.get("hpa-no-stabilization")!;
    assert.equal(byName.get("static-peak")!.replicaHours, 20 * 168);
    // The targets of issue 6, all three, on both traces.
    assert.ok(ours.overloadedMinutes <= hpa.overloadedMinutes / 2, `overloaded ${ours.overloadedMinutes} vs hpa ${hpa.overloadedMinutes}`);
    assert.ok(ours.replicaHours <= hpa.replicaHours, `replica-hours ${ours.replicaHours} vs hpa ${hpa.replicaHours}`);
    assert.ok(ours.scaleActions < noStab.scaleActions, `actions ${ours.scaleActions} vs ${noStab.scaleActions}`);
  });
}

test("bad traces get errors naming the line", () => {
  const cases: Array<[string, RegExp]> = [
    ["t_seconds,requests_per_second\n0,1\n60\n", /:3: expected 2 columns \(t_seconds,requests_per_second\), got 1/],
    ["t_seconds,requests_per_second\n0,1\n120,2\n60,3\n", /:4: t_seconds: times must be sorted and distinct, got 60 after 120/],
    ["t_seconds,requests_per_second\n-60,1\n", /:2: t_seconds: expected a time >= 0, got -60/],
    ["time,rate\n0,1\n", /:1: expected the header "t_seconds,requests_per_second"/],
    ["0,abc\n", /:1: requests_per_second: expected a number, got "abc"/],
  ];
  cases.forEach(([text, want], i) => {
    const f = join(tmp, `bad${i}.csv`);
    writeFileSync(f, text);
    const r = run(["--trace", f]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, want);
  });
});

test("bad policies get errors naming the field", () => {
  const trace = join(tmp, "ok.csv");
  writeFileSync(trace, "t_seconds,requests_per_second\n0,10\n60,20\n");
  const policy = join(tmp, "policy.json");
  writeFileSync(policy, JSON.stringify({ max_replicas: 10, target: { value: 50 }, behavior: { scale_up: { polices: [] } }, predictive: { buffer: -1 } }));
  const r = run(["--trace", trace, "--policy", policy]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /behavior\.scale_up\.polices: unknown field/);
  assert.match(r.stderr, /predictive\.buffer: expected number 0-86400, got -1/);
  writeFileSync(policy, JSON.stringify({ max_replicas: 10, target: { value: 50 } }));
  const ok = run(["--trace", trace, "--policy", policy, "--json"]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.deepEqual(JSON.parse(ok.stdout).policies.map((p: P) => p.name), ["policy", "static-peak", "hpa", "hpa-no-stabilization"]);
});

test("outputs: the table, the JSON report and the chart (SVG or HTML)", () => {
  const trace = join(tmp, "ramp.csv");
  const rows = ["t_seconds,requests_per_second"];
  for (let m = 0; m < 240; m++) rows.push(`${m * 60},${m < 120 ? 50 + 10 * m : 1250 - 10 * (m - 120)}`);
  writeFileSync(trace, rows.join("\n") + "\n");
  const names = ["default", "static-peak", "hpa", "hpa-no-stabilization"];
  const table = run(["--trace", trace, "--peak-replicas", "10"]);
  assert.equal(table.status, 0, table.stderr);
  assert.match(table.stdout, /policy\s+overloaded min\s+over SLO %\s+replica-hours\s+scale actions/);
  for (const n of names) assert.match(table.stdout, new RegExp(`^${n}\\s+\\d+\\s`, "m"));
  const report = join(tmp, "report.json");
  const svg = join(tmp, "chart.svg");
  const html = join(tmp, "chart.html");
  const r = run(["--trace", trace, "--peak-replicas", "10", "--report", report, "--chart", svg, "--json"]);
  assert.equal(r.status, 0, r.stderr);
  const fromFile = JSON.parse(readFileSync(report, "utf8"));
  assert.deepEqual(fromFile.policies.map((p: P) => p.name), names);
  for (const p of fromFile.policies) {
    for (const k of ["overloadedMinutes", "sloViolationShare", "replicaHours", "scaleActions", "largestShortfall"]) assert.equal(typeof p[k], "number", `${p.name}.${k}`);
    assert.equal(p.series, undefined, "the chart's series stay out of the report");
  }
  assert.equal(fromFile.policies[1].replicaHours, 10 * 4, "static-peak: 10 replicas for 4 h");
  assert.deepEqual(JSON.parse(r.stdout).policies, fromFile.policies);
  const chart = readFileSync(svg, "utf8");
  assert.match(chart, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  // One panel per dynamic policy, each with demand, ready and asked-for lines; no external reference.
  assert.equal((chart.match(/<polyline /g) ?? []).length, 9);
  assert.doesNotMatch(chart, /(href|src)=/);
  assert.equal(run(["--trace", trace, "--chart", html]).status, 0);
  assert.match(readFileSync(html, "utf8"), /^<!doctype html>.*<svg /s);
});
