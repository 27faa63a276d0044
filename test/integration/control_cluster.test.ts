// Three gateway instances sharing one real redis-server act as one autoscaler: exactly one
// sends signals, another takes over within the lease time when its nginx is SIGKILLed, no two
// act in the same interval (the receiver records sender and fencing token), and a Redis outage
// under load fails no request, shows the degraded mode and ends with leadership resumed.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { startTraffic } from "../../src/cli/traffic.js";
import { Gateway, eventually, pool, sleep, startGateway, startTestBackends } from "./harness.js";
import { json, RedisServer, redisCli, startRedis, startServer, TestServer } from "./control_servers.js";

let backends: Awaited<ReturnType<typeof startTestBackends>>;
let redis: RedisServer;
let receiver: TestServer;
const LEASE_MS = 3000;

before(async () => {
  backends = await startTestBackends([{ delay: 0.002 }, { delay: 0.002 }]);
  redis = await startRedis();
  receiver = await startServer((_r, res) => json(res, 200, { ok: true }));
});
after(async () => {
  await receiver.close();
  await redis.stop();
  await backends.stop();
});

interface Signal {
  at: number;
  instance: string;
  fencing: number;
}

function signals(): Signal[] {
  return receiver.requests.map((r) => ({ at: r.at, instance: String(r.headers["x-autoscale-instance"]), fencing: Number(r.headers["x-autoscale-fencing-token"]) }));
}

/** Each instance's signals form one unbroken run, and fencing tokens never go down. */
function assertOneActorAtATime(list: Signal[]): void {
  const seen = new Set<string>();
  for (let i = 0; i < list.length; i++) {
    const s = list[i];
    if (i > 0) {
      assert.ok(s.fencing >= list[i - 1].fencing, `fencing token went down: ${JSON.stringify(list.slice(i - 1, i + 1))}`);
      if (s.instance !== list[i - 1].instance) {
        assert.ok(!seen.has(s.instance), `${s.instance} acted again after another instance: two actors`);
        assert.ok(s.fencing > list[i - 1].fencing, "a new actor has a new lease");
      }
    }
    seen.add(s.instance);
  }
}

function killNginx(gw: Gateway): void {
  const master = gw.nginx.process.pid!;
  let workers: string[] = [];
  try {
    workers = execFileSync("pgrep", ["-P", String(master)], { encoding: "utf8" }).trim().split("\n").filter(Boolean);
  } catch {
    workers = [];
  }
  for (const pid of [...workers, String(master)]) {
    try {
      process.kill(Number(pid), "SIGKILL");
    } catch {
      // already gone
    }
  }
}

test("three instances: one leader sends, a standby takes over after SIGKILL, Redis outage holds and recovers", async (t) => {
  const gws: Gateway[] = [];
  for (const id of ["gw-a", "gw-b", "gw-c"]) {
    gws.push(
      await startGateway({
        redis: { host: "127.0.0.1", port: redis.port },
        cluster: { instance_id: id, lease_ms: LEASE_MS, interval: 0.5, stale_after: 2 },
        pools: {
          // One peer and min_replicas 2: every leader asks for 2, again each resend_interval.
          api: pool([backends.ports[0]], {
            scaling: { min_replicas: 2, max_replicas: 4, target: { metric: "requests_per_second", value: 1000 }, actuator: { type: "webhook", url: `${receiver.url}/scale`, resend_interval: 1 } },
          }),
        },
        routes: [{ name: "api", match: { prefix: "/" }, pool: "api" }],
      }),
    );
  }
  t.after(async () => {
    for (const g of gws) await g.stop();
  });
  const traffic = gws.map((g) => startTraffic(`${g.url}/x`, 2, 5));
  try {
    await eventually("signals from a leader", 10000, async () => (receiver.requests.length >= 3 ? true : undefined));
    await sleep(2000);
    const first = signals();
    const leaderId = first[0].instance;
    assert.deepEqual([...new Set(first.map((s) => s.instance))], [leaderId], "exactly one instance sends");
    const leader = gws[["gw-a", "gw-b", "gw-c"].indexOf(leaderId)];
    const ls = await leader.status();
    assert.equal(ls.control.mode, "leader");
    assert.equal(ls.control.live_instances, 3, "the leader sums the three instances' windows");
    assert.equal(ls.pools.api.scaling.last_decision.scope, "cluster");
    for (const g of gws.filter((g) => g !== leader)) {
      const s = await g.status();
      assert.equal(s.control.mode, "standby");
      assert.equal(s.control.leader, leaderId);
    }

    // SIGKILL the leader's nginx: a standby takes over within the lease time.
    const killedAt = Date.now();
    killNginx(leader);
    const others = gws.filter((g) => g !== leader);
    const next = await eventually("a new leader's signal", LEASE_MS + 5000, async () => signals().find((s) => s.at > killedAt && s.instance !== leaderId));
    const takeover = next.at - killedAt;
    t.diagnostic(`takeover: first signal of the new leader ${takeover} ms after SIGKILL (lease ${LEASE_MS} ms)`);
    assert.ok(takeover <= LEASE_MS + 1500, `takeover took ${takeover} ms`);
    const newLeader = others[["gw-a", "gw-b", "gw-c"].filter((id) => id !== leaderId).indexOf(next.instance)];
    await eventually("the dead instance drops out", 5000, async () => ((await newLeader.status()).control.live_instances === 2 ? true : undefined));
    assertOneActorAtATime(signals());

    // Redis down under load: nothing fails, every instance says degraded and holds.
    await redis.stop();
    const downAt = Date.now();
    for (const g of others) {
      await eventually("degraded mode in status", 5000, async () => {
        const s = await g.status();
        return s.control.mode === "degraded" && s.control.redis === "down" && s.control.acting === false ? true : undefined;
      });
    }
    await sleep(2000);
    const duringOutage = signals().filter((s) => s.at > downAt + 1000);
    assert.equal(duringOutage.length, 0, "hold: no instance acts while Redis is down");
    await redis.start();
    const upAt = Date.now();
    await eventually("leadership resumes", 10000, async () => (signals().some((s) => s.at > upAt) ? true : undefined));
    assert.equal(redisCli(redis.port, "EXISTS", "autoscale:leader"), "1");
    assertOneActorAtATime(signals());
    const log = others.map((g) => g.errorLog()).join("\n");
    assert.ok(log.split("\n").some((l) => l.includes('"event":"mode"') && l.includes('"mode":"degraded"') && l.includes("[alert]")), "the degraded mode is alerted");
    assert.doesNotMatch(log, /control loop failed|stack traceback/);
  } finally {
    const stats = [];
    for (const tr of traffic) stats.push(await tr.stop());
    // The killed instance's clients saw errors by design; the two that lived saw none.
    const survivors = stats.filter((_s, i) => gws[i].nginx.process.signalCode === null);
    for (const s of survivors) {
      assert.equal(s.errors, 0);
      assert.deepEqual(Object.keys(s.byStatus), ["200"]);
    }
  }
});
