#!/usr/bin/env bash
# The chat path under load (examples/load.rs): a flood (64 connections, closed
# loop, 15 s) and a steady open loop (50 commands/s, 30 s) of signed Slack adds
# against waops serve (release) and a minimal signed-ack floor; the provider
# fake answers after 300 ms. About 2 minutes after the build.
# Usage: bench/load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# Two invocations: built together, the binary would get the dev-dependencies'
# features and differ from the one the Dockerfile ships.
cargo build --release --locked --bin waops
cargo build --release --locked --example load
target/release/examples/load target/release/waops
