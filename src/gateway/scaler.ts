// The scaling capability in the gateway: the control loop (src/gateway/control/loop.ts) and what
// the status page, /metrics and the KEDA endpoint read from it.
import { PoolRuntime, GatewayState, METRICS_DICT } from "./state";
import { readWindow } from "../metrics/counters";
import { counters, lastAction, lastDecision, clusterState, prometheusLines } from "./control/report";
import { localFigures, poolControlStatus, sourcesStatus, startControl } from "./control/loop";
import { stateDirStatus } from "./control/history";

export { startControl, sourcesStatus, prometheusLines };

export function scalingStatus(pool: PoolRuntime): unknown {
  const scaling = pool.config.scaling;
  if (scaling === undefined) return undefined;
  return {
    min_replicas: scaling.min_replicas,
    max_replicas: scaling.max_replicas,
    target: scaling.target,
    interval: scaling.interval,
    window: scaling.window,
    actuator: scaling.actuator.type,
    dry_run: scaling.actuator.dry_run,
    last_decision: lastDecision(pool.config.name),
    last_action: lastAction(pool.config.name),
    actions: counters(pool.config.name),
    loop: poolControlStatus(pool.config.name),
  };
}

/**
 * The control loop's mode: single, leader, standby or degraded (with the reason), and the state
 * directory's last write (`state_dir`: path, writable, error) once a history was saved.
 */
export function controlStatus(): unknown {
  const doc = clusterState() as LuaTable<string, unknown> | undefined;
  const dir = stateDirStatus();
  if (doc === undefined || dir === undefined) return doc ?? (dir === undefined ? undefined : { state_dir: dir });
  doc.set("state_dir", dir);
  return doc;
}

/**
 * The KEDA metrics-api document of a pool (GET /autoscale/keda/pools/<name>): this instance's
 * figures over the pool's scaling window (or the first metrics window) and the last desired
 * replica count. `value` is the request rate; point valueLocation at any field.
 */
export function kedaPool(s: GatewayState, pool: PoolRuntime, now: number): unknown {
  const span = pool.config.scaling?.window ?? s.config.metrics.windows[0];
  const f = localFigures(pool, span, now);
  const d = lastDecision(pool.config.name) as { desired?: number; current?: number } | undefined;
  return {
    pool: pool.config.name,
    value: f.rate,
    requests_per_second: f.rate,
    error_ratio: f.requests > 0 ? f.errors / f.requests : 0,
    in_flight: f.inFlight,
    p99_latency_ms: f.p99Ms,
    desired_replicas: d?.desired,
    current_replicas: d?.current,
    window: span,
    time: now,
  };
}

/** The KEDA metrics-api document of a route (GET /autoscale/keda/routes/<name>). */
export function kedaRoute(s: GatewayState, routeName: string, now: number): unknown {
  const route = s.routes.get(routeName) ?? (routeName === s.unmatched.name ? s.unmatched : undefined);
  if (route === undefined) return undefined;
  const span = s.config.metrics.windows[0];
  const w = readWindow(ngx.shared[METRICS_DICT]!, route.series, now, span, ngx.worker.count());
  return { route: route.name, value: w.rate, requests_per_second: w.rate, error_ratio: w.errorRatio, window: span, time: now };
}
