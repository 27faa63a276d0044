#!/usr/bin/env bash
# Installs what lua-resty-autoscale needs at run time, when it is missing:
# nginx with lua-nginx-module (or OpenResty), LuaJIT and cjson. With --test it also installs what
# the tests and benchmarks use (busted, redis-server, prometheus, wrk, luarocks).
set -euo pipefail

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

runtime_pkgs=(nginx libnginx-mod-http-lua lua-resty-core lua-resty-lrucache luajit2 lua-cjson)
test_pkgs=(lua-busted redis-server prometheus wrk luarocks curl ca-certificates openssl)

have_runtime() {
  command -v luajit >/dev/null 2>&1 || return 1
  luajit -e 'require("cjson.safe")' >/dev/null 2>&1 || return 1
  if command -v openresty >/dev/null 2>&1; then return 0; fi
  command -v nginx >/dev/null 2>&1 && [ -f /usr/share/nginx/modules/ngx_http_lua_module.so ]
}

have_test_tools() {
  for c in busted redis-server redis-cli prometheus promtool wrk luarocks curl openssl; do command -v "$c" >/dev/null 2>&1 || return 1; done
}

missing=()
have_runtime || missing+=("${runtime_pkgs[@]}")
if [ "$want_test" = 1 ] && ! have_test_tools; then missing+=("${test_pkgs[@]}"); fi
[ ${#missing[@]} -eq 0 ] && exit 0

if command -v apt-get >/dev/null 2>&1 && [ -f /etc/debian_version ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "install-runtime: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  # never Debian's `luajit` package: it conflicts with luajit2 (OpenResty's LuaJIT branch)
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The Debian package starts a system nginx on port 80; the project runs its own with a prefix.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then $sudo systemctl stop nginx || true; fi
  exit 0
fi

cat >&2 <<MSG
install-runtime: this system has no apt-get. Install these yourself, then run again:
  - OpenResty (https://openresty.org), which bundles nginx, lua-nginx-module, LuaJIT and cjson,
    with the openresty binary on PATH and luajit on PATH
    (or nginx with lua-nginx-module + lua-resty-core + lua-resty-lrucache + LuaJIT 2.1 + lua-cjson);
  - for the tests: busted (luarocks install busted), redis-server, prometheus (promtool), wrk,
    luarocks, curl.
MSG
exit 1
