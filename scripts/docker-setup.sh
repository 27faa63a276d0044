#!/usr/bin/env bash
# Docker for the image tests (`npm test` runs them, and so does CI):
#   scripts/docker-setup.sh up     installs docker.io, docker-compose and debootstrap when missing,
#                                  starts dockerd when no daemon answers, makes the base image
#                                  debian:bookworm-slim locally when it is absent (no registry is
#                                  reachable here); prints nothing else on success.
#   scripts/docker-setup.sh down   removes what `up` created (test containers, the project's images,
#                                  the locally made base image) and stops the dockerd it started.
# What `up` created is recorded in a state directory, so `down` never touches a daemon or image
# that was there before. AUTOSCALE_DOCKER_KEEP=1 keeps the images and the daemon (faster reruns
# while developing); CI leaves it unset.
set -euo pipefail
cd "$(dirname "$0")/.."

STATE=${AUTOSCALE_DOCKER_STATE:-/tmp/autoscale-docker-state}
BASE=debian:bookworm-slim
mkdir -p "$STATE"

log() { echo "docker-setup: $*" >&2; }

mirror() {
  local uri
  uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '/^deb / && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

install_tools() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

start_daemon() {
  if docker info >/dev/null 2>&1; then return 0; fi
  log "starting dockerd"
  # The dockerd creates the docker0 bridge when the machine has none; it outlives the daemon.
  if [ -d /sys/class/net/docker0 ]; then echo yes; else echo no; fi >"$STATE/bridge-before"
  dockerd >"$STATE/dockerd.log" 2>&1 &
  echo $! >"$STATE/dockerd.pid"
  for _ in $(seq 1 100); do
    docker info >/dev/null 2>&1 && return 0
    if ! kill -0 "$(cat "$STATE/dockerd.pid")" 2>/dev/null; then break; fi
    sleep 0.3
  done
  log "dockerd did not come up; its log:"
  tail -n 30 "$STATE/dockerd.log" >&2
  return 1
}

make_base_image() {
  docker image inspect "$BASE" >/dev/null 2>&1 && return 0
  if docker pull -q "$BASE" >/dev/null 2>&1; then touch "$STATE/base-image-made"; return 0; fi
  log "making $BASE locally with debootstrap (no registry reachable)"
  local rootfs
  rootfs=$(mktemp -d /tmp/autoscale-rootfs.XXXXXX)
  debootstrap --variant=minbase bookworm "$rootfs" "$(mirror)" >"$STATE/debootstrap.log" 2>&1 || {
    tail -n 30 "$STATE/debootstrap.log" >&2
    rm -rf "$rootfs"
    return 1
  }
  (cd "$rootfs" && rm -rf var/cache/apt/*.bin var/cache/apt/archives/*.deb var/lib/apt/lists/* usr/share/doc/* usr/share/man/*)
  tar -C "$rootfs" -c . | docker import -c 'CMD ["bash"]' - "$BASE" >/dev/null
  rm -rf "$rootfs"
  touch "$STATE/base-image-made"
}

project_images() { docker image ls -q --no-trunc --filter label=lua-resty-autoscale | sort -u; }

# What exists before the tests, so that `down` removes only what this run added.
record_before() {
  [ -f "$STATE/images-before" ] || project_images >"$STATE/images-before"
}

down() {
  if docker info >/dev/null 2>&1; then
    # testcontainers runs without Ryuk here: remove its containers, then the compose demo's.
    local ids
    ids=$(docker ps -aq --filter label=org.testcontainers || true)
    [ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1 || true
    ids=$(docker ps -aq --filter label=com.docker.compose.project=autoscaledemo || true)
    [ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1 || true
    docker network ls -q --filter label=com.docker.compose.project=autoscaledemo | xargs -r docker network rm >/dev/null 2>&1 || true
    docker network ls -q --filter label=org.testcontainers | xargs -r docker network rm >/dev/null 2>&1 || true
    if [ "${AUTOSCALE_DOCKER_KEEP:-0}" != 1 ]; then
      # The project's images (gateway, its build stage, the demo's redis) carry this label; the
      # ones that were there before `up` stay.
      project_images | comm -23 - <(sort -u "$STATE/images-before" 2>/dev/null) | xargs -r docker rmi -f >/dev/null 2>&1 || true
      if [ -f "$STATE/base-image-made" ]; then docker rmi -f "$BASE" >/dev/null 2>&1 || true; fi
    fi
  fi
  [ "${AUTOSCALE_DOCKER_KEEP:-0}" = 1 ] && return 0
  if [ -f "$STATE/dockerd.pid" ]; then
    local pid
    pid=$(cat "$STATE/dockerd.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if [ "$(cat "$STATE/bridge-before" 2>/dev/null)" = no ] && [ -d /sys/class/net/docker0 ]; then
      ip link delete docker0 2>/dev/null || true
    fi
  fi
  rm -rf "$STATE"
}

case "${1:-up}" in
  up)
    install_tools
    start_daemon
    record_before
    make_base_image
    ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
