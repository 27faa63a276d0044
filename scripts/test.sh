#!/usr/bin/env bash
# The test command (`npm test`): installs what is missing, type-checks, builds, then runs the
# busted specs under LuaJIT and the integration tests on real nginx. Ends with one line
# "N passed, N failed" over all suites.
set -uo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-runtime.sh --test || exit 1
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund || exit 1
fi

passed=0
failed=0
fail_suite() { echo "FAILED: $1" >&2; failed=$((failed + 1)); }

echo "== type check"
if npm run --silent typecheck; then passed=$((passed + 1)); else fail_suite "type check"; fi
echo "== build"
if ! npm run --silent build; then
  fail_suite "build"
  echo "$passed passed, $failed failed"
  exit 1
fi
passed=$((passed + 1))

echo "== busted specs (LuaJIT)"
busted_out=$(mktemp)
busted -o TAP | tee "$busted_out"
busted_rc=${PIPESTATUS[0]}
b_ok=$(grep -c '^ok ' "$busted_out")
b_fail=$(grep -c '^not ok ' "$busted_out")
passed=$((passed + b_ok))
failed=$((failed + b_fail))
if [ "$busted_rc" -ne 0 ] && [ "$b_fail" -eq 0 ]; then fail_suite "busted exited $busted_rc"; fi
rm -f "$busted_out"

echo "== integration tests (real nginx; Docker image and compose demo)"
# Whatever happens next (a failure, Ctrl-C, CI's timeout), remove what the Docker setup created.
trap 'bash scripts/docker-setup.sh down' EXIT
trap 'exit 130' INT TERM
bash scripts/docker-setup.sh up || echo "docker setup failed: the Docker tests will fail" >&2
node_out=$(mktemp)
node --test --test-concurrency=1 --test-reporter=tap build/node/test/integration/ | tee "$node_out"
node_rc=${PIPESTATUS[0]}
n_ok=$(awk '/^# pass [0-9]+$/ {n = $3} END {print n + 0}' "$node_out")
n_fail=$(awk '/^# fail [0-9]+$/ {n = $3} END {print n + 0}' "$node_out")
passed=$((passed + ${n_ok:-0}))
failed=$((failed + ${n_fail:-0}))
if [ "$node_rc" -ne 0 ] && [ "${n_fail:-0}" -eq 0 ]; then fail_suite "node --test exited $node_rc"; fi
rm -f "$node_out"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
