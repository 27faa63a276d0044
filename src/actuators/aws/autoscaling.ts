// AWS EC2 Auto Scaling through its Query API (version 2011-01-01), signed with SigV4 (service
// "autoscaling"), sent as a form POST like the AWS SDKs do:
//   Action=DescribeAutoScalingGroups&AutoScalingGroupNames.member.1=G  -> <DesiredCapacity>
//   Action=SetDesiredCapacity&AutoScalingGroupName=G&DesiredCapacity=N&HonorCooldown=true|false
// Errors come back as <ErrorResponse><Error><Code/><Message/></Error><RequestId/></ErrorResponse>.
import { Credentials, Decision, RequestSpec, bodySnippet, isRetryableStatus } from "../actuator";
import { AwsConfig } from "../schema";
import { QueryPair, buildQuery } from "../../net/url";
import { signSpec } from "./sigv4";

export const kind = "aws_asg";
export const readsCurrent = true;

const API_VERSION = "2011-01-01";
const FORM = "application/x-www-form-urlencoded; charset=utf-8";

/** https://autoscaling.<region>.amazonaws.com, or .amazonaws.com.cn in the China regions. */
export function endpointFor(cfg: AwsConfig): string {
  if (cfg.endpoint !== undefined) return cfg.endpoint;
  const suffix = string.sub(cfg.region, 1, 3) === "cn-" ? "amazonaws.com.cn" : "amazonaws.com";
  return `https://autoscaling.${cfg.region}.${suffix}/`;
}

function signedPost(cfg: AwsConfig, creds: Credentials, params: QueryPair[], now: number): LuaMultiReturn<[RequestSpec | undefined, string | undefined]> {
  if (creds.aws === undefined) return $multi(undefined, "no AWS credentials");
  const headers = new LuaTable<string, string>();
  headers.set("Content-Type", FORM);
  const spec: RequestSpec = { method: "POST", url: endpointFor(cfg), headers, body: buildQuery(params) };
  return signSpec(spec, creds.aws, { region: cfg.region, service: "autoscaling", now });
}

export function describeCurrent(this: void, cfg: AwsConfig, creds: Credentials, now: number): LuaMultiReturn<[RequestSpec | undefined, string | undefined]> {
  return signedPost(
    cfg,
    creds,
    [
      ["Action", "DescribeAutoScalingGroups"],
      ["Version", API_VERSION],
      ["AutoScalingGroupNames.member.1", cfg.group],
      ["IncludeInstances", "false"],
    ],
    now,
  );
}

export function buildSet(this: void, cfg: AwsConfig, creds: Credentials, desired: number, now: number, _decision: Decision): LuaMultiReturn<[RequestSpec | undefined, string | undefined]> {
  return signedPost(
    cfg,
    creds,
    [
      ["Action", "SetDesiredCapacity"],
      ["Version", API_VERSION],
      ["AutoScalingGroupName", cfg.group],
      ["DesiredCapacity", string.format("%d", desired)],
      ["HonorCooldown", cfg.honor_cooldown ? "true" : "false"],
    ],
    now,
  );
}

const XML_ENTITIES: Record<string, string> = { "&lt;": "<", "&gt;": ">", "&quot;": '"', "&apos;": "'", "&amp;": "&" };

/** The text of the first <tag>...</tag>, entities decoded (enough for AWS's flat responses). */
export function xmlText(xml: string, tag: string): string | undefined {
  const [text] = string.match(xml, `<${tag}>([^<]*)</${tag}>`);
  if (text === undefined) return undefined;
  return string.gsub(text, "&%a+;", XML_ENTITIES)[0];
}

// Error codes that mean "try again later" even with a 4xx status.
const RETRYABLE_CODES = new LuaTable<string, boolean>();
for (const code of ["Throttling", "ThrottlingException", "RequestLimitExceeded", "RequestThrottled", "ServiceUnavailable", "InternalFailure", "RequestExpired"]) {
  RETRYABLE_CODES.set(code, true);
}

/** "AWS ValidationError: <message> (HTTP 400, request id ...)" from an ErrorResponse body. */
export function parseError(status: number, body: string): LuaMultiReturn<[undefined, string, boolean]> {
  const code = xmlText(body, "Code");
  const message = xmlText(body, "Message");
  const requestId = xmlText(body, "RequestId");
  if (code === undefined) return $multi(undefined, `AWS: HTTP ${status}: ${bodySnippet(body)}`, isRetryableStatus(status));
  let text = `AWS ${code}: ${message ?? "(no message)"} (HTTP ${status}`;
  text += requestId === undefined ? ")" : `, request id ${requestId})`;
  if (code === "ScalingActivityInProgress") text += "; HonorCooldown is on and the group is cooling down or scaling";
  if (code === "SignatureDoesNotMatch" || code === "InvalidClientTokenId") text += "; check the credentials and the clock";
  return $multi(undefined, text, isRetryableStatus(status) || RETRYABLE_CODES.get(code) === true);
}

export function parseCurrent(this: void, status: number, _headers: LuaTable<string, string>, body: string): LuaMultiReturn<[number | undefined, string | undefined, boolean]> {
  if (status !== 200) return parseError(status, body);
  if (string.find(body, "<DescribeAutoScalingGroupsResponse", 1, true)[0] === undefined) {
    return $multi(undefined, `AWS: unexpected response: ${bodySnippet(body)}`, false);
  }
  // The group is the first (and only) member; DesiredCapacityType is another tag, not matched.
  const text = xmlText(body, "DesiredCapacity");
  if (text === undefined) return $multi(undefined, "AWS: Auto Scaling group not found (DescribeAutoScalingGroups returned no group)", false);
  const n = tonumber(text);
  if (n === undefined || n < 0 || math.floor(n) !== n) return $multi(undefined, `AWS: DesiredCapacity is not a count: ${text}`, false);
  return $multi(n, undefined, false);
}

export function parseSet(this: void, status: number, _headers: LuaTable<string, string>, body: string): LuaMultiReturn<[boolean | undefined, string | undefined, boolean]> {
  if (status !== 200) return parseError(status, body);
  if (string.find(body, "<SetDesiredCapacityResponse", 1, true)[0] === undefined) {
    return $multi(undefined, `AWS: unexpected response: ${bodySnippet(body)}`, false);
  }
  return $multi(true, undefined, false);
}
