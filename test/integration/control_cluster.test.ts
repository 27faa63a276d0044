// Three gateway instances sharing one real redis-server act as one autoscaler: exactly one
// sends signals, another takes over within the lease time when its nginx is SIGKILLed, no two
// act in the same interval (the receiver records sender and fencing token), and a Redis outage
// under load fails no request, shows the degraded mode and ends with leadership resumed.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { startTraffic } from "../../src/cli/traffic.js";
import { httpRequest } from "../../src/cli/http_util.js";
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

/**
 * One actor at a time: fencing tokens never go down, a change of sender comes with a new (higher)
 * lease token, and each lease's signals form one unbroken run from one instance. An instance may
 * lead again later (after another one stopped), but only under a new lease.
 */
function assertOneActorAtATime(list: Signal[]): void {
  const seen = new Set<string>();
  for (let i = 0; i < list.length; i++) {
    const s = list[i];
    const lease = `${s.instance}@${s.fencing}`;
    if (i > 0) {
      const before = list[i - 1];
      assert.ok(s.fencing >= before.fencing, `fencing token went down: ${JSON.stringify(list.slice(i - 1, i + 1))}`);
      if (s.instance !== before.instance) assert.ok(s.fencing > before.fencing, `${s.instance} acted after ${before.instance} under the same lease: two actors`);
      if (lease !== `${before.instance}@${before.fencing}`) assert.ok(!seen.has(lease), `${lease} acted again after another lease: two actors`);
    }
    seen.add(lease);
  }
}

async function metricsText(gw: Gateway): Promise<string> {
  return (await httpRequest(`${gw.adminUrl}/metrics`)).body;
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
      assert.match(await metricsText(g), /^autoscale_leader 0$/m);
    }
    assert.match(await metricsText(leader), /^autoscale_leader 1$/m);
    assert.match(await metricsText(leader), /^autoscale_control_mode\{mode="leader"\} 1$/m);

    // Cluster-wide numbers: a fourth instance's fresh window (written as an instance would) is
    // added to the leader's sum and moves its decision; once it stops publishing it drops out.
    const fake = setInterval(() => redisCli(redis.port, "HSET", "autoscale:metrics:api", "gw-fake", `${(Date.now() / 1000).toFixed(3)}|5000|300000|0||`), 250);
    let summed: any;
    try {
      summed = await eventually("the leader sums four instances", 5000, async () => {
        const s = await leader.status();
        return s.control.live_instances === 4 && s.pools.api.scaling.last_decision.scope === "cluster" && s.pools.api.scaling.last_decision.inputs.requests_per_second >= 5000 ? s : undefined;
      });
    } finally {
      clearInterval(fake);
    }
    const ownRates = summed.pools.api.scaling.last_decision.inputs.requests_per_second - 5000;
    assert.ok(ownRates > 0, "the three real instances' rates are in the sum too");
    await eventually("a signal for the summed load", 5000, async () => (signals().length && JSON.parse(receiver.requests[receiver.requests.length - 1].body).desired === 4 ? true : undefined));
    await eventually("the silent instance drops out after stale_after", 5000, async () => ((await leader.status()).control.live_instances === 3 ? true : undefined));
    assert.deepEqual([...new Set(signals().map((s) => s.instance))], [leaderId], "still exactly one sender");

    // SIGKILL the leader's nginx: a standby takes over within the lease time.
    const killedAt = Date.now();
    killNginx(leader);
    const others = gws.filter((g) => g !== leader);
    const next = await eventually("a new leader's signal", LEASE_MS + 5000, async () => signals().find((s) => s.at > killedAt && s.instance !== leaderId));
    const takeover = next.at - killedAt;
    t.diagnostic(`takeover: first signal of the new leader ${takeover} ms after SIGKILL (lease ${LEASE_MS} ms)`);
    // The key expires at most lease_ms after the kill; the standby tries again right then (one 0.25 s tick).
    assert.ok(takeover <= LEASE_MS + 750, `takeover took ${takeover} ms`);
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
    for (const g of others) {
      const m = await metricsText(g);
      assert.match(m, /^autoscale_control_mode\{mode="degraded"\} 1$/m);
      assert.match(m, /^autoscale_leader 0$/m);
    }
    await redis.start();
    const upAt = Date.now();
    await eventually("leadership resumes", 10000, async () => (signals().some((s) => s.at > upAt) ? true : undefined));
    assert.equal(redisCli(redis.port, "EXISTS", "autoscale:leader"), "1");
    assertOneActorAtATime(signals());
    const log = others.map((g) => g.errorLog()).join("\n");
    assert.ok(log.split("\n").some((l) => l.includes('"event":"mode"') && l.includes('"mode":"degraded"') && l.includes("[alert]")), "the degraded mode is alerted");
    assert.doesNotMatch(log, /control loop failed|stack traceback/);

    // A graceful stop releases the lease: the last standby leads at once, not after lease_ms.
    const current = signals()[signals().length - 1].instance;
    const leaving = others.find((g, i) => ["gw-a", "gw-b", "gw-c"].filter((id) => id !== leaderId)[i] === current)!;
    const staying = others.find((g) => g !== leaving)!;
    const stayingId = ["gw-a", "gw-b", "gw-c"].filter((id) => id !== leaderId)[others.indexOf(staying)];
    // Its clients stop first (a stopped gateway refuses connections by design).
    await traffic[gws.indexOf(leaving)].stop();
    const stoppedAt = Date.now();
    await leaving.nginx.stop();
    assert.ok(leaving.errorLog().includes('"event":"leader_released"'), "the stopped leader released its lease");
    const handover = await eventually("the last standby's signal", LEASE_MS + 3000, async () => signals().find((s) => s.at > stoppedAt && s.instance === stayingId));
    t.diagnostic(`handover after a graceful stop: ${handover.at - stoppedAt} ms (lease ${LEASE_MS} ms)`);
    assert.ok(handover.at - stoppedAt < LEASE_MS - 1000, `handover took ${handover.at - stoppedAt} ms: the lease was not released`);
    assertOneActorAtATime(signals());
  } finally {
    const stats = [];
    for (const tr of traffic) stats.push(await tr.stop());
    // The killed instance's clients saw errors by design; the others saw none.
    const survivors = stats.filter((_s, i) => gws[i].nginx.process.signalCode === null);
    for (const s of survivors) {
      assert.equal(s.errors, 0);
      assert.deepEqual(Object.keys(s.byStatus), ["200"]);
    }
  }
});
