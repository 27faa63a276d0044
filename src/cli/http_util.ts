// Small HTTP helpers for the CLI, tests and benchmarks.
import { request } from "node:http";

export interface SimpleResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export function httpRequest(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number } = {}): Promise<SimpleResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? "GET", headers: opts.headers, timeout: opts.timeoutMs ?? 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
    });
    req.on("timeout", () => req.destroy(new Error(`timeout after ${opts.timeoutMs ?? 5000} ms: ${url}`)));
    req.on("error", reject);
    req.end(opts.body);
  });
}

export async function fetchJson(url: string, headers?: Record<string, string>): Promise<unknown> {
  const r = await httpRequest(url, { headers });
  if (r.status !== 200) throw new Error(`${url} answered ${r.status}: ${r.body.slice(0, 200)}`);
  return JSON.parse(r.body);
}

/** Polls until the URL answers (any status) or the time runs out. */
export async function waitForHttp(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    try {
      await httpRequest(url, { timeoutMs: 1000 });
      return;
    } catch (e) {
      last = (e as Error).message;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms (${last})`);
}
