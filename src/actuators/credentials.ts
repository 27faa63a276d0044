// Resolves an actuator's secrets and run-time context from environment variables and files.
// Pure: the caller passes getenv and readFile (os.getenv and io.open in production, tables in
// tests). Files are re-read every `refreshSeconds`, so a rotated Kubernetes service-account
// token (kubelet rewrites it well before it expires) or a refreshed cloud token file is picked
// up without a reload. Error messages name where a secret was looked for, never its value.
import { Credentials } from "./actuator";
import { ActuatorConfig, AwsConfig, KubernetesConfig, SecretRef } from "./schema";

export interface SecretIo {
  getenv(this: void, name: string): string | undefined;
  /** The whole file, or nil and a message. */
  readFile(this: void, path: string): LuaMultiReturn<[string | undefined, string | undefined]>;
}

export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
export const SERVICE_ACCOUNT_TOKEN = `${SERVICE_ACCOUNT_DIR}/token`;
export const SERVICE_ACCOUNT_CA = `${SERVICE_ACCOUNT_DIR}/ca.crt`;
export const SERVICE_ACCOUNT_NAMESPACE = `${SERVICE_ACCOUNT_DIR}/namespace`;

function trim(s: string): string {
  return string.match(s, "^%s*(.-)%s*$")[0]!;
}

/** Reads one secret now (no cache). */
export function readSecret(ref: SecretRef, io: SecretIo): LuaMultiReturn<[string | undefined, string | undefined]> {
  if (ref.env !== undefined) {
    const v = io.getenv(ref.env);
    if (v === undefined || trim(v) === "") {
      return $multi(undefined, `environment variable ${ref.env} is not set or empty (nginx passes it to workers only with "env ${ref.env};")`);
    }
    return $multi(trim(v), undefined);
  }
  if (ref.file !== undefined) {
    const [text, err] = io.readFile(ref.file);
    if (text === undefined) return $multi(undefined, `cannot read secret file ${ref.file}: ${err ?? "unknown error"}`);
    const v = trim(text);
    if (v === "") return $multi(undefined, `secret file ${ref.file} is empty`);
    return $multi(v, undefined);
  }
  return $multi(undefined, "secret reference has neither env nor file");
}

interface CachedSecret {
  value: string;
  readAt: number;
}

/** Secrets read from files, kept for `refreshSeconds` (one cache per worker). */
export class SecretCache {
  private entries = new LuaTable<string, CachedSecret>();
  constructor(public refreshSeconds: number = 60) {}

  get(ref: SecretRef, io: SecretIo, now: number): LuaMultiReturn<[string | undefined, string | undefined]> {
    // Environment variables cannot change under a running worker: no caching needed.
    if (ref.file === undefined) return readSecret(ref, io);
    const cached = this.entries.get(ref.file);
    if (cached !== undefined && now - cached.readAt < this.refreshSeconds && now >= cached.readAt) return $multi(cached.value, undefined);
    const [value, err] = readSecret(ref, io);
    if (value === undefined) {
      this.entries.delete(ref.file);
      return $multi(undefined, err);
    }
    this.entries.set(ref.file, { value, readAt: now });
    return $multi(value, undefined);
  }

  /** Forget everything (e.g. after a 401, so the next try re-reads a rotated token). */
  clear(): void {
    this.entries = new LuaTable<string, CachedSecret>();
  }
}

/** The values of one profile of an AWS shared credentials (INI) file. */
export function parseAwsCredentialsFile(text: string, profile: string): LuaMultiReturn<[LuaTable<string, string> | undefined, string | undefined]> {
  let section: string | undefined;
  let found: LuaTable<string, string> | undefined;
  for (const [rawLine] of string.gmatch(text + "\n", "([^\n]*)\n")) {
    const line = trim(rawLine);
    if (line === "" || string.sub(line, 1, 1) === "#" || string.sub(line, 1, 1) === ";") continue;
    const [name] = string.match(line, "^%[%s*(.-)%s*%]$");
    if (name !== undefined) {
      section = string.match(name, "^profile%s+(.+)$")[0] ?? name;
      if (section === profile && found === undefined) found = new LuaTable<string, string>();
      continue;
    }
    const [key, value] = string.match(line, "^([%w_]+)%s*=%s*(.-)$");
    if (key !== undefined && section === profile && found !== undefined) found.set(string.lower(key), value!);
  }
  if (found === undefined) return $multi(undefined, `profile ${profile} not found`);
  return $multi(found, undefined);
}

function resolveKubernetes(cfg: KubernetesConfig, io: SecretIo, cache: SecretCache, now: number): LuaMultiReturn<[Credentials | undefined, string | undefined]> {
  let apiUrl = cfg.api_url;
  if (apiUrl === undefined) {
    const host = io.getenv("KUBERNETES_SERVICE_HOST");
    const port = io.getenv("KUBERNETES_SERVICE_PORT") ?? "443";
    if (host === undefined || host === "") {
      return $multi(undefined, 'not running in a Kubernetes pod (KUBERNETES_SERVICE_HOST is not set; nginx needs "env KUBERNETES_SERVICE_HOST;"): set api_url and token');
    }
    apiUrl = string.find(host, ":", 1, true)[0] !== undefined ? `https://[${host}]:${port}` : `https://${host}:${port}`;
  }
  const [token, tokenErr] = cache.get(cfg.token ?? { file: SERVICE_ACCOUNT_TOKEN }, io, now);
  if (token === undefined) return $multi(undefined, tokenErr);
  let namespace = cfg.namespace;
  if (namespace === undefined) {
    const [ns, nsErr] = cache.get({ file: SERVICE_ACCOUNT_NAMESPACE }, io, now);
    if (ns === undefined) return $multi(undefined, `no namespace configured and ${nsErr}`);
    namespace = ns;
  }
  const caFile = cfg.ca_file ?? (cfg.api_url === undefined ? SERVICE_ACCOUNT_CA : undefined);
  return $multi({ bearerToken: token, apiUrl, caFile, namespace }, undefined);
}

function resolveAws(cfg: AwsConfig, io: SecretIo, cache: SecretCache, now: number): LuaMultiReturn<[Credentials | undefined, string | undefined]> {
  const c = cfg.credentials;
  if (c !== undefined && c.file !== undefined) {
    const [text, err] = cache.get({ file: c.file }, io, now);
    if (text === undefined) return $multi(undefined, err);
    const [values, profileErr] = parseAwsCredentialsFile(text, c.profile);
    if (values === undefined) return $multi(undefined, `AWS credentials file ${c.file}: ${profileErr}`);
    const keyId = values.get("aws_access_key_id");
    const secret = values.get("aws_secret_access_key");
    if (keyId === undefined || keyId === "" || secret === undefined || secret === "") {
      return $multi(undefined, `AWS credentials file ${c.file}: profile ${c.profile} lacks aws_access_key_id or aws_secret_access_key`);
    }
    const session = values.get("aws_session_token");
    return $multi({ aws: { accessKeyId: keyId, secretAccessKey: secret, sessionToken: session === "" ? undefined : session } }, undefined);
  }
  const keyRef = c?.access_key_id ?? { env: "AWS_ACCESS_KEY_ID" };
  const secretRef = c?.secret_access_key ?? { env: "AWS_SECRET_ACCESS_KEY" };
  const [keyId, keyErr] = cache.get(keyRef, io, now);
  if (keyId === undefined) return $multi(undefined, keyErr);
  const [secret, secretErr] = cache.get(secretRef, io, now);
  if (secret === undefined) return $multi(undefined, secretErr);
  let session: string | undefined;
  if (c?.session_token !== undefined) {
    const [s, sessionErr] = cache.get(c.session_token, io, now);
    if (s === undefined) return $multi(undefined, sessionErr);
    session = s;
  } else if (c === undefined) {
    // With the standard variables the session token is optional (long-term keys have none).
    const s = io.getenv("AWS_SESSION_TOKEN");
    if (s !== undefined && trim(s) !== "") session = trim(s);
  }
  return $multi({ aws: { accessKeyId: keyId, secretAccessKey: secret, sessionToken: session } }, undefined);
}

/** Everything the actuator of `cfg` needs at `now`, or nil and a message. */
export function resolveCredentials(cfg: ActuatorConfig, io: SecretIo, cache: SecretCache, now: number): LuaMultiReturn<[Credentials | undefined, string | undefined]> {
  if (cfg.type === "kubernetes") return resolveKubernetes(cfg, io, cache, now);
  if (cfg.type === "aws_asg") return resolveAws(cfg, io, cache, now);
  if (cfg.type === "webhook") {
    if (cfg.secret === undefined) return $multi({}, undefined);
    const [secret, err] = cache.get(cfg.secret, io, now);
    if (secret === undefined) return $multi(undefined, err);
    return $multi({ hmacSecret: secret }, undefined);
  }
  const [token, err] = cache.get(cfg.token, io, now);
  if (token === undefined) return $multi(undefined, err);
  return $multi({ bearerToken: token }, undefined);
}

/** The secret values inside `creds`, for the redaction of log lines. */
export function secretsOf(creds: Credentials): string[] {
  const out: string[] = [];
  if (creds.bearerToken !== undefined) out.push(creds.bearerToken);
  if (creds.hmacSecret !== undefined) out.push(creds.hmacSecret);
  if (creds.aws !== undefined) {
    out.push(creds.aws.secretAccessKey);
    if (creds.aws.sessionToken !== undefined) out.push(creds.aws.sessionToken);
  }
  return out;
}

/** The production SecretIo: os.getenv and io.open (blocking file reads of a few bytes). */
export function systemIo(): SecretIo {
  return { getenv: os.getenv, readFile: readWholeFile };
}

function readWholeFile(this: void, path: string): LuaMultiReturn<[string | undefined, string | undefined]> {
  const [file, err] = io.open(path, "r");
  if (file === undefined) return $multi(undefined, err);
  const text = file.read("*a") as string | undefined;
  file.close();
  if (text === undefined) return $multi(undefined, "read failed");
  return $multi(text, undefined);
}

/** Constructor callable from plain Lua. */
export function newSecretCache(refreshSeconds?: number): SecretCache {
  return new SecretCache(refreshSeconds);
}
