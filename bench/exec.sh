#!/usr/bin/env bash
# Reproducible figures for the console and the idle server:
#  - time of one `waops exec` against the sandbox (hyperfine, release build)
#  - idle RSS and open files of `waops serve`, and RSS after 1,000 /healthz requests
#  - release binary size
# Usage: bench/exec.sh   (installs hyperfine from Debian packages if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { apt-get update -qq >/dev/null && apt-get install -y -qq hyperfine >/dev/null; }
cargo build --release -q
bin=$PWD/target/release/waops
work=$(mktemp -d); trap 'kill "${pid:-}" 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"
export WAOPS__STORE__URL="sqlite://$work/bench.db"
"$bin" migrate >/dev/null

echo "## machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r), $(date -u +%F)"
echo "## binary: $(stat -c %s "$bin") bytes"
hyperfine -N --warmup 3 --runs 50 --style basic \
  "$bin exec help" \
  "$bin exec groups" \
  "$bin exec \"add sales +49 151 1234 5678, 0151-1234-5679 --dry-run\"" \
  "$bin exec \"add sales +4915112345678\"" 2>&1 | grep -E "Benchmark|Time|Range"

port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
start=$(date +%s%N)
WAOPS__SERVER__BIND=127.0.0.1:$port "$bin" serve 2>"$work/serve.log" & pid=$!
until curl -fs "http://127.0.0.1:$port/healthz" >/dev/null; do :; done
echo "## serve: first /healthz answered $(( ($(date +%s%N) - start) / 1000000 )) ms after exec"
sleep 2 # let start-up work (phone metadata warm-up) finish before reading idle memory
echo "## serve idle RSS: $(awk '/VmRSS/{print $2" "$3}' /proc/$pid/status)"
echo "## serve open files at idle: $(ls /proc/$pid/fd | wc -l) (limit $(awk '/Max open files/{print $4}' /proc/$pid/limits)); $(grep -o 'client_connections[^ ]*' "$work/serve.log" | tr -d '\033' | head -1)"
for _ in $(seq 1000); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null; done
echo "## serve RSS after 1000 /healthz: $(awk '/VmRSS/{print $2" "$3}' /proc/$pid/status)"
kill -TERM $pid; wait $pid; echo "## serve exit code after SIGTERM: $?"; pid=
