// Source modules by config type.
import { Source } from "./source";
import { SourceConfig } from "./schema";
import * as prometheus from "./prometheus";
import * as jsonUrl from "./json_url";
import * as redisList from "./redis_list";

const BY_TYPE = new LuaTable<string, Source<any>>();
BY_TYPE.set(prometheus.kind, prometheus);
BY_TYPE.set(jsonUrl.kind, jsonUrl);
BY_TYPE.set(redisList.kind, redisList);

export function sourceFor(cfg: SourceConfig): Source<SourceConfig> | undefined {
  return BY_TYPE.get(cfg.type);
}
