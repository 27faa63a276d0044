#!/usr/bin/env bash
# Installs what lua-resty-autoscale needs at run time, when it is missing: nginx with
# lua-nginx-module (nothing when OpenResty is on PATH: it bundles both), and LuaJIT with cjson for
# the `autoscale` command. With --test it also installs what the tests and benchmarks use
# (busted, redis-server, prometheus, wrk, luarocks). On systems without apt it says what to install.
set -euo pipefail

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

# Where Debian's nginx keeps its dynamic modules (overridable for tests and unusual layouts).
modules_dir=${AUTOSCALE_NGINX_MODULES:-/usr/share/nginx/modules}

nginx_pkgs=(nginx libnginx-mod-http-lua lua-resty-core lua-resty-lrucache)
# never Debian's `luajit` package: it conflicts with luajit2 (OpenResty's LuaJIT branch)
lua_pkgs=(luajit2 lua-cjson)
test_pkgs=(lua-busted redis-server prometheus wrk luarocks curl ca-certificates openssl)

have_nginx_lua() {
  command -v openresty >/dev/null 2>&1 && return 0
  command -v nginx >/dev/null 2>&1 && [ -f "$modules_dir/ngx_http_lua_module.so" ]
}

# `autoscale validate` and the specs run the compiled Lua under luajit, outside nginx.
have_lua_cli() {
  command -v luajit >/dev/null 2>&1 && luajit -e 'require("cjson.safe")' >/dev/null 2>&1
}

have_test_tools() {
  for c in busted redis-server redis-cli prometheus promtool wrk luarocks curl openssl; do command -v "$c" >/dev/null 2>&1 || return 1; done
}

missing=()
have_nginx_lua || missing+=("${nginx_pkgs[@]}")
have_lua_cli || missing+=("${lua_pkgs[@]}")
if [ "$want_test" = 1 ] && ! have_test_tools; then missing+=("${test_pkgs[@]}"); fi
[ ${#missing[@]} -eq 0 ] && exit 0

if command -v apt-get >/dev/null 2>&1 && [ -f /etc/debian_version ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "install-runtime: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The Debian package starts a system nginx on port 80; the project runs its own with a prefix.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then $sudo systemctl stop nginx || true; fi
  exit 0
fi

{
  echo "install-runtime: this system has no apt-get. Install these yourself, then run again:"
  have_nginx_lua || echo "  - OpenResty (https://openresty.org) with the openresty binary on PATH, or nginx with
    lua-nginx-module, lua-resty-core and lua-resty-lrucache (nginx on PATH, the module in $modules_dir);"
  have_lua_cli || echo "  - LuaJIT 2.1 as \`luajit\` on PATH, with lua-cjson where it finds it (luarocks install lua-cjson);"
  if [ "$want_test" = 1 ] && ! have_test_tools; then
    echo "  - for the tests: busted (luarocks install busted), redis-server, prometheus (promtool), wrk, luarocks, curl, openssl."
  fi
} >&2
exit 1
