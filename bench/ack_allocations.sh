#!/usr/bin/env bash
# Heap allocations per Discord (or Slack) ack on the request path, waops against the
# floor, counted by DHAT (valgrind): within about 0.3 an ack on every rerun of the same
# build (a few allocations, such as a connection's read buffer, depend on scheduling).
# Each server runs under DHAT in the "waops" slot of ack_bench (one round of N acks at
# 64 concurrent). An allocation counts when its stack runs through the server's
# connection task or a handler and not through a follow-up, an outbound client or the
# store; it "outlives the request" when it lives over 5 million instructions (an ack
# is about 420,000), which is what a follow-up keeps and frees on another thread.
#   bash bench/ack_allocations.sh [acks] [discord|slack] [waops binary]
#   (default 2000 discord target/release/waops; about 3 minutes)
# Needs valgrind, and release builds of the binary and the bench, built apart:
#   cargo build --release --bin waops && cargo build --release --example ack_bench
set -euo pipefail
root=$(git rev-parse --show-toplevel); cd "$root"
acks=${1:-2000}
platform=${2:-discord}
waops=${3:-$root/target/release/waops}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
# shellcheck source=bench/valgrind_slot.sh
source bench/valgrind_slot.sh

# profile NAME COMMAND...: run COMMAND under DHAT as the bench's server, then count.
profile() {
  local name=$1; shift
  under_valgrind "$work/$name" "$platform" "$acks" --tool=dhat --dhat-out-file= "$@"
  python3 - "$name" "$acks" "$work/$name"/out.* <<'EOF'
import json, re, sys
name, acks, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
profile = json.load(open(path))
frames = profile["ftbl"]
request = re.compile(r"UpgradeableConnection|handle_connection|axum::|discord::handle|every_request|Handler")
elsewhere = re.compile(r"try_spawn|run_later|deliver|reqwest|hyper_util::client|ApiClient|write_batches|sqlx|regex_cache")
count = kept = size = 0
for point in profile["pps"]:
    stack = " ".join(frames[i] for i in point["fs"])
    if point["tbk"] < acks * 0.2 or not request.search(stack) or elsewhere.search(stack):
        continue
    count += point["tbk"]
    size += point["tb"]
    if point["tl"] / point["tbk"] > 5e6:
        kept += point["tbk"]
print(f"{name}: {count / acks:.1f} allocations per ack on the request path, "
      f"{kept / acks:.1f} outliving the request, {size / acks:,.0f} bytes")
EOF
}

# The floor serves where waops would: the bench starts it with `serve` and the bind in the environment.
profile floor "$root/target/release/examples/ack_bench floor \$WAOPS__SERVER__BIND"
profile waops "$waops"
