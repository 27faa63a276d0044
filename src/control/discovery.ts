// Peer discovery from Kubernetes EndpointSlices (discovery.k8s.io/v1), pure part: the section's
// validation, the list request, the peers a list names, and the membership changes to make.
//   GET {api}/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices?labelSelector=kubernetes.io/service-name={service}
// Ready endpoints (conditions.ready absent or true, not terminating) with an IP address become
// peers on the slice's port (the one named `port`, else the first).
import { Json, Problems, join, readInteger, readNumber, readObject, readString, rejectUnknownKeys } from "../config/check";
import { KubernetesConfig, SecretRef, readSecretRef } from "../actuators/schema";
import { encodeComponent } from "../net/url";

export interface DiscoveryConfig {
  type: "kubernetes";
  service: string;
  namespace?: string;
  /** Port name in the slices; absent: each slice's first port. */
  port?: string;
  api_url?: string;
  token?: SecretRef;
  ca_file?: string;
  /** Seconds between polls. */
  interval: number;
  timeout_ms: number;
}

export function validateDiscovery(p: Problems, path: string, raw: Json): DiscoveryConfig | undefined {
  if (raw === undefined) return undefined;
  const o = readObject(p, path, raw, true);
  if (o === undefined) return undefined;
  const before = p.list.length;
  rejectUnknownKeys(p, path, o, ["type", "service", "namespace", "port", "api_url", "token", "ca_file", "interval", "timeout_ms"]);
  readString(p, join(path, "type"), o.get("type"), true, "^kubernetes$", '"kubernetes"');
  const service = readString(p, join(path, "service"), o.get("service"), true, "^[a-z0-9][a-z0-9%-]*$", "a Service name");
  const namespace = readString(p, join(path, "namespace"), o.get("namespace"), false, "^[a-z0-9][a-z0-9%-]*$", "a namespace name");
  const port = readString(p, join(path, "port"), o.get("port"), false, "^[a-z0-9][a-z0-9%-]*$", "a port name");
  const apiUrl = readString(p, join(path, "api_url"), o.get("api_url"), false, "^https?://[^/%s]+[^%s]*$", "an http:// or https:// URL");
  const token = readSecretRef(p, join(path, "token"), o.get("token"), false);
  const caFile = readString(p, join(path, "ca_file"), o.get("ca_file"), false, "^/", "an absolute file path");
  const interval = readNumber(p, join(path, "interval"), o.get("interval"), 0.5, 3600, 5);
  const timeout = readInteger(p, join(path, "timeout_ms"), o.get("timeout_ms"), 1, 60000, 2000);
  if (apiUrl !== undefined && o.get("token") === undefined) p.add(join(path, "token"), "required with api_url (outside the cluster there is no service account token)");
  if (p.list.length > before || service === undefined || interval === undefined || timeout === undefined) return undefined;
  return { type: "kubernetes", service, namespace, port, api_url: apiUrl, token, ca_file: caFile, interval, timeout_ms: timeout };
}

/** The actuator-shaped config the credential resolver takes (same API server, token and CA). */
export function asKubernetes(cfg: DiscoveryConfig): KubernetesConfig {
  return {
    type: "kubernetes",
    kind: "deployment",
    name: cfg.service,
    namespace: cfg.namespace,
    api_url: cfg.api_url,
    token: cfg.token,
    ca_file: cfg.ca_file,
    timeout_ms: cfg.timeout_ms,
    dry_run: false,
    resend_interval: 300,
    retry: { attempts: 1, base_ms: 1, max_ms: 1 },
    breaker: { failures: 1, open_seconds: 1, max_open_seconds: 1 },
  };
}

export function sliceListUrl(apiUrl: string, namespace: string, service: string): string {
  const base = string.gsub(apiUrl, "/+$", "")[0];
  return `${base}/apis/discovery.k8s.io/v1/namespaces/${encodeComponent(namespace)}/endpointslices?labelSelector=${encodeComponent(`kubernetes.io/service-name=${service}`)}`;
}

function field(v: unknown, k: string): unknown {
  return type(v) === "table" ? (v as LuaTable<string, unknown>).get(k) : undefined;
}

function list(v: unknown): unknown[] {
  return type(v) === "table" ? (v as unknown[]) : [];
}

/** "host:port" of every ready endpoint in an EndpointSliceList (sorted, no duplicates). */
export function slicePeers(doc: unknown, portName: string | undefined): LuaMultiReturn<[string[] | undefined, string | undefined]> {
  if (field(doc, "kind") !== "EndpointSliceList") return $multi(undefined, "the answer is not an EndpointSliceList");
  const seen = new LuaTable<string, boolean>();
  const out: string[] = [];
  for (const slice of list(field(doc, "items"))) {
    const family = field(slice, "addressType");
    if (family !== "IPv4" && family !== "IPv6") continue;
    let port: number | undefined;
    for (const pt of list(field(slice, "ports"))) {
      const n = field(pt, "port");
      if (type(n) !== "number") continue;
      if (portName === undefined || field(pt, "name") === portName) {
        port = n as number;
        break;
      }
    }
    if (port === undefined) continue;
    for (const ep of list(field(slice, "endpoints"))) {
      const cond = field(ep, "conditions");
      const ready = field(cond, "ready");
      if (ready === false || field(cond, "terminating") === true) continue;
      for (const a of list(field(ep, "addresses"))) {
        if (type(a) !== "string") continue;
        const addr = family === "IPv6" ? `[${a as string}]:${port}` : `${a as string}:${port}`;
        if (!seen.get(addr)) {
          seen.set(addr, true);
          out.push(addr);
        }
      }
    }
  }
  table.sort(out);
  return $multi(out, undefined);
}

export interface MemberView {
  address: string;
  state: string;
}

/** What to do to the membership so it follows the discovered peers. */
export interface DiscoveryPlan {
  add: string[];
  /** Known peers no longer discovered: drain first, remove once drained. */
  drain: string[];
  /** Discovered again while draining or down: back in rotation. */
  up: string[];
}

export function planDiscovery(current: MemberView[], discovered: string[]): DiscoveryPlan {
  const plan: DiscoveryPlan = { add: [], drain: [], up: [] };
  const wanted = new LuaTable<string, boolean>();
  for (const a of discovered) wanted.set(a, true);
  const known = new LuaTable<string, string>();
  for (const m of current) known.set(m.address, m.state);
  for (const a of discovered) {
    const st = known.get(a);
    if (st === undefined) plan.add.push(a);
    else if (st !== "up") plan.up.push(a);
  }
  // An empty answer is more likely a broken Service than a pool with no replica: keep the peers.
  if (discovered.length === 0) return plan;
  for (const m of current) if (!wanted.get(m.address) && m.state === "up") plan.drain.push(m.address);
  return plan;
}
