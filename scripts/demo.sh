#!/usr/bin/env bash
# The demo command (`npm run demo`): installs what is missing (nginx + lua-nginx-module, npm
# dependencies), builds, and runs `autoscale demo`. Ctrl-C stops every process it started.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-runtime.sh
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run --silent build
exec node bin/autoscale.js demo "$@"
