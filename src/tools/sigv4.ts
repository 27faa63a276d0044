// `luajit scripts/luarun.lua resty.autoscale.tools.sigv4 [FILE]`: signs a JSON array of cases
// (from FILE, or stdin) with the Lua SigV4 signer and prints a JSON array of results. Used by
// test/integration/sigv4.test.ts to compare against the AWS SDK's signer.
import * as cjson from "cjson.safe";
import { QueryPair } from "../net/url";
import { sign } from "../actuators/aws/sigv4";

interface SigV4Case {
  method: string;
  host: string;
  path: string;
  query: QueryPair[];
  headers: LuaTable<string, string>;
  body?: string;
  region: string;
  service: string;
  now: number;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  contentSha256Header?: boolean;
  escapePath?: boolean;
}

function readInput(path: string | undefined): string | undefined {
  if (path === undefined || path === "-") return io.read("*a") as string | undefined;
  const [file] = io.open(path, "r");
  if (file === undefined) return undefined;
  const text = file.read("*a") as string | undefined;
  file.close();
  return text;
}

export function main(args: string[]): number {
  const text = readInput(args[0]);
  if (text === undefined) {
    io.stderr.write("sigv4: cannot read the cases\n");
    return 2;
  }
  const [cases, decodeErr] = cjson.decode(text);
  if (cases === undefined) {
    io.stderr.write(`sigv4: not valid JSON: ${decodeErr}\n`);
    return 2;
  }
  const results: unknown[] = [];
  for (const c of cases as SigV4Case[]) {
    const [signed, err] = sign(
      { method: c.method, host: c.host, path: c.path, query: c.query, headers: c.headers, body: c.body },
      { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, sessionToken: c.sessionToken },
      { region: c.region, service: c.service, now: c.now, contentSha256Header: c.contentSha256Header, escapePath: c.escapePath },
    );
    if (signed === undefined) results.push({ error: err });
    else results.push({ authorization: signed.authorization, headers: signed.headers, canonicalRequest: signed.canonicalRequest });
  }
  const [out, encodeErr] = cjson.encode(results);
  if (out === undefined) {
    io.stderr.write(`sigv4: cannot encode the results: ${encodeErr}\n`);
    return 1;
  }
  io.stdout.write(out, "\n");
  return 0;
}
