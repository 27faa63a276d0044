// `autoscale backtest`: parses the arguments, runs the simulation (compiled Lua under LuaJIT,
// src/backtest/simulate.ts), prints a table or the JSON, and writes the report and the chart.
import { writeFileSync } from "node:fs";
import { runLuaMain } from "./lua.js";

const USAGE = `usage: autoscale backtest --trace FILE [--policy FILE] [--peak-replicas N] [--provision-delay S]
                          [--capacity RPS] [--slo S] [--hpa-utilization U] [--json]
                          [--report FILE.json] [--chart FILE.svg|FILE.html]
`;

interface PolicyResult {
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

interface Report {
  trace: { file: string; rows: number; seconds: number; peakRate: number; scale: number; peakReplicasNeeded: number };
  capacity: number;
  provisionDelay: number;
  policies: PolicyResult[];
}

const VALUE_OPTIONS = ["--trace", "--policy", "--peak-replicas", "--provision-delay", "--capacity", "--slo", "--hpa-utilization"];

export async function backtestCommand(args: string[]): Promise<number> {
  const luaArgs: string[] = [];
  let json = false;
  let reportFile: string | undefined;
  let chartFile: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--json") json = true;
    else if (a === "--report" || a === "--chart") {
      const v = args[++i];
      if (v === undefined) return usage(`${a}: expected a file name`);
      if (a === "--report") reportFile = v;
      else chartFile = v;
    } else if (VALUE_OPTIONS.includes(a)) {
      const v = args[++i];
      if (v === undefined) return usage(`${a}: expected a value`);
      luaArgs.push(a, v);
    } else if (a === "-h" || a === "--help") {
      process.stdout.write(USAGE);
      return 0;
    } else return usage(`unknown option "${a}"`);
  }
  if (!luaArgs.includes("--trace")) return usage("--trace FILE is required");
  if (chartFile !== undefined) luaArgs.push("--series");
  const r = runLuaMain("resty.autoscale.backtest.simulate", luaArgs);
  if (r.status !== 0) {
    process.stderr.write(r.stderr);
    return r.status;
  }
  const report = JSON.parse(r.stdout) as Report;
  if (chartFile !== undefined) {
    writeFileSync(chartFile, chartFile.endsWith(".html") ? `<!doctype html><meta charset="utf-8"><title>autoscale backtest</title><body style="font-family:sans-serif">${chart(report)}</body>\n` : chart(report));
    for (const p of report.policies) delete p.series;
  }
  if (reportFile !== undefined) writeFileSync(reportFile, JSON.stringify(report, null, 2) + "\n");
  if (json) process.stdout.write(JSON.stringify(report) + "\n");
  else process.stdout.write(table(report));
  return 0;
}

function usage(message: string): number {
  process.stderr.write(`autoscale backtest: ${message}\n${USAGE}`);
  return 2;
}

function table(rep: Report): string {
  const t = rep.trace;
  const lines = [
    `trace ${t.file}: ${t.rows} rows, ${(t.seconds / 3600).toFixed(1)} h, peak ${t.peakRate} rps x ${t.scale.toFixed(3)} = ${t.peakReplicasNeeded} replicas of ${rep.capacity} rps; provisioning delay ${rep.provisionDelay} s`,
    "",
    ["policy", "overloaded min", "over SLO %", "replica-hours", "scale actions", "max shortfall", "peak replicas"].map((h, i) => (i === 0 ? h.padEnd(22) : h.padStart(14))).join(""),
  ];
  for (const p of rep.policies) {
    lines.push(
      p.name.padEnd(22) +
        [p.overloadedMinutes, (p.sloViolationShare * 100).toFixed(2), p.replicaHours.toFixed(1), p.scaleActions, p.largestShortfall.toFixed(1), p.peakReplicas]
          .map((v) => String(v).padStart(14))
          .join(""),
    );
  }
  return lines.join("\n") + "\n";
}

/** A self-contained SVG: demand (in replicas of capacity), ready and asked-for replicas per minute. */
function chart(rep: Report): string {
  const W = 1200;
  const H = 260;
  const pad = 40;
  const runs = rep.policies.filter((p) => p.series !== undefined && p.name !== "static-peak");
  const n = runs[0]?.series?.demand.length ?? 0;
  let top = 1;
  for (const p of runs) for (const k of ["demand", "ready", "replicas"] as const) for (const v of p.series![k]) top = Math.max(top, v);
  const x = (i: number) => pad + (i / Math.max(1, n - 1)) * (W - 2 * pad);
  const y = (v: number) => H - pad + 10 - (v / top) * (H - 2 * pad);
  const line = (vals: number[], color: string) => {
    const step = Math.max(1, Math.floor(vals.length / 2000));
    const pts: string[] = [];
    for (let i = 0; i < vals.length; i += step) pts.push(`${x(i).toFixed(1)},${y(vals[i]).toFixed(1)}`);
    return `<polyline fill="none" stroke="${color}" stroke-width="1" points="${pts.join(" ")}"/>`;
  };
  const panels = runs.map((p, k) => {
    const s = p.series!;
    return `<g transform="translate(0,${k * H})"><text x="${pad}" y="20" font-size="14">${p.name}: ${p.overloadedMinutes} overloaded min, ${p.replicaHours.toFixed(1)} replica-hours, ${p.scaleActions} actions</text>` +
      `<line x1="${pad}" y1="${y(0)}" x2="${W - pad}" y2="${y(0)}" stroke="#999"/><text x="4" y="${y(top) + 4}" font-size="10">${top.toFixed(0)}</text>` +
      line(s.replicas, "#9ab") + line(s.ready, "#1a7f37") + line(s.demand, "#d1242f") + `</g>`;
  });
  const legend = `<text x="${pad}" y="${runs.length * H + 16}" font-size="12"><tspan fill="#d1242f">demand (replicas of capacity)</tspan>  <tspan fill="#1a7f37">ready replicas</tspan>  <tspan fill="#9ab">replicas asked for</tspan>  (x: ${(n / 60).toFixed(0)} h, one point per minute)</text>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${runs.length * H + 30}" viewBox="0 0 ${W} ${runs.length * H + 30}"><rect width="100%" height="100%" fill="white"/>${panels.join("")}${legend}</svg>\n`;
}
