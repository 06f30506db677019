#!/usr/bin/env bash
# Instructions per Discord (or Slack) ack on the HTTP threads, waops against the floor,
# counted by callgrind (valgrind): the same figure on every rerun of the same
# build, whatever else the machine is doing, unlike the timed ratios of
# bench/ack.sh. Each server runs under callgrind in the "waops" slot of
# ack_bench (one round of N acks at 64 concurrent), one thread per profile.
#   bash bench/ack_instructions.sh [acks] [discord|slack]   (default 2000 discord;
#   about 4 minutes, most of it ack_bench waiting 120 s for the floor's
#   follow-ups, which never come)
# Needs valgrind, and release builds of the binary and the bench, built apart
# (building them in one command unifies features and renames functions):
#   cargo build --release --bin waops && cargo build --release --example ack_bench
set -euo pipefail
root=$(git rev-parse --show-toplevel); cd "$root"
acks=${1:-2000}
platform=${2:-discord}
# The HTTP threads are the ones that verified signatures: ed25519 for Discord,
# the HMAC of the Slack verifier (which the floor shares) for Slack.
case $platform in
  discord) verifier=vartime_double_base ;;
  slack) verifier=slack::verify ;;
  *) echo "platform: discord or slack" >&2; exit 2 ;;
esac
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
# shellcheck source=bench/valgrind_slot.sh
source bench/valgrind_slot.sh

# profile NAME COMMAND...: run COMMAND under callgrind as the bench's server.
profile() {
  local name=$1; shift
  under_valgrind "$work/$name" "$platform" "$acks" \
    "--tool=callgrind --separate-threads=yes" --callgrind-out-file= "$@"
  local total=0 files=()
  for f in "$work/$name"/out.*-*; do
    if grep -q "$verifier" "$f"; then
      files+=("$f")
      total=$(( total + $(awk '/^summary:/ {print $2}' "$f") ))
    fi
  done
  # Warm-up requests (two) are counted with the round.
  echo "$name: $(( total / (acks + 2) )) instructions per ack on ${#files[@]} HTTP thread(s)"
  callgrind_annotate --inclusive=yes "${files[0]}" 2>/dev/null |
    grep -E '^ *[0-9,]+ \(' |
    grep -E "$verifier"'|discord::handle|slack::slash_command|slack::verify|answer_without_provider|phone::parse_list|serde_json|every_request|:malloc|:free' |
    head -12 | sed 's/\[[^]]*\]$//' | cut -c1-150
}

# The floor serves where waops would: the bench starts it with `serve` and the bind in the environment.
profile floor "$root/target/release/examples/ack_bench floor \$WAOPS__SERVER__BIND"
profile waops "$root/target/release/waops"
