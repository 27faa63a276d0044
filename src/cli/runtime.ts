// Finds the nginx that can run the bundle: OpenResty when it is on PATH, else Debian's nginx
// with lua-nginx-module loaded as dynamic modules.
import { existsSync } from "node:fs";
import { spawnSync } from "node:child_process";

export interface Runtime {
  binary: string;
  /** load_module lines for the main context (empty for OpenResty, which has Lua built in). */
  loadModules: string[];
}

function onPath(cmd: string): string | undefined {
  const r = spawnSync("sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" });
  const path = r.stdout.trim();
  return r.status === 0 && path !== "" ? path : undefined;
}

const DEBIAN_MODULES = "/usr/share/nginx/modules";

export function findRuntime(): Runtime {
  const openresty = onPath("openresty");
  if (openresty !== undefined) return { binary: openresty, loadModules: [] };
  const nginx = onPath("nginx") ?? (existsSync("/usr/sbin/nginx") ? "/usr/sbin/nginx" : undefined);
  const lua = `${DEBIAN_MODULES}/ngx_http_lua_module.so`;
  if (nginx !== undefined && existsSync(lua)) {
    const ndk = `${DEBIAN_MODULES}/ndk_http_module.so`;
    return { binary: nginx, loadModules: existsSync(ndk) ? [ndk, lua] : [lua] };
  }
  throw new Error(
    "no nginx with lua-nginx-module found: run scripts/install-runtime.sh " +
      "(Debian/Ubuntu: apt-get install nginx libnginx-mod-http-lua lua-resty-core lua-resty-lrucache luajit2 lua-cjson; elsewhere: OpenResty)",
  );
}
