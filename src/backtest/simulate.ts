// The backtest's simulation, run under LuaJIT by `autoscale backtest` (scripts/luarun.lua): it
// replays a request-rate trace through the compiled policy engine (the production code) and a
// simulated pool, second by second, and prints one JSON object with the results per policy.
//
// Model:
// - Demand: the trace's rate holds from its time to the next (each row is a minute's mean).
// - Pool: `current` replicas asked for; a new replica serves `provision_delay` seconds after it
//   is asked for; scaling in removes starting replicas first, then serving ones, at once.
// - Each serving replica is an M/M/1 queue with service rate `capacity`: at utilization rho the
//   p99 latency is ln(100) / (capacity (1 - rho)) and the share of requests slower than the SLO
//   is exp(-capacity (1 - rho) slo). Demand above ready capacity is refused (errors) and counts
//   as over the SLO. In-flight follows Little's law: rho / (1 - rho) per replica.
// - The policy sees what the gateway would see one second later: the request rate averaged
//   over the policy's `window`, and the last second's in-flight, p99 and error ratio.
// - HPA baselines see the request rate averaged over the last 60 s (a metrics pipeline
//   window), every 15 s (the controller's sync period).
import * as cjson from "cjson.safe";
import { Problems, describe } from "../config/check";
import { PolicyInput, evaluate, newPolicyState } from "../policy/engine";
import { PolicyConfig, validatePolicy } from "../policy/schema";

interface Trace {
  times: LuaTable<number, number>;
  rates: LuaTable<number, number>;
  n: number;
  end: number;
  peak: number;
}

interface Options {
  trace: string;
  policy?: string;
  capacity: number;
  peakReplicas?: number;
  delay: number;
  slo: number;
  /** The HPA baselines' per-replica request-rate target, as a share of capacity. */
  hpaUtilization: number;
  series: boolean;
}

function trim(s: string): string {
  return string.match(s, "^%s*(.-)%s*$")[0] ?? s;
}

/** Reads a `t_seconds,requests_per_second` CSV; errors name the line. */
export function readTrace(path: string): LuaMultiReturn<[Trace | undefined, string | undefined]> {
  const [file, openErr] = io.open(path, "r");
  if (file === undefined) return $multi(undefined, `cannot read the trace: ${openErr}`);
  const times = new LuaTable<number, number>();
  const rates = new LuaTable<number, number>();
  let n = 0;
  let lineNo = 0;
  let peak = 0;
  let headerSeen = false;
  for (const [rawLine] of file.lines()) {
    lineNo += 1;
    const line = trim(rawLine);
    if (line === "" || string.sub(line, 1, 1) === "#") continue;
    const fields: string[] = [];
    for (const [f] of string.gmatch(line + ",", "([^,]*),")) fields.push(trim(f));
    if (n === 0 && !headerSeen && tonumber(fields[0]) === undefined) {
      headerSeen = true;
      if (fields.length !== 2 || fields[0] !== "t_seconds" || fields[1] !== "requests_per_second") {
        file.close();
        return $multi(undefined, `${path}:${lineNo}: expected the header "t_seconds,requests_per_second" (or data), got ${string.format("%q", line)}`);
      }
      continue;
    }
    if (fields.length !== 2) {
      file.close();
      return $multi(undefined, `${path}:${lineNo}: expected 2 columns (t_seconds,requests_per_second), got ${fields.length}`);
    }
    const t = tonumber(fields[0]);
    const r = tonumber(fields[1]);
    if (t === undefined || t !== t) {
      file.close();
      return $multi(undefined, `${path}:${lineNo}: t_seconds: expected a number, got ${string.format("%q", fields[0])}`);
    }
    if (r === undefined || r !== r) {
      file.close();
      return $multi(undefined, `${path}:${lineNo}: requests_per_second: expected a number, got ${string.format("%q", fields[1])}`);
    }
    if (t < 0) {
      file.close();
      return $multi(undefined, `${path}:${lineNo}: t_seconds: expected a time >= 0, got ${fields[0]}`);
    }
    if (r < 0) {
      file.close();
      return $multi(undefined, `${path}:${lineNo}: requests_per_second: expected a rate >= 0, got ${fields[1]}`);
    }
    if (n > 0 && t <= times.get(n)) {
      file.close();
      return $multi(undefined, `${path}:${lineNo}: t_seconds: times must be sorted and distinct, got ${fields[0]} after ${times.get(n)}`);
    }
    n += 1;
    times.set(n, t);
    rates.set(n, r);
    if (r > peak) peak = r;
  }
  file.close();
  if (n === 0) return $multi(undefined, `${path}: no data rows (expected lines of t_seconds,requests_per_second)`);
  const step = n > 1 ? times.get(n) - times.get(n - 1) : 60;
  return $multi({ times, rates, n, end: times.get(n) + step, peak }, undefined);
}

function readJsonFile(path: string): LuaMultiReturn<[unknown, string | undefined]> {
  const [file, openErr] = io.open(path, "r");
  if (file === undefined) return $multi(undefined, `cannot read the policy: ${openErr}`);
  const text = file.read("*a") as string | undefined;
  file.close();
  if (text === undefined) return $multi(undefined, `cannot read the policy ${path}`);
  const [doc, err] = cjson.decode(text);
  if (err !== undefined) return $multi(undefined, `${path}: not valid JSON: ${err}`);
  return $multi(doc, undefined);
}

/**
 * The default policy for a pool whose replicas serve `capacity` requests per second each
 * (docs/policy.md explains each choice and its measured effect).
 */
export function defaultPolicy(capacity: number, peakNeed: number, delay: number): unknown {
  return {
    min_replicas: 1,
    max_replicas: math.max(4, math.ceil(peakNeed * 2)),
    interval: 1,
    window: 10,
    // Reactive fail-safe at 90 % of a replica.
    target: { metric: "requests_per_second", value: 0.9 * capacity },
    // Short-term forecast (smoothed per-minute level) one minute past the provisioning delay, at
    // full capacity plus the 90th percentile of its own measured errors over the last hour.
    predictive: { model: "level", provision_delay: delay, buffer: 60, target: capacity, quantile: 0.9, error_window: 60 },
    // A ramp that rose two minutes running is projected over the delay plus a minute, at 95 %.
    trend: { target: 0.95 * capacity, horizon: delay + 60, minutes: 2, max_growth: 1.25 },
    behavior: {
      // Margins above already hold the headroom: a scale-up tolerance only delays capacity.
      scale_up: { tolerance: 0 },
      // Flapping is held off on the way down: 7.5 minutes of the largest recommendation, 15 %.
      scale_down: { stabilization_window: 450, tolerance: 0.15 },
    },
    // An hour without a request (and nothing forecast): no replica at all.
    scale_to_zero: { idle: 3600 },
  };
}

interface Result {
  name: string;
  overloadedMinutes: number;
  overloadedSeconds: number;
  sloViolationShare: number;
  replicaHours: number;
  scaleActions: number;
  largestShortfall: number;
  peakReplicas: number;
  meanReplicas: number;
  series?: { demand: number[]; ready: number[]; replicas: number[] };
}

type Mode = "gateway" | "hpa" | "static";

/** One run of a policy over the trace. */
function simulate(name: string, cfg: PolicyConfig | undefined, mode: Mode, tr: Trace, scale: number, o: Options, staticReplicas: number, initialTarget: number): Result {
  const capacity = o.capacity;
  const t0 = tr.times.get(1);
  const tEnd = tr.end;
  const state = cfg === undefined ? undefined : newPolicyState(cfg);
  const interval = mode === "hpa" ? 15 : cfg === undefined ? math.huge : cfg.interval;
  const windowLen = mode === "hpa" ? 60 : cfg === undefined ? 1 : cfg.window;
  const ring = new LuaTable<number, number>();
  for (const i of $range(1, windowLen)) ring.set(i, 0);
  let ringSum = 0;
  let ringCount = 0;
  let ringPos = 1;

  // Pending launches: FIFO ring of (ready time, count).
  const pendAt = new LuaTable<number, number>();
  const pendCount = new LuaTable<number, number>();
  let pendHead = 1;
  let pendTail = 0;

  let current: number;
  if (cfg === undefined) current = staticReplicas;
  else current = math.min(cfg.max_replicas, math.max(cfg.min_replicas, math.ceil((tr.rates.get(1) * scale) / initialTarget - 1e-9)));
  let ready = current;

  const input: PolicyInput = { now: 0, current: 0, ready: 0 };
  const external = new LuaTable<string, number>();
  input.external = external;
  let lastRho = 0;
  let lastErrors = 0;

  let idx = 1;
  let nextEval = t0;
  let overloadedMinutes = 0;
  let overloadedSeconds = 0;
  let minuteOverloaded = false;
  let requests = 0;
  let overSlo = 0;
  let replicaSeconds = 0;
  let actions = 0;
  let largestShortfall = 0;
  let peakReplicas = current;
  const series = o.series ? { demand: [] as number[], ready: [] as number[], replicas: [] as number[] } : undefined;
  let mDemand = 0;
  let mReady = 0;
  let mReplicas = 0;
  let mSeconds = 0;

  for (const t of $range(t0, tEnd - 1)) {
    while (idx < tr.n && tr.times.get(idx + 1) <= t) idx += 1;
    const demand = tr.rates.get(idx) * scale;

    while (pendHead <= pendTail && pendAt.get(pendHead) <= t) {
      ready += pendCount.get(pendHead);
      pendHead += 1;
    }

    if (cfg !== undefined && state !== undefined && t >= nextEval) {
      nextEval += interval;
      input.now = t;
      input.current = current;
      input.ready = ready;
      input.requests_per_second = ringCount > 0 ? ringSum / ringCount : 0;
      if (mode === "gateway") {
        const rho = lastRho < 0.99 ? lastRho : 0.99;
        input.in_flight = ready * (rho / (1 - rho));
        input.p99_latency_ms = (1000 * 4.605) / (capacity * (1 - rho));
        input.error_ratio = lastErrors;
      }
      const [desired] = evaluate(cfg, state, input);
      if (desired !== current) {
        actions += 1;
        if (desired > current) {
          pendTail += 1;
          pendAt.set(pendTail, t + o.delay);
          pendCount.set(pendTail, desired - current);
        } else {
          let remove = current - desired;
          // Starting replicas go first (newest first), then serving ones.
          while (remove > 0 && pendTail >= pendHead) {
            const c = pendCount.get(pendTail);
            if (c <= remove) {
              remove -= c;
              pendTail -= 1;
            } else {
              pendCount.set(pendTail, c - remove);
              remove = 0;
            }
          }
          ready -= remove;
        }
        current = desired;
        if (current > peakReplicas) peakReplicas = current;
      }
    }

    // What this second looks like for users.
    const cap = ready * capacity;
    let rho = 0;
    if (demand > cap + 1e-9) {
      overloadedSeconds += 1;
      minuteOverloaded = true;
      const short = (demand - cap) / capacity;
      if (short > largestShortfall) largestShortfall = short;
      overSlo += demand;
      rho = 1;
      lastErrors = (demand - cap) / demand;
    } else {
      lastErrors = 0;
      if (cap > 0) {
        rho = demand / cap;
        overSlo += demand * math.exp(-capacity * (1 - rho) * o.slo);
      }
    }
    lastRho = rho;
    requests += demand;
    replicaSeconds += current;

    // The gateway's sliding window (and the HPA metrics window).
    if (ringCount === windowLen) ringSum -= ring.get(ringPos);
    else ringCount += 1;
    ring.set(ringPos, demand);
    ringSum += demand;
    // Adding and removing rates leaves float residue: a window of zeros must read exactly 0
    // (the gateway counts requests), or an idle pool never looks idle to scale to zero.
    if (ringSum < 1e-9) ringSum = 0;
    ringPos = (ringPos % windowLen) + 1;

    mDemand += demand / capacity;
    mReady += ready;
    mReplicas += current;
    mSeconds += 1;
    if ((t + 1 - t0) % 60 === 0 || t === tEnd - 1) {
      if (minuteOverloaded) overloadedMinutes += 1;
      minuteOverloaded = false;
      if (series !== undefined) {
        series.demand.push(math.floor((mDemand / mSeconds) * 1000 + 0.5) / 1000);
        series.ready.push(math.floor((mReady / mSeconds) * 1000 + 0.5) / 1000);
        series.replicas.push(math.floor((mReplicas / mSeconds) * 1000 + 0.5) / 1000);
      }
      mDemand = 0;
      mReady = 0;
      mReplicas = 0;
      mSeconds = 0;
    }
  }
  const seconds = tEnd - t0;
  return {
    name,
    overloadedMinutes,
    overloadedSeconds,
    sloViolationShare: requests > 0 ? overSlo / requests : 0,
    replicaHours: replicaSeconds / 3600,
    scaleActions: actions,
    largestShortfall,
    peakReplicas,
    meanReplicas: replicaSeconds / seconds,
    series,
  };
}

function parseArgs(args: string[]): LuaMultiReturn<[Options | undefined, string | undefined]> {
  const o: Options = { trace: "", capacity: 100, delay: 60, slo: 0.25, hpaUtilization: 0.8, series: false };
  let i = 0;
  while (i < args.length) {
    const a = args[i];
    const v = args[i + 1];
    if (a === "--series") {
      o.series = true;
      i += 1;
      continue;
    }
    if (v === undefined) return $multi(undefined, `${a}: expected a value`);
    if (a === "--trace") o.trace = v;
    else if (a === "--policy") o.policy = v;
    else {
      const n = tonumber(v);
      if (n === undefined || n !== n) return $multi(undefined, `${a}: expected a number, got ${string.format("%q", v)}`);
      if (a === "--capacity" && n > 0) o.capacity = n;
      else if (a === "--peak-replicas" && n >= 1 && math.floor(n) === n) o.peakReplicas = n;
      else if (a === "--provision-delay" && n >= 0 && math.floor(n) === n) o.delay = n;
      else if (a === "--slo" && n > 0) o.slo = n;
      else if (a === "--hpa-utilization" && n > 0 && n <= 1) o.hpaUtilization = n;
      else return $multi(undefined, `${a}: unknown option or value out of range (${v})`);
    }
    i += 2;
  }
  if (o.trace === "") return $multi(undefined, "--trace FILE is required");
  return $multi(o, undefined);
}

function fail(message: string): number {
  io.stderr.write(`autoscale backtest: ${message}\n`);
  return 1;
}

/** `luajit scripts/luarun.lua resty.autoscale.backtest.simulate --trace FILE [...]`. */
export function main(args: string[]): number {
  const [o, argErr] = parseArgs(args);
  if (o === undefined) return fail(argErr!);
  const [tr, traceErr] = readTrace(o.trace);
  if (tr === undefined) return fail(traceErr!);
  const scale = o.peakReplicas !== undefined && tr.peak > 0 ? (o.peakReplicas * o.capacity) / tr.peak : 1;
  const peakNeed = math.max(1, math.ceil((tr.peak * scale) / o.capacity - 1e-9));

  let raw: unknown;
  let policyName = "default";
  if (o.policy !== undefined) {
    const [doc, err] = readJsonFile(o.policy);
    if (err !== undefined) return fail(err);
    if (type(doc) !== "table") return fail(`${o.policy}: expected a JSON object (a pool's scaling section), got ${describe(doc)}`);
    raw = doc;
    policyName = "policy";
  } else {
    raw = defaultPolicy(o.capacity, peakNeed, o.delay);
  }
  const p = new Problems();
  const cfg = validatePolicy(p, "", raw);
  if (cfg === undefined) {
    const where = o.policy ?? "default policy";
    return fail(p.list.map((line) => `${where}: ${line}`).join("\n"));
  }

  // HPA baselines: a request-rate target of a share of capacity (80 % unless told), the same max.
  const hpaTarget = o.hpaUtilization * o.capacity;
  const hpaRaw = (downWindow: number): unknown => ({
    min_replicas: 1,
    max_replicas: math.max(cfg.max_replicas, peakNeed),
    interval: 15,
    window: 60,
    target: { metric: "requests_per_second", value: hpaTarget },
    behavior: { scale_down: { stabilization_window: downWindow } },
  });
  const hpa = validatePolicy(p, "", hpaRaw(300))!;
  const hpaNoStab = validatePolicy(p, "", hpaRaw(0))!;

  const results: Result[] = [
    simulate(policyName, cfg, "gateway", tr, scale, o, 0, hpaTarget),
    simulate("static-peak", undefined, "static", tr, scale, o, peakNeed, hpaTarget),
    simulate("hpa", hpa, "hpa", tr, scale, o, 0, hpaTarget),
    simulate("hpa-no-stabilization", hpaNoStab, "hpa", tr, scale, o, 0, hpaTarget),
  ];
  const report = {
    trace: { file: o.trace, rows: tr.n, seconds: tr.end - tr.times.get(1), peakRate: tr.peak, scale, peakReplicasNeeded: peakNeed },
    capacity: o.capacity,
    provisionDelay: o.delay,
    slo: o.slo,
    hpaTarget,
    policy: raw,
    policies: results,
  };
  const [text, encErr] = cjson.encode(report);
  if (text === undefined) return fail(`cannot encode the report: ${encErr}`);
  io.stdout.write(text, "\n");
  return 0;
}
