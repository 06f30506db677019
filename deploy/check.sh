#!/usr/bin/env bash
# The compose stack's equivalent, offline: two replicas of the project's image on
# one PostgreSQL, each sent a signed Slack command, sharing what they store.
#
#   bash deploy/check.sh        (from the project root; exit 0 = all checks hold)
#
# No registry images can be pulled here, so, as in ../shared/tools/container-check:
#   - the image is the one container-check builds (localhost/waops:check: the
#     Dockerfile's `runtime` stage on a debootstrapped debian:bookworm-slim, with
#     the binary from `cargo build --release`); this script runs container-check
#     first when that image is missing;
#   - PostgreSQL comes from Debian packages (scripts/postgres.sh), not postgres:16;
#   - the replicas run with `buildah run` (chroot isolation, the host's network)
#     on two free ports instead of behind nginx, with compose.yaml's environment:
#     deploy/.env.example, its WAOPS_CONFIG and deploy/waops.toml mounted read-only.
set -euo pipefail
root=$(git rev-parse --show-toplevel 2>/dev/null || pwd); cd "$root"
B="buildah --storage-driver vfs"
image=localhost/waops:check
if ! command -v buildah >/dev/null || ! $B inspect --type image "$image" >/dev/null 2>&1; then
  ../shared/tools/container-check
fi
# shellcheck source=scripts/postgres.sh
source scripts/postgres.sh
db=$WAOPS_TEST_POSTGRES_URL

secret=deploy-check-signing-secret
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
env_args=()
while IFS='=' read -r key value; do
  case "$key" in ''|'#'*|POSTGRES_PASSWORD) continue ;; esac
  env_args+=(--env "$key=$value")
done < deploy/.env.example
env_args+=(--env WAOPS_CONFIG=/etc/waops/waops.toml --env "WAOPS__STORE__URL=$db"
  --env "WAOPS__SLACK__SIGNING_SECRET=$secret")

pids=(); cids=(); logs=$(mktemp -d)
# deploy/waops.toml with the checking user bound to admin (bindings are lists:
# a file's business, not the environment's).
sed 's/^admin = \["console"\]/admin = ["console", "slack:user:UCHECK"]/' deploy/waops.toml >"$logs/waops.toml"
grep -q UCHECK "$logs/waops.toml" || { echo "deploy-check: deploy/waops.toml has no admin binding to extend" >&2; exit 2; }
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for c in "${cids[@]}"; do $B rm "$c" >/dev/null 2>&1 || true; done
  rm -rf "$logs"
}
trap 'cleanup; waops_pg_stop' EXIT

ports=()
for replica in 1 2; do
  port=$(free_port); ports+=("$port")
  cid=$($B from "$image"); cids+=("$cid")
  $B run --isolation chroot --volume "$logs/waops.toml:/etc/waops/waops.toml:ro" \
    "${env_args[@]}" --env "WAOPS__SERVER__BIND=127.0.0.1:$port" "$cid" -- waops serve \
    >"$logs/waops-$replica.log" 2>&1 &
  pids+=($!)
done

fail=0; bad() { echo "  FAIL: $1"; fail=1; }
for i in 0 1; do
  ok=0
  for _ in $(seq 200); do curl -fs -m 1 "http://127.0.0.1:${ports[$i]}/readyz" >/dev/null && { ok=1; break; }; sleep 0.1; done
  [ $ok = 1 ] || { bad "replica $((i + 1)) never became ready"; tail -20 "$logs/waops-$((i + 1)).log"; }
done

# A signed slash command, as Slack sends it; prints the HTTP status and body.
slack() {
  python3 - "$1" "$secret" "$2" "$3" <<'EOF'
import hashlib, hmac, sys, time, urllib.parse, urllib.request
port, secret, channel, text = sys.argv[1:5]
body = urllib.parse.urlencode({
    "team_id": "T1", "channel_id": channel, "user_id": "UCHECK", "command": "/wa", "text": text,
    "response_url": "https://hooks.slack.com/commands/T1/1/x", "trigger_id": f"check-{time.time_ns()}",
}).encode()
ts = str(int(time.time()))
sig = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
req = urllib.request.Request(f"http://127.0.0.1:{port}/slack/commands", data=body, headers={
    "content-type": "application/x-www-form-urlencoded",
    "x-slack-request-timestamp": ts, "x-slack-signature": sig})
with urllib.request.urlopen(req, timeout=5) as r:
    print(r.status, r.read().decode())
EOF
}

if [ $fail = 0 ]; then
  # Each replica answers a signed command.
  for i in 0 1; do
    out=$(slack "${ports[$i]}" C0CHECK "whoami") || out="error"
    case "$out" in 200*slack:user:UCHECK*) ;; *) bad "replica $((i + 1)): whoami answered: $out" ;; esac
  done
  # They share one store: a subscription made on one is listed by the other.
  out=$(slack "${ports[0]}" C0CHECK "subscribe sales --every 1d") || out="error"
  case "$out" in 200*) ;; *) bad "replica 1: subscribe answered: $out" ;; esac
  out=$(slack "${ports[1]}" C0CHECK "subscriptions") || out="error"
  case "$out" in 200*"Sales Team"*) ;; *) bad "replica 2 does not list replica 1's subscription: $out" ;; esac
fi
echo "deploy-check: replicas on ports ${ports[*]}, store postgres, $([ $fail = 0 ] && echo ok || echo failed)"
exit $fail
