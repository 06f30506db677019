#!/usr/bin/env bash
# Regenerates link/order.txt: the functions `waops serve` runs from start-up to
# idle, in first-run order, for build.rs to hand to the linker. Two servers are
# traced: the default configuration (sandbox), then one with Slack, Discord and
# an HTTP provider configured. Run it after a dependency or toolchain upgrade
# (CI fails when the file no longer names the build's functions); a stale file
# costs resident memory, never correctness.
#   scripts/code-order.sh         needs gcc, python3, curl; about 15 minutes
set -euo pipefail
root=$(git rev-parse --show-toplevel); cd "$root"
work=$(mktemp -d); trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
gcc -O2 -Wall -shared -fPIC -o "$work/touch.so" link/touch.c

# trace NAME [VAR=VALUE...]: start a traced server, let it idle, write $work/NAME.
trace() {
  local name=$1; shift
  rm -rf "$work/run"; mkdir "$work/run"
  (cd "$work/run" && exec env LD_PRELOAD="$work/touch.so" WAOPS_TOUCH_OUT="$work/$name" \
    WAOPS__DIGESTS__TICK_S=1 WAOPS__SERVER__BIND=127.0.0.1:18599 "$@" "$work/waops" serve >log 2>&1) &
  pid=$!
  for _ in $(seq 100); do curl -sf 127.0.0.1:18599/healthz >/dev/null && break; sleep 0.1; done
  # An idle server's own work: probes, a metrics scrape, scheduler ticks; and
  # the refusals an exposed server sees (unsigned chat requests).
  for path in healthz readyz metrics; do curl -s "127.0.0.1:18599/$path" >/dev/null; done
  for path in slack/commands discord/interactions; do curl -s -X POST "127.0.0.1:18599/$path" >/dev/null; done
  sleep 3
  kill -USR2 "$pid"
  for _ in $(seq 50); do [ -s "$work/$name" ] && break; sleep 0.1; done
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
}

# Page granularity overstates what ran (a traced page holds several functions);
# each pass packs the previous pass's functions, so the next one names fewer.
nowhere=http://127.0.0.1:9
for pass in 1 2 3; do
  cargo build --release --bin waops -q
  cp target/release/waops "$work/waops"
  trace default
  trace chat WAOPS__SLACK__SIGNING_SECRET=s WAOPS__SLACK__BOT_TOKEN=b WAOPS__SLACK__API_URL=$nowhere \
    WAOPS__DISCORD__PUBLIC_KEY=d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a WAOPS__DISCORD__APPLICATION_ID=1 \
    WAOPS__DISCORD__BOT_TOKEN=b WAOPS__DISCORD__API_URL=$nowhere \
    WAOPS__PROVIDER__KIND=periskope WAOPS__PROVIDER__BASE_URL=$nowhere WAOPS__PROVIDER__TOKEN=t \
    WAOPS__PROVIDER__PHONE=1
  echo -n "pass $pass: "
  python3 link/order.py "$work/waops" "$work/default" "$work/chat" > link/order.txt
done
cargo build --release --bin waops -q
