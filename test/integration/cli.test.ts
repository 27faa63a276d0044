// The `autoscale` command as a user runs it: `run` in the foreground stopped by SIGTERM or by
// Ctrl-C (SIGINT to the terminal's whole process group) without cutting a request in flight,
// and `demo`, the README's first command, end to end.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { httpRequest } from "../../src/cli/http_util.js";
import { projectRoot } from "../../src/cli/paths.js";
import { startBackends } from "../../src/cli/backends.js";
import { eventually, freePort, pool, runtime, tempDir } from "./harness.js";

const cli = join(projectRoot, "bin", "autoscale.js");

interface Cli {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | string>;
}

/** Starts the CLI in its own process group, as a shell starts a foreground job. */
function startCli(args: string[]): Cli {
  const child = spawn(process.execPath, [cli, ...args], { detached: true, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | string>((resolve) => child.on("exit", (code, signal) => resolve(code ?? signal ?? -1)));
  return { child, output: () => out, exited };
}

/** Pids of live processes whose command line mentions `needle` (nginx masters and workers). */
function processesMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      if (cmd.includes(needle)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** The nginx masters running with `prefix` (in their command line) and their workers. */
function nginxFamily(prefix: string): number[] {
  const masters = processesMentioning(prefix);
  const workers = masters.flatMap((pid) => {
    try {
      return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  });
  return [...masters, ...workers];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function runConfig(backendPorts: number[]) {
  const dir = tempDir("cli");
  const port = await freePort();
  const adminPort = await freePort();
  const file = join(dir, "autoscale.json");
  writeFileSync(file, JSON.stringify({ listen: port, admin: { listen: `127.0.0.1:${adminPort}` }, pools: { api: pool(backendPorts) }, routes: [{ name: "api", match: { prefix: "/" }, pool: "api" }] }));
  return { dir, file, url: `http://127.0.0.1:${port}`, adminUrl: `http://127.0.0.1:${adminPort}` };
}

// A backend slow enough that a request is surely in flight when the signal comes.
let slow: { ports: number[]; stop(): Promise<number> };
before(async () => {
  const port = await freePort();
  const dir = tempDir("slow");
  const nginx = startBackends(runtime, dir, [{ port, delay: 1.5 }]);
  slow = { ports: [port], stop: () => nginx.stop().then((code) => (rmSync(dir, { recursive: true, force: true }), code)) };
  await eventually("the slow backend answers", 20000, async () => ((await httpRequest(`http://127.0.0.1:${port}/`, { timeoutMs: 5000 })).status === 200 ? true : undefined));
});
after(() => slow.stop());

for (const how of ["SIGTERM to the command", "Ctrl-C: SIGINT to the process group"]) {
  test(`autoscale run stops gracefully on ${how}: the request in flight is answered, no nginx is left`, async () => {
    const c = await runConfig(slow.ports);
    const prefix = join(c.dir, "prefix");
    const run = startCli(["run", "--config", c.file, "--prefix", prefix]);
    try {
      await eventually("the gateway answers", 20000, async () => ((await httpRequest(`${c.adminUrl}/healthz`, { timeoutMs: 1000 })).status === 200 ? true : undefined));
      const masterPid = Number(readFileSync(join(prefix, "logs", "nginx.pid"), "utf8"));
      const family = nginxFamily(prefix);
      assert.ok(family.length >= 2, "master and worker run");
      const inFlight = httpRequest(`${c.url}/slow`, { timeoutMs: 10000 });
      await eventually("the request reached the backend", 5000, async () => {
        const s = (await httpRequest(`${c.adminUrl}/autoscale/status`)).body;
        return JSON.parse(s).routes.api.inflight >= 1 ? true : undefined;
      });
      if (how.startsWith("SIGTERM")) run.child.kill("SIGTERM");
      else process.kill(-run.child.pid!, "SIGINT");
      const answer = await inFlight;
      assert.equal(answer.status, 200);
      assert.match(answer.body, /^backend /);
      assert.equal(await run.exited, 0, run.output());
      assert.ok(family.includes(masterPid));
      assert.deepEqual(family.filter(alive), [], "no nginx process is left");
    } finally {
      if (run.child.exitCode === null) process.kill(-run.child.pid!, "SIGKILL");
      rmSync(c.dir, { recursive: true, force: true });
    }
  });
}

/** A base port for the demo: it also uses base+1..3 (backends), +920 (webhook), +1100 (admin). */
async function freeDemoBase(): Promise<number> {
  const { createServer } = await import("node:net");
  const free = (p: number) =>
    new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.once("error", () => resolve(false));
      srv.listen(p, "127.0.0.1", () => srv.close(() => resolve(true)));
    });
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20000 + Math.floor(Math.random() * 30000);
    let ok = true;
    for (const off of [0, 1, 2, 3, 920, 1100]) if (!(await free(base + off))) ok = false;
    if (ok) return base;
  }
  throw new Error("no free port range for the demo");
}

test("autoscale demo (the README's first command): URLs, weight shift, a scale signal; Ctrl-C stops every process", async () => {
  const base = await freeDemoBase();
  const dir = tempDir("demo");
  const prefix = join(dir, "demo");
  const demo = startCli(["demo", "--port", String(base), "--prefix", prefix]);
  try {
    await eventually("the demo prints its URLs", 30000, async () => (demo.output().includes("Sending traffic") ? true : undefined));
    const out = demo.output();
    assert.match(out, new RegExp(`gateway +http://127\\.0\\.0\\.1:${base}/api/`));
    assert.match(out, new RegExp(`status \\(JSON\\) +http://127\\.0\\.0\\.1:${base + 1100}/autoscale/status`));
    assert.match(out, new RegExp(`webhook +http://127\\.0\\.0\\.1:${base + 920}/scale`));
    for (const off of [1, 2, 3]) assert.match(out, new RegExp(`http://127\\.0\\.0\\.1:${base + off}/`));
    const signal = await eventually("a scale signal arrives", 30000, async () => /^>>> scale signal received: pool=api current=3 desired=(\d+)$/m.exec(demo.output()) ?? undefined);
    assert.ok(Number(signal[1]) > 3, `scale up, got desired=${signal[1]}`);
    // The status lines: "[ Ns] addr share  N% ... | addr share  N% ... | addr share  N% ...".
    await eventually("the slow backend's share falls below a third of each fast one's", 30000, async () => {
      const lines = demo.output().split("\n").filter((l) => l.startsWith("["));
      const shares = [...(lines[lines.length - 1] ?? "").matchAll(/share +(\d+)%/g)].map((m) => Number(m[1]));
      return shares.length === 3 && shares[2] * 3 < shares[0] && shares[2] * 3 < shares[1] ? shares : undefined;
    });
    const family = nginxFamily(prefix);
    assert.ok(family.length >= 4, `gateway and backend nginx, masters and workers, run (${family})`);
    process.kill(-demo.child.pid!, "SIGINT");
    assert.equal(await demo.exited, 0, demo.output());
    assert.match(demo.output(), /stopped; \d+ scale signal\(s\) received/);
    assert.deepEqual(family.filter(alive), [], "no nginx process is left");
    const left = await httpRequest(`http://127.0.0.1:${base}/api/`, { timeoutMs: 1000 }).then(
      () => "answered",
      () => "refused",
    );
    assert.equal(left, "refused");
  } finally {
    if (demo.child.exitCode === null) process.kill(-demo.child.pid!, "SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
});
