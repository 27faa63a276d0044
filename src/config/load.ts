// Reads and validates a config file. Used by init_by_lua and by `autoscale validate`.
import * as cjson from "cjson.safe";
import { Config, validateConfig } from "./config";

export function loadConfigFile(path: string): LuaMultiReturn<[Config | undefined, string[]]> {
  const [file, openErr] = io.open(path, "r");
  if (file === undefined) return $multi(undefined, [`cannot read the config file: ${openErr}`]);
  const text = file.read("*a") as string | undefined;
  file.close();
  if (text === undefined) return $multi(undefined, ["cannot read the config file"]);
  const [doc, decodeErr] = cjson.decode(text);
  if (decodeErr !== undefined) return $multi(undefined, [`not valid JSON: ${decodeErr}`]);
  return validateConfig(doc);
}
