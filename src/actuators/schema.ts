// Configuration of each actuator (`pools.<name>.scaling.actuator`), validated in the style of
// src/config/check.ts: every problem names its JSON path. Secrets are never inline: a token,
// key or HMAC secret is a reference, {"env": "NAME"} or {"file": "/path"}, resolved at run time
// by credentials.ts (so a config file can be shown, logged and committed).
import {
  Json,
  JsonObject,
  Problems,
  describe,
  join,
  readBoolean,
  readEnum,
  readInteger,
  readNumber,
  readObject,
  readString,
  rejectUnknownKeys,
} from "../config/check";

/** Where a secret lives: an environment variable (nginx needs `env NAME;`) or a file. */
export interface SecretRef {
  env?: string;
  file?: string;
}

export interface RetryConfig {
  /** Tries per action, the first included. */
  attempts: number;
  base_ms: number;
  max_ms: number;
}

export interface BreakerConfig {
  /** Consecutive failures that open the breaker. */
  failures: number;
  /** First open period; doubles on each re-open, up to max_open_seconds. */
  open_seconds: number;
  max_open_seconds: number;
}

interface CommonConfig {
  timeout_ms: number;
  dry_run: boolean;
  /** Send the same desired value again only after this many seconds. */
  resend_interval: number;
  retry: RetryConfig;
  breaker: BreakerConfig;
}

export interface KubernetesConfig extends CommonConfig {
  type: "kubernetes";
  kind: "deployment" | "statefulset";
  /** Absent: the service account's namespace (in cluster). */
  namespace?: string;
  name: string;
  /** Absent: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT. */
  api_url?: string;
  /** Absent: the service account token file. */
  token?: SecretRef;
  /** Absent: the service account's ca.crt (only when api_url is absent too). */
  ca_file?: string;
}

export interface AwsConfig extends CommonConfig {
  type: "aws_asg";
  group: string;
  region: string;
  /** Absent: https://autoscaling.<region>.amazonaws.com (.com.cn in China regions). */
  endpoint?: string;
  honor_cooldown: boolean;
  /** Absent: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN. */
  credentials?: AwsCredentialsConfig;
}

export interface AwsCredentialsConfig {
  access_key_id?: SecretRef;
  secret_access_key?: SecretRef;
  session_token?: SecretRef;
  /** An AWS shared credentials file (INI), read with `profile`. */
  file?: string;
  profile: string;
}

export interface AzureConfig extends CommonConfig {
  type: "azure_vmss";
  subscription_id: string;
  resource_group: string;
  name: string;
  api_version: string;
  endpoint: string;
  token: SecretRef;
}

export interface GcpConfig extends CommonConfig {
  type: "gcp_mig";
  project: string;
  /** Exactly one of zone (zonal group) or region (regional group). */
  zone?: string;
  region?: string;
  name: string;
  endpoint: string;
  token: SecretRef;
}

export interface WebhookConfig extends CommonConfig {
  type: "webhook";
  url: string;
  /** HMAC-SHA256 key for X-Autoscale-Signature; absent: requests are not signed. */
  secret?: SecretRef;
}

export type ActuatorConfig = KubernetesConfig | AwsConfig | AzureConfig | GcpConfig | WebhookConfig;

export const ACTUATOR_TYPES = ["kubernetes", "aws_asg", "azure_vmss", "gcp_mig", "webhook"] as const;

const COMMON_KEYS = ["type", "timeout_ms", "dry_run", "resend_interval", "retry", "breaker"];

const K8S_NAME_HELP = "a lowercase DNS name (letters, digits, '-', '.')";
const AZURE_API_VERSION = "2024-07-01";

/**
 * A lowercase name that starts and ends with a letter or digit (Lua patterns have no optional
 * groups, so the ends are checked apart). `first` is the class allowed at the start.
 */
function readLowerName(p: Problems, path: string, v: Json, required: boolean, inner: string, first: string, help: string, max: number): string | undefined {
  const s = readString(p, path, v, required);
  if (s === undefined) return undefined;
  const ok =
    string.match(s, `^${first}${inner}*$`)[0] !== undefined &&
    string.match(s, "[a-z0-9]$")[0] !== undefined &&
    s.length <= max;
  if (!ok) {
    p.add(path, `expected ${help}, got ${describe(s)}`);
    return undefined;
  }
  return s;
}

function readK8sName(p: Problems, path: string, v: Json, required: boolean): string | undefined {
  return readLowerName(p, path, v, required, "[a-z0-9%-%.]", "[a-z0-9]", K8S_NAME_HELP, 253);
}

function readUrl(p: Problems, path: string, v: Json, required: boolean): string | undefined {
  const s = readString(p, path, v, required, "^https?://[^/%s]+[^%s]*$", "an http:// or https:// URL");
  if (s !== undefined && string.match(s, "^https?://[^/]*@")[0] !== undefined) {
    p.add(path, "expected a URL without credentials (use a secret reference), got a URL with user info");
    return undefined;
  }
  return s;
}

/** A path segment used in a cloud API URL: no "/", "?", "#", spaces or control characters. */
function readSegment(p: Problems, path: string, v: Json, required: boolean, max: number): string | undefined {
  const s = readString(p, path, v, required, "^[%w_%.%-%(%)~]+$", "a name of letters, digits, '_', '.', '-', '(', ')' or '~'");
  if (s !== undefined && s.length > max) {
    p.add(path, `expected at most ${max} characters, got ${s.length}`);
    return undefined;
  }
  return s;
}

/** {"env": "NAME"} or {"file": "/absolute/path"}; an inline string is refused by design. */
export function readSecretRef(p: Problems, path: string, v: Json, required: boolean): SecretRef | undefined {
  if (v === undefined) {
    if (required) p.add(path, 'required secret reference is missing (use {"env": "NAME"} or {"file": "/path"})');
    return undefined;
  }
  if (type(v) === "string") {
    // Do not echo the value: it is probably the secret itself.
    p.add(path, 'secrets must not be written in the config: use {"env": "NAME"} or {"file": "/path"}');
    return undefined;
  }
  const o = readObject(p, path, v, true);
  if (o === undefined) return undefined;
  rejectUnknownKeys(p, path, o, ["env", "file"]);
  const env = readString(p, join(path, "env"), o.get("env"), false, "^[%a_][%w_]*$", "an environment variable name");
  const file = readString(p, join(path, "file"), o.get("file"), false, "^/", "an absolute file path");
  if ((o.get("env") === undefined) === (o.get("file") === undefined)) {
    p.add(path, `expected exactly one of env or file, got ${describe(v)}`);
    return undefined;
  }
  if (env === undefined && file === undefined) return undefined;
  return { env, file };
}

function readCommon(p: Problems, path: string, o: JsonObject): CommonConfig | undefined {
  const timeout = readInteger(p, join(path, "timeout_ms"), o.get("timeout_ms"), 1, 60000, 2000);
  const dryRun = readBoolean(p, join(path, "dry_run"), o.get("dry_run"), false);
  const resend = readNumber(p, join(path, "resend_interval"), o.get("resend_interval"), 1, 86400, 300);

  const retryPath = join(path, "retry");
  const r = readObject(p, retryPath, o.get("retry"), false) ?? new LuaTable<string, Json>();
  rejectUnknownKeys(p, retryPath, r, ["attempts", "base_ms", "max_ms"]);
  const attempts = readInteger(p, join(retryPath, "attempts"), r.get("attempts"), 1, 10, 3);
  const baseMs = readInteger(p, join(retryPath, "base_ms"), r.get("base_ms"), 1, 60000, 200);
  const maxMs = readInteger(p, join(retryPath, "max_ms"), r.get("max_ms"), 1, 600000, 5000);
  if (baseMs !== undefined && maxMs !== undefined && baseMs > maxMs) {
    p.add(join(retryPath, "base_ms"), `must not exceed max_ms (${maxMs}), got ${baseMs}`);
  }

  const breakerPath = join(path, "breaker");
  const b = readObject(p, breakerPath, o.get("breaker"), false) ?? new LuaTable<string, Json>();
  rejectUnknownKeys(p, breakerPath, b, ["failures", "open_seconds", "max_open_seconds"]);
  const failures = readInteger(p, join(breakerPath, "failures"), b.get("failures"), 1, 1000, 5);
  const openSeconds = readNumber(p, join(breakerPath, "open_seconds"), b.get("open_seconds"), 0.1, 86400, 30);
  const maxOpen = readNumber(p, join(breakerPath, "max_open_seconds"), b.get("max_open_seconds"), 0.1, 86400, 600);
  if (openSeconds !== undefined && maxOpen !== undefined && openSeconds > maxOpen) {
    p.add(join(breakerPath, "open_seconds"), `must not exceed max_open_seconds (${maxOpen}), got ${openSeconds}`);
  }
  if (
    timeout === undefined || resend === undefined || attempts === undefined || baseMs === undefined || maxMs === undefined ||
    failures === undefined || openSeconds === undefined || maxOpen === undefined
  ) {
    return undefined;
  }
  return {
    timeout_ms: timeout,
    dry_run: dryRun,
    resend_interval: resend,
    retry: { attempts, base_ms: baseMs, max_ms: maxMs },
    breaker: { failures, open_seconds: openSeconds, max_open_seconds: maxOpen },
  };
}

function withCommon(keys: string[]): string[] {
  const out: string[] = [];
  for (const k of COMMON_KEYS) out.push(k);
  for (const k of keys) out.push(k);
  return out;
}

function readKubernetes(p: Problems, path: string, o: JsonObject, common: CommonConfig | undefined): KubernetesConfig | undefined {
  rejectUnknownKeys(p, path, o, withCommon(["kind", "namespace", "name", "api_url", "token", "ca_file"]));
  const kind = readEnum(p, join(path, "kind"), o.get("kind"), ["deployment", "statefulset"] as const, "deployment");
  const namespace = readK8sName(p, join(path, "namespace"), o.get("namespace"), false);
  const name = readK8sName(p, join(path, "name"), o.get("name"), true);
  const apiUrl = readUrl(p, join(path, "api_url"), o.get("api_url"), false);
  const token = readSecretRef(p, join(path, "token"), o.get("token"), false);
  const caFile = readString(p, join(path, "ca_file"), o.get("ca_file"), false, "^/", "an absolute file path");
  if (apiUrl !== undefined && token === undefined && o.get("token") === undefined) {
    p.add(join(path, "token"), "required with api_url (outside the cluster there is no service account token)");
  }
  if (common === undefined || kind === undefined || name === undefined) return undefined;
  if ((o.get("namespace") !== undefined && namespace === undefined) || (o.get("api_url") !== undefined && apiUrl === undefined)) return undefined;
  if ((o.get("token") !== undefined && token === undefined) || (o.get("ca_file") !== undefined && caFile === undefined)) return undefined;
  return { ...common, type: "kubernetes", kind, namespace, name, api_url: apiUrl, token, ca_file: caFile };
}

function readAwsCredentials(p: Problems, path: string, v: Json): AwsCredentialsConfig | undefined {
  const o = readObject(p, path, v, true);
  if (o === undefined) return undefined;
  rejectUnknownKeys(p, path, o, ["access_key_id", "secret_access_key", "session_token", "file", "profile"]);
  const keyId = readSecretRef(p, join(path, "access_key_id"), o.get("access_key_id"), false);
  const secret = readSecretRef(p, join(path, "secret_access_key"), o.get("secret_access_key"), false);
  const session = readSecretRef(p, join(path, "session_token"), o.get("session_token"), false);
  const file = readString(p, join(path, "file"), o.get("file"), false, "^/", "an absolute file path");
  const profile = readString(p, join(path, "profile"), o.get("profile"), false, "^[%w_%.%-]+$", "a profile name") ?? "default";
  const hasKeys = o.get("access_key_id") !== undefined || o.get("secret_access_key") !== undefined;
  if (hasKeys === (o.get("file") !== undefined)) {
    p.add(path, "expected either access_key_id and secret_access_key, or file (with an optional profile)");
    return undefined;
  }
  if (hasKeys && (o.get("access_key_id") === undefined || o.get("secret_access_key") === undefined)) {
    p.add(path, "expected both access_key_id and secret_access_key");
    return undefined;
  }
  if (keyId === undefined && secret === undefined && file === undefined) return undefined;
  return { access_key_id: keyId, secret_access_key: secret, session_token: session, file, profile };
}

function readAws(p: Problems, path: string, o: JsonObject, common: CommonConfig | undefined): AwsConfig | undefined {
  rejectUnknownKeys(p, path, o, withCommon(["group", "region", "endpoint", "honor_cooldown", "credentials"]));
  const group = readString(p, join(path, "group"), o.get("group"), true, "^[^%c]+$", "an Auto Scaling group name");
  if (group !== undefined && group.length > 255) p.add(join(path, "group"), `expected at most 255 characters, got ${group.length}`);
  const region = readString(p, join(path, "region"), o.get("region"), true, "^[a-z][a-z0-9%-]+%d$", "an AWS region such as us-east-1");
  const endpoint = readUrl(p, join(path, "endpoint"), o.get("endpoint"), false);
  const honor = readBoolean(p, join(path, "honor_cooldown"), o.get("honor_cooldown"), false);
  const creds = o.get("credentials") === undefined ? undefined : readAwsCredentials(p, join(path, "credentials"), o.get("credentials"));
  if (common === undefined || group === undefined || group.length > 255 || region === undefined) return undefined;
  if ((o.get("endpoint") !== undefined && endpoint === undefined) || (o.get("credentials") !== undefined && creds === undefined)) return undefined;
  return { ...common, type: "aws_asg", group, region, endpoint, honor_cooldown: honor, credentials: creds };
}

function readAzure(p: Problems, path: string, o: JsonObject, common: CommonConfig | undefined): AzureConfig | undefined {
  rejectUnknownKeys(p, path, o, withCommon(["subscription_id", "resource_group", "name", "api_version", "endpoint", "token"]));
  const sub = readString(p, join(path, "subscription_id"), o.get("subscription_id"), true, "^%x+%-%x+%-%x+%-%x+%-%x+$", "a subscription GUID");
  const group = readSegment(p, join(path, "resource_group"), o.get("resource_group"), true, 90);
  const name = readSegment(p, join(path, "name"), o.get("name"), true, 80);
  const version = readString(p, join(path, "api_version"), o.get("api_version"), false, "^%d%d%d%d%-%d%d%-%d%d[%w%-]*$", "an API version such as 2024-07-01");
  const endpoint = readUrl(p, join(path, "endpoint"), o.get("endpoint"), false);
  const token = readSecretRef(p, join(path, "token"), o.get("token"), true);
  if (common === undefined || sub === undefined || group === undefined || name === undefined || token === undefined) return undefined;
  if ((o.get("api_version") !== undefined && version === undefined) || (o.get("endpoint") !== undefined && endpoint === undefined)) return undefined;
  return {
    ...common,
    type: "azure_vmss",
    subscription_id: sub,
    resource_group: group,
    name,
    api_version: version ?? AZURE_API_VERSION,
    endpoint: endpoint ?? "https://management.azure.com",
    token,
  };
}

function readGcp(p: Problems, path: string, o: JsonObject, common: CommonConfig | undefined): GcpConfig | undefined {
  rejectUnknownKeys(p, path, o, withCommon(["project", "zone", "region", "name", "endpoint", "token"]));
  const project = readLowerName(p, join(path, "project"), o.get("project"), true, "[a-z0-9%-:%.]", "[a-z]", "a project ID", 100);
  const zone = readString(p, join(path, "zone"), o.get("zone"), false, "^[a-z]+%-[a-z]+%d+%-[a-z]$", "a zone such as us-central1-a");
  const region = readString(p, join(path, "region"), o.get("region"), false, "^[a-z]+%-[a-z]+%d+$", "a region such as us-central1");
  const name = readLowerName(p, join(path, "name"), o.get("name"), true, "[a-z0-9%-]", "[a-z]", "a lowercase resource name", 63);
  const endpoint = readUrl(p, join(path, "endpoint"), o.get("endpoint"), false);
  const token = readSecretRef(p, join(path, "token"), o.get("token"), true);
  if ((o.get("zone") === undefined) === (o.get("region") === undefined)) {
    p.add(path, "expected exactly one of zone (zonal group) or region (regional group)");
    return undefined;
  }
  if (common === undefined || project === undefined || name === undefined || token === undefined || (zone === undefined && region === undefined)) return undefined;
  if (o.get("endpoint") !== undefined && endpoint === undefined) return undefined;
  return { ...common, type: "gcp_mig", project, zone, region, name, endpoint: endpoint ?? "https://compute.googleapis.com", token };
}

function readWebhook(p: Problems, path: string, o: JsonObject, common: CommonConfig | undefined): WebhookConfig | undefined {
  rejectUnknownKeys(p, path, o, withCommon(["url", "secret"]));
  const url = readUrl(p, join(path, "url"), o.get("url"), true);
  const secret = readSecretRef(p, join(path, "secret"), o.get("secret"), false);
  if (common === undefined || url === undefined || (o.get("secret") !== undefined && secret === undefined)) return undefined;
  return { ...common, type: "webhook", url, secret };
}

/**
 * Validates one actuator section. Returns the typed config with defaults filled in, or
 * undefined after recording every problem in `p`.
 */
export function validateActuator(p: Problems, path: string, raw: Json): ActuatorConfig | undefined {
  const o = readObject(p, path, raw, true);
  if (o === undefined) return undefined;
  const kind = readEnum(p, join(path, "type"), o.get("type"), ACTUATOR_TYPES, undefined);
  if (kind === undefined) return undefined;
  const before = p.list.length;
  const common = readCommon(p, path, o);
  let cfg: ActuatorConfig | undefined;
  if (kind === "kubernetes") cfg = readKubernetes(p, path, o, common);
  else if (kind === "aws_asg") cfg = readAws(p, path, o, common);
  else if (kind === "azure_vmss") cfg = readAzure(p, path, o, common);
  else if (kind === "gcp_mig") cfg = readGcp(p, path, o, common);
  else cfg = readWebhook(p, path, o, common);
  // Any problem in this section (an unknown key included) invalidates it.
  return p.list.length > before ? undefined : cfg;
}
