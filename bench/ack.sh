#!/usr/bin/env bash
# The ack-path figures: waops serve (release) against a minimal signed-ack
# server, Slack and Discord, 64 and 256 concurrent, provider fake at 300 ms.
# Usage: bench/ack.sh [requests] [max_in_flight]   (defaults 4000 4096)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin waops --example ack_bench
target/release/examples/ack_bench "${1:-4000}" "${2:-4096}"
