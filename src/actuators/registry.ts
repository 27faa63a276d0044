// The actuator modules by config type: the gateway shell looks the module up once per pool and
// calls the family's functions (actuator.ts) without knowing which target it drives.
import { Actuator } from "./actuator";
import { ActuatorConfig } from "./schema";
import * as kubernetes from "./kubernetes";
import * as awsAutoscaling from "./aws/autoscaling";
import * as azure from "./azure";
import * as gcp from "./gcp";
import * as webhook from "./webhook";

const BY_TYPE = new LuaTable<string, Actuator<any>>();
BY_TYPE.set(kubernetes.kind, kubernetes);
BY_TYPE.set(awsAutoscaling.kind, awsAutoscaling);
BY_TYPE.set(azure.kind, azure);
BY_TYPE.set(gcp.kind, gcp);
BY_TYPE.set(webhook.kind, webhook);

/** The module for a validated actuator config (its `type`), or nil and a message. */
export function actuatorFor(cfg: ActuatorConfig): LuaMultiReturn<[Actuator<ActuatorConfig> | undefined, string | undefined]> {
  const a = BY_TYPE.get(cfg.type);
  if (a === undefined) return $multi(undefined, `unknown actuator type ${cfg.type}`);
  return $multi(a, undefined);
}
