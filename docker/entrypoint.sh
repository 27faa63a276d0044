#!/bin/bash
# The image's entrypoint. Modes (the first argument):
#   gateway            (default) the perimeter gateway: checks the mounted JSON config, generates
#                      nginx.conf (the same as `autoscale run`), runs nginx in the foreground
#   conf               prints the nginx.conf the gateway mode would run
#   validate           checks the config and exits (0 when valid)
#   backend DELAY [STATUS]   a demo backend answering after DELAY seconds
#   webhook-receiver   logs every scale signal it receives on stdout, one line each
#   traffic URL [CONCURRENCY]   sends GET requests to URL without pause, a summary every 5 s
# Environment (gateway):
#   AUTOSCALE_CONFIG_FILE     the mounted config (default /etc/autoscale/autoscale.json)
#   AUTOSCALE_LISTEN          overrides "listen" (port)
#   AUTOSCALE_ADMIN_LISTEN    overrides "admin.listen" (e.g. 0.0.0.0:9180 to publish it)
#   AUTOSCALE_ADMIN_TOKEN_FILE / AUTOSCALE_ADMIN_TOKEN   the admin token (a file wins)
#   AUTOSCALE_WORKERS         worker_processes (default auto)
#   AUTOSCALE_LOG_LEVEL       error_log level on stderr (default notice: decision logs included)
#   AUTOSCALE_ACCESS_LOG      on (default): the proxy's access log on stdout (combined format,
#                             flushed every second); off: none (saves a little per request)
#   AUTOSCALE_PASS_ENV        names of environment variables nginx keeps for its workers
#                             (secrets referenced as {"env": NAME} in actuator configs)
# Signals: TERM, INT and QUIT stop nginx gracefully (in-flight requests finish); HUP regenerates
# nginx.conf from the config file and reloads.
set -euo pipefail

SHARE=/usr/local/share/lua-resty-autoscale
PREFIX=${AUTOSCALE_PREFIX:-/var/lib/autoscale}
MODULES=(/usr/share/nginx/modules/ndk_http_module.so /usr/share/nginx/modules/ngx_http_lua_module.so)
PORT=${PORT:-8080}

die() { echo "autoscale: $*" >&2; exit 1; }

prepare_prefix() {
  mkdir -p "$PREFIX/conf" "$PREFIX/logs" "$PREFIX/temp" 2>/dev/null \
    || die "cannot write $PREFIX (set AUTOSCALE_PREFIX to a writable directory)"
}

load_modules() { for m in "${MODULES[@]}"; do [ -f "$m" ] && echo "load_module $m;"; done; }

# Common head of the small confs of the demo modes.
mode_conf_head() {
  cat <<CONF
$(load_modules)
worker_processes ${1:-1};
error_log stderr warn;
pid logs/nginx.pid;
events { worker_connections 4096; }
CONF
}

temp_paths='client_body_temp_path temp/client_body; proxy_temp_path temp/proxy; fastcgi_temp_path temp/fastcgi; uwsgi_temp_path temp/uwsgi; scgi_temp_path temp/scgi;'

generate_gateway() {
  local config=${AUTOSCALE_CONFIG_FILE:-/etc/autoscale/autoscale.json}
  [ -r "$config" ] || die "no config at $config: mount one (-v \$PWD/autoscale.json:$config:ro) or set AUTOSCALE_CONFIG_FILE"
  local args=(--config "$config" --include "$SHARE/nginx/autoscale.conf"
    --write-config "$PREFIX/autoscale.json" --write-admin "$PREFIX/admin-address"
    --workers "${AUTOSCALE_WORKERS:-auto}" --error-log "stderr ${AUTOSCALE_LOG_LEVEL:-notice}")
  for m in "${MODULES[@]}"; do [ -f "$m" ] && args+=(--load-module "$m"); done
  case "${AUTOSCALE_ACCESS_LOG:-on}" in
    on) args+=(--access-log "/dev/stdout combined buffer=32k flush=1s") ;;
    off) ;;
    *) die "AUTOSCALE_ACCESS_LOG: expected on or off, got ${AUTOSCALE_ACCESS_LOG}" ;;
  esac
  [ -n "${AUTOSCALE_LISTEN:-}" ] && args+=(--listen "$AUTOSCALE_LISTEN")
  [ -n "${AUTOSCALE_ADMIN_LISTEN:-}" ] && args+=(--admin-listen "$AUTOSCALE_ADMIN_LISTEN")
  if [ -n "${AUTOSCALE_ADMIN_TOKEN_FILE:-}" ]; then
    args+=(--admin-token-file "$AUTOSCALE_ADMIN_TOKEN_FILE")
  elif [ -n "${AUTOSCALE_ADMIN_TOKEN:-}" ]; then
    args+=(--admin-token-env AUTOSCALE_ADMIN_TOKEN)
  fi
  for name in ${AUTOSCALE_PASS_ENV:-}; do args+=(--env "$name"); done
  luajit "$SHARE/scripts/luarun.lua" resty.autoscale.tools.standalone_conf "${args[@]}" --out "$PREFIX/conf/nginx.conf"
}

# nginx in the foreground as a child of this shell, which turns TERM/INT/QUIT into nginx's graceful
# stop (SIGQUIT) and HUP into a regenerate + reload; exits with nginx's status.
run_nginx() {
  local on_hup=${1:-}
  nginx -p "$PREFIX/" -c "$PREFIX/conf/nginx.conf" -e stderr -g 'daemon off;' &
  local pid=$!
  trap 'kill -QUIT "$pid" 2>/dev/null || true' TERM INT QUIT
  if [ -n "$on_hup" ]; then
    # In a subshell: a failing check must refuse the reload, never end this shell (and nginx).
    trap "if ( $on_hup ); then kill -HUP \"\$pid\"; else echo 'autoscale: reload refused, nginx keeps the running config' >&2; fi" HUP
  fi
  set +e
  while kill -0 "$pid" 2>/dev/null; do wait "$pid"; done
  wait "$pid"
  exit $?
}

mode=${1:-gateway}
[ $# -gt 0 ] && shift
case "$mode" in
  gateway)
    prepare_prefix
    generate_gateway
    export AUTOSCALE_CONFIG="$PREFIX/autoscale.json"
    run_nginx generate_gateway
    ;;
  conf)
    prepare_prefix
    generate_gateway >/dev/null
    cat "$PREFIX/conf/nginx.conf"
    ;;
  validate)
    exec luajit "$SHARE/scripts/luarun.lua" resty.autoscale.tools.validate "${1:-${AUTOSCALE_CONFIG_FILE:-/etc/autoscale/autoscale.json}}"
    ;;
  backend)
    delay=${1:?usage: backend DELAY [STATUS]}
    status=${2:-200}
    [[ $delay =~ ^[0-9]+(\.[0-9]+)?$ && $status =~ ^[0-9]{3}$ ]] || die "usage: backend DELAY [STATUS]"
    name=${BACKEND_NAME:-$(hostname)}
    prepare_prefix
    echo "127.0.0.1 $PORT" >"$PREFIX/admin-address"
    cat >"$PREFIX/conf/nginx.conf" <<CONF
$(mode_conf_head 1)
http {
    access_log off;
    $temp_paths
    server {
        listen $PORT reuseport backlog=4096;
        keepalive_requests 1000000;
        location = /healthz { return 200 "ok\n"; }
        location / {
            default_type text/plain;
            content_by_lua_block { ngx.sleep($delay) ngx.status = $status ngx.say("backend $name") }
        }
    }
}
CONF
    echo "backend $name: answers $status after ${delay}s on :$PORT" >&2
    run_nginx
    ;;
  webhook-receiver)
    prepare_prefix
    echo "127.0.0.1 $PORT" >"$PREFIX/admin-address"
    cat >"$PREFIX/conf/nginx.conf" <<'CONF'
MODULES_AND_HEAD
http {
    access_log off;
    TEMP_PATHS
    client_body_buffer_size 64k;
    server {
        listen PORT;
        location = /healthz { return 200 "ok\n"; }
        location / {
            content_by_lua_block {
                ngx.req.read_body()
                local body = (ngx.req.get_body_data() or ""):gsub("[\r\n]+", " ")
                io.stdout:write("scale signal received: ", ngx.req.get_method(), " ", ngx.var.request_uri, " ", body, "\n")
                io.stdout:flush()
                ngx.header["Content-Type"] = "application/json"
                ngx.say('{"ok":true}')
            }
        }
    }
}
CONF
    conf=$(cat "$PREFIX/conf/nginx.conf")
    conf=${conf/MODULES_AND_HEAD/$(mode_conf_head 1)}
    conf=${conf/TEMP_PATHS/$temp_paths}
    conf=${conf/listen PORT;/listen $PORT;}
    printf '%s\n' "$conf" >"$PREFIX/conf/nginx.conf"
    echo "webhook receiver on :$PORT: every request is logged on stdout" >&2
    run_nginx
    ;;
  traffic)
    url=${1:?usage: traffic URL [CONCURRENCY]}
    concurrency=${2:-8}
    [[ $url =~ ^http://[A-Za-z0-9._-]+(:[0-9]+)?(/[^\"\\[:space:]]*)?$ && $concurrency =~ ^[0-9]+$ ]] || die "usage: traffic http://HOST[:PORT]/PATH [CONCURRENCY]"
    resolver=$(awk '/^nameserver/ && $2 !~ /:/ {print $2; exit}' /etc/resolv.conf 2>/dev/null || true)
    prepare_prefix
    echo "127.0.0.1 $PORT" >"$PREFIX/admin-address"
    cat >"$PREFIX/conf/nginx.conf" <<CONF
$(mode_conf_head 1)
http {
    access_log off;
    $temp_paths
    ${resolver:+resolver $resolver ipv6=off;}
    lua_socket_log_errors off;
    init_worker_by_lua_block { dofile("$SHARE/traffic.lua")("$url", $concurrency) }
    server {
        listen $PORT;
        location = /healthz { return 200 "ok\n"; }
    }
}
CONF
    echo "traffic: $concurrency concurrent clients to $url" >&2
    run_nginx
    ;;
  *)
    exec "$mode" "$@"
    ;;
esac
