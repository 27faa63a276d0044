// Queue depth: the length of a Redis list (LLEN), through the gateway's `redis` section.
import { RedisListSource } from "./schema";
import { SourceIo } from "./source";

export const kind = "redis_list";

export function fetch(this: void, cfg: RedisListSource, io: SourceIo): LuaMultiReturn<[number | undefined, string | undefined]> {
  const [reply, err] = io.redis(["LLEN", cfg.key], cfg.timeout_ms);
  if (err !== undefined) return $multi(undefined, err);
  if (type(reply) !== "number") return $multi(undefined, `LLEN ${cfg.key} answered ${tostring(reply)}`);
  return $multi(reply as number, undefined);
}
