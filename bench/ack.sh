#!/usr/bin/env bash
# The ack-path figures: waops serve (release) against a minimal signed-ack
# server, Slack and Discord, 64 and 256 concurrent, provider fake at 300 ms.
# Two layouts: "shared" (load client, fakes, floor and waops on every core) and,
# with two or more cores, "split" (load client and fakes on CPU 0, the server
# under test on CPU 1), so the server-side figures are not the load client's.
# Usage: bench/ack.sh [requests] [max_in_flight]   (defaults 4000 4096)
# BENCH_ROUNDS=3 repeats every cell in the same processes and prints each cell's
# median ratio and p99; BENCH_ONLY=slack:64 runs one cell.
set -euo pipefail
cd "$(dirname "$0")/.."
# Two invocations: built together, the binary would get the dev-dependencies'
# features (tokio's, wiremock's) and differ from the one the Dockerfile ships.
cargo build --release --bin waops
cargo build --release --example ack_bench
echo "### shared cores"
target/release/examples/ack_bench "${1:-4000}" "${2:-4096}"
if [ "$(nproc)" -ge 2 ]; then
    echo
    echo "### split: load client and fakes on CPU 0, server under test on CPU 1"
    BENCH_CLIENT_CPUS=0 BENCH_SERVER_CPUS=1 target/release/examples/ack_bench "${1:-4000}" "${2:-4096}"
fi
