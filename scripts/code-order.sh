#!/usr/bin/env bash
# Regenerates link/order.txt: the functions `waops serve` runs from start-up to
# idle, in first-run order, for build.rs to hand to the linker. Run it after a
# dependency or toolchain upgrade (names the build no longer has are skipped, so
# a stale file costs resident memory, never correctness).
#   scripts/code-order.sh         needs gcc, python3, curl
set -euo pipefail
root=$(git rev-parse --show-toplevel); cd "$root"
work=$(mktemp -d); trap 'kill "${pid:-}" 2>/dev/null; rm -rf "$work"' EXIT
gcc -O2 -Wall -shared -fPIC -o "$work/touch.so" link/touch.c
# Page granularity overstates what ran (a traced page holds several functions);
# each pass packs the previous pass's functions, so the next one names fewer.
for pass in 1 2 3; do
cargo build --release --bin waops -q
cp target/release/waops "$work/waops"
rm -f "$work/pages"
(cd "$work" && LD_PRELOAD="$work/touch.so" WAOPS_TOUCH_OUT="$work/pages" WAOPS__DIGESTS__TICK_S=1 \
  WAOPS__SERVER__BIND=127.0.0.1:18599 exec ./waops serve >"$work/log" 2>&1) &
pid=$!
for _ in $(seq 100); do curl -sf 127.0.0.1:18599/healthz >/dev/null && break; sleep 0.1; done
# An idle server's own work: probes, a metrics scrape, scheduler ticks.
for path in healthz readyz metrics; do curl -sf "127.0.0.1:18599/$path" >/dev/null; done
sleep 3
kill -USR2 "$pid"
for _ in $(seq 50); do [ -s "$work/pages" ] && break; sleep 0.1; done
kill "$pid"; wait "$pid" 2>/dev/null || true
rm -f "$work/waops.db"
echo -n "pass $pass: "
python3 link/order.py "$work/waops" "$work/pages" > link/order.txt
done
cargo build --release --bin waops -q
