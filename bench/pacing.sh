#!/usr/bin/env bash
# The bulk-add pacing figure: N numbers (default 1000) through the core against
# a fake that allows 10 requests per second and answers 429 beyond (chunks of
# 10, so N/10 adds and one list call). Prints elapsed time, the pacing floor,
# their ratio and the 429 count for three runs, and fails if any run is over
# the 1.1 target or saw a 429. Release build.
# Usage: bench/pacing.sh [numbers]
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for run in 1 2 3; do
  line=$(WAOPS_PACING_NUMBERS="${1:-1000}" cargo test --release -q --test provider_pacing bulk_add_paced -- --nocapture 2>&1 | grep '^pacing:' || true)
  echo "run $run: ${line:-no result (the test failed; run it directly to see why)}"
  ratio=$(sed -n 's/.*ratio \([0-9.]*\);.*/\1/p' <<<"$line")
  rejected=$(sed -n 's/.*429s \([0-9]*\).*/\1/p' <<<"$line")
  if [[ -z $ratio ]] || ! awk -v r="$ratio" 'BEGIN { exit !(r <= 1.1) }' || [[ $rejected != 0 ]]; then
    status=1
  fi
done
exit $status
