#!/usr/bin/env bash
# Times what a new user does: a fresh clone, `npm ci && npm start`, until the console is served.
# Prints JSON. Usage: bash bench/fresh-start.sh [port]
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
port=${1:-18099}
dir=$(mktemp -d /tmp/pw-fresh-XXXX)
git clone -q "$src" "$dir/patchwarden"
cd "$dir/patchwarden"
start=$(date +%s.%N)
npm ci --no-audit --no-fund >"$dir/npm-ci.log" 2>&1
ci_done=$(date +%s.%N)
# its own process group, so that stopping it stops npm and the server under it, not this script
PATCHWARDEN_PORT=$port setsid npm start >"$dir/start.log" 2>&1 &
pid=$!
until curl -sf "http://127.0.0.1:$port/" | grep -q '<div id="root">'; do
  kill -0 $pid 2>/dev/null || { cat "$dir/start.log"; exit 1; }
  sleep 0.2
done
served=$(date +%s.%N)
until grep -q 'packages reported' "$dir/start.log"; do sleep 0.2; done
reported=$(date +%s.%N)
kill -- -$pid 2>/dev/null || kill $pid
wait $pid 2>/dev/null || true
awk -v s="$start" -v c="$ci_done" -v v="$served" -v r="$reported" -v node="$(node --version)" -v cores="$(nproc)" 'BEGIN {
  printf "{\"npmCiSeconds\": %.1f, \"npmCiAndStartToConsoleSeconds\": %.1f, \"toFirstInventorySeconds\": %.1f, \"node\": \"%s\", \"cores\": %d}\n", c - s, v - s, r - s, node, cores }'
rm -rf "$dir"
