#!/usr/bin/env bash
# The bulk-add pacing figure: 200 numbers through the core against a fake that
# allows 10 requests per second (chunks of 10, so 20 adds and one list call).
# Prints elapsed time, the pacing floor and their ratio. Release build.
set -euo pipefail
cd "$(dirname "$0")/.."
for run in 1 2 3; do
  cargo test --release -q --test provider_pacing two_hundred -- --nocapture 2>&1 | grep '^pacing:' | sed "s/^/run $run: /"
done
