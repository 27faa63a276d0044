// A closed-loop load client for the balancer tests and the balancer bench report: every answer
// is recorded with its times, status, the peer that served it (the backend names its port in
// the body) and every peer nginx tried (X-Upstream-Addr header, when the gateway adds it).
import { Agent, request } from "node:http";

export interface Sample {
  /** ms since the load started */
  start: number;
  end: number;
  status: number;
  /** Port of the backend that answered (from the body), 0 when unknown. */
  servedBy: number;
  /** Ports nginx tried, in order (from X-Upstream-Addr). */
  tried: number[];
}

export interface Load {
  samples: Sample[];
  errors: number;
  t0: number;
  stop(): Promise<void>;
}

/** The header the tests add to the gateway's server block to see every try. */
export const UPSTREAM_HEADER = "add_header X-Upstream-Addr $upstream_addr always;";

export function startLoad(url: string, concurrency: number): Load {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const t0 = performance.now();
  const load: Load = { samples: [], errors: 0, t0, stop: async () => {} };
  let running = true;
  const one = () =>
    new Promise<void>((resolve) => {
      const start = performance.now() - t0;
      const req = request(url, { agent }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () => {
          const m = /^backend (\d+)/.exec(body);
          const tried = String(res.headers["x-upstream-addr"] ?? "")
            .split(/[,:\s]+/)
            .map(Number)
            .filter((n) => n > 0 && n !== 127);
          load.samples.push({ start, end: performance.now() - t0, status: res.statusCode ?? 0, servedBy: m ? Number(m[1]) : 0, tried });
          resolve();
        });
      });
      req.on("error", () => {
        load.errors++;
        setTimeout(resolve, 20);
      });
      req.end();
    });
  const loops: Promise<void>[] = [];
  for (let i = 0; i < concurrency; i++) {
    loops.push(
      (async () => {
        while (running) await one();
      })(),
    );
  }
  load.stop = async () => {
    running = false;
    await Promise.all(loops);
    agent.destroy();
  };
  return load;
}

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

export interface Summary {
  requests: number;
  p50_ms: number;
  p99_ms: number;
  /** Share of answers per backend port. */
  share: Record<number, number>;
  non2xx: number;
}

export function summarize(samples: Sample[], fromMs = 0, toMs = Infinity): Summary {
  const xs = samples.filter((s) => s.start >= fromMs && s.end <= toMs);
  const share: Record<number, number> = {};
  for (const s of xs) share[s.servedBy] = (share[s.servedBy] ?? 0) + 1;
  for (const k of Object.keys(share)) share[Number(k)] /= xs.length || 1;
  const lat = xs.map((s) => s.end - s.start);
  return { requests: xs.length, p50_ms: percentile(lat, 50), p99_ms: percentile(lat, 99), share, non2xx: xs.filter((s) => s.status < 200 || s.status > 299).length };
}
