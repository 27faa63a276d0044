#!/bin/bash
# HEALTHCHECK: GET /healthz on the admin server (the address the entrypoint wrote), with bash's
# /dev/tcp: the image carries no curl.
read -r host port <"${AUTOSCALE_PREFIX:-/var/lib/autoscale}/admin-address" || exit 1
exec 3<>"/dev/tcp/$host/$port" || exit 1
printf 'GET /healthz HTTP/1.0\r\nHost: %s\r\n\r\n' "$host" >&3
IFS= read -r -t 2 line <&3 || exit 1
[[ $line == HTTP/1.?" 200 "* ]]
