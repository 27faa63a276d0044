// A small closed-loop traffic generator: `concurrency` clients each send the next request as
// soon as the previous answer arrives, over keep-alive connections.
import { Agent, request } from "node:http";

export interface TrafficStats {
  sent: number;
  byStatus: Record<number, number>;
  errors: number;
}

export interface Traffic {
  stats: TrafficStats;
  stop(): Promise<TrafficStats>;
}

export function startTraffic(url: string, concurrency: number, pauseMs = 0): Traffic {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const stats: TrafficStats = { sent: 0, byStatus: {}, errors: 0 };
  let running = true;
  const loops: Promise<void>[] = [];
  const one = () =>
    new Promise<void>((resolve) => {
      // A bounded wait: a request nobody answers counts as an error instead of stalling the loop.
      const req = request(url, { agent, timeout: 10000 }, (res) => {
        res.resume();
        res.on("end", () => {
          stats.byStatus[res.statusCode ?? 0] = (stats.byStatus[res.statusCode ?? 0] ?? 0) + 1;
          resolve();
        });
      });
      req.on("timeout", () => req.destroy(new Error("no answer within 10 s")));
      req.on("error", () => {
        stats.errors++;
        setTimeout(resolve, 50);
      });
      stats.sent++;
      req.end();
    });
  for (let i = 0; i < concurrency; i++) {
    loops.push(
      (async () => {
        while (running) {
          await one();
          if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
        }
      })(),
    );
  }
  return {
    stats,
    stop: async () => {
      running = false;
      await Promise.all(loops);
      agent.destroy();
      return stats;
    },
  };
}
