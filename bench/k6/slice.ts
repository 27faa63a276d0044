// The "slice" benchmark for users who have k6 (k6 >= 0.52 runs TypeScript directly):
//   k6 run -e GATEWAY=http://127.0.0.1:8080 -e PLAIN=http://127.0.0.1:8090 bench/k6/slice.ts
// It drives the gateway and a plain nginx proxy to the same backends with the same closed-loop
// load, one after the other, and reports their latencies as separate tagged metrics. The
// repository's own figures come from the wrk runner (npm run bench), which also reads the nginx
// worker's CPU time per request.
import http from "k6/http";
import { check } from "k6";
import { Options } from "k6/options";
import { Trend } from "k6/metrics";

const gateway = __ENV.GATEWAY ?? "http://127.0.0.1:8080";
const plain = __ENV.PLAIN ?? "";
const path = __ENV.PATH_UNDER_TEST ?? "/api/bench";

const gatewayLatency = new Trend("gateway_latency", true);
const plainLatency = new Trend("plain_latency", true);

export const options: Options = {
  scenarios: {
    gateway: { executor: "constant-vus", vus: 32, duration: "30s", exec: "hitGateway" },
    ...(plain
      ? { plain: { executor: "constant-vus", vus: 32, duration: "30s", startTime: "35s", exec: "hitPlain" } }
      : {}),
  },
  thresholds: {
    "http_req_failed{scenario:gateway}": ["rate<0.001"],
    gateway_latency: ["p(99)<50"],
  },
};

export function hitGateway(): void {
  const res = http.get(`${gateway}${path}`);
  check(res, { "gateway answers 200": (r) => r.status === 200 });
  gatewayLatency.add(res.timings.duration);
}

export function hitPlain(): void {
  const res = http.get(`${plain}${path}`);
  check(res, { "plain answers 200": (r) => r.status === 200 });
  plainLatency.add(res.timings.duration);
}
