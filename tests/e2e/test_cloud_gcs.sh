#!/usr/bin/env bash
# test_cloud_gcs.sh -- the whole CLI suite against Google Cloud Storage's JSON API, served on
# 127.0.0.1 by the firebase-tools storage emulator (tests/servers/start-gcs.sh, which also
# starts tests/servers/token_server.py, an OAuth2 token endpoint for the throwaway key):
#   - the backend's unit tests against the emulator (the test_gcs program, when built);
#   - init, backups with the three strategies, list, restore of each (byte-identical),
#     check --read-data, delete + prune, all at --repo gcs:nova-e2e/hosts/h1 with
#     STORAGE_EMULATOR_HOST set, as Google's client libraries read it;
#   - the same with a service account (GOOGLE_APPLICATION_CREDENTIALS): JWT, token exchange;
#   - an independent client (rclone's gcs backend) lists what Nova wrote, and every pack it
#     downloads hashes to its name;
#   - refused credentials (a key the token endpoint does not know) give BACKUP_001 (exit 5)
#     naming the token endpoint and never the key; so does an endpoint where nothing listens;
#   - the emulator killed (SIGKILL) and restarted in the middle of a backup: the repository
#     checks clean and the next backup succeeds and restores (gcs-emulator.js records every
#     finished upload before answering, so nothing acknowledged is lost);
# Prints "skip: ..." and exits 0 when the servers are not installed (tests/servers/install.sh).
set -euo pipefail
NOVA=${NOVA:?path to the nova binary}
here=$(cd "$(dirname "$0")" && pwd)
source_dir=${NOVA_TEST_SOURCE_DIR:-$here/../..}
servers=$source_dir/tests/servers
if [ ! -f "$servers/node_modules/firebase-tools/package.json" ] || ! command -v node >/dev/null; then
  echo "skip: the gcs emulator (firebase-tools) is not installed (run tests/servers/install.sh)"
  exit 0
fi
tmp=$(mktemp -d "${NOVA_TEST_TMP:-/tmp}/e2e-gcs.XXXXXX" 2>/dev/null || mktemp -d)
tmp=$(cd "$tmp" && pwd -P)
bg=""
cleanup() {
  [ -z "$bg" ] || kill -9 "$bg" 2>/dev/null || true
  bash "$servers/stop-gcs.sh" --keep-data >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
passed=0
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_cloud.sh"
token_count() { curl -s "${NOVA_TEST_GCS_TOKEN_URI%/token}/count" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
unset NOVA_REPOSITORY NOVA_PASSWORD NOVA_CONFIG GOOGLE_APPLICATION_CREDENTIALS \
  STORAGE_EMULATOR_HOST || true

start_servers() { # [--port PORT] [--no-token-server] -- same data directory every time
  local env
  env=$(bash "$servers/start-gcs.sh" --dir "$tmp/gcs" --parent-pid $$ "$@") || fail "start the gcs emulator"
  eval "$env"
}
start_servers
endpoint=$NOVA_TEST_GCS_ENDPOINT
export NOVA_PASSWORD=e2e-gcs-secret

# ---- the backend's unit tests against this emulator (and the token endpoint)
unit=$(dirname "$NOVA")/test_gcs
if [ -x "$unit" ]; then
  NOVA_TEST_SOURCE_DIR=$source_dir NOVA_TEST_TMP=${NOVA_TEST_TMP:-$tmp} \
    "$unit" >"$tmp/unit.out" 2>&1 || { cat "$tmp/unit.out" >&2; fail "test_gcs against the emulator"; }
  if grep -q SKIPPED "$tmp/unit.out"; then cat "$tmp/unit.out" >&2; fail "test_gcs skipped tests with a server running"; fi
  ok
fi

# ---- init, the three strategies, list, restore, check --read-data (lib_cloud.sh)
repo=gcs:nova-e2e/hosts/h1
cloud_init "$repo"
export NOVA_REPOSITORY=$repo
cloud_three_backups

# ---- with a service account: a signed JWT is exchanged for a token (one per process)
before=$(token_count issued)
GOOGLE_APPLICATION_CREDENTIALS=$NOVA_TEST_GCS_CREDENTIALS expect_exit 0 "$NOVA" --json list
json "ids=[b['backup_id'] for b in d]; assert '$id_full' in ids, ids"
GOOGLE_APPLICATION_CREDENTIALS=$NOVA_TEST_GCS_CREDENTIALS restores_identical "$id_diff" "$tmp/state-diff"
after=$(token_count issued)
[ $((after - before)) -eq 2 ] || fail "expected one token exchange per nova process, saw $((after - before))"
ok

# ---- the same repository named by the config file (storage.gcs) with no --repo
cat >"$tmp/config.json" <<EOF
{"storage": {"gcs": {"bucket": "nova-e2e", "endpoint": "$endpoint",
                     "credentials_file": "$NOVA_TEST_GCS_CREDENTIALS"}}}
EOF
expect_exit 0 env -u NOVA_REPOSITORY -u STORAGE_EMULATOR_HOST "$NOVA" --config "$tmp/config.json" \
  --repo gcs:/hosts/h1 --json list
json "ids=[b['backup_id'] for b in d]; assert '$id_full' in ids, ids"
ok

# ---- an independent client (rclone's gcs backend) lists what Nova wrote
if command -v rclone >/dev/null; then
  remote=":gcs,anonymous=true,endpoint='$endpoint/storage/v1/':nova-e2e/hosts/h1"
  rclone --config /dev/null lsf -R --files-only "$remote" >"$tmp/indep.lst" 2>"$tmp/indep.err" \
    || { cat "$tmp/indep.err" >&2; fail "rclone lsf"; }
  grep -qx config "$tmp/indep.lst" || { cat "$tmp/indep.lst" >&2; fail "rclone does not see 'config'"; }
  for dir in keys/ index/ data/ snapshots/; do
    grep -q "^$dir" "$tmp/indep.lst" || { cat "$tmp/indep.lst" >&2; fail "rclone sees no $dir objects"; }
  done
  for pack in $(grep '^data/' "$tmp/indep.lst" | head -3); do
    got=$(rclone --config /dev/null cat "$remote/$pack" | sha256sum | cut -c1-64)
    [ "$got" = "$(basename "$pack")" ] || fail "pack $pack read by rclone hashes to $got"
  done
  echo "rclone sees $(wc -l <"$tmp/indep.lst") objects"
  ok
else
  fail "rclone is not installed: no independent client to list what nova wrote (scripts/install-deps.sh installs it)"
fi

# ---- refused credentials, and an endpoint where nothing listens: BACKUP_001 (exit 5)
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tmp/wrong.pem" 2>/dev/null \
  || fail "openssl genpkey"
python3 - "$NOVA_TEST_GCS_CREDENTIALS" "$tmp/wrong.pem" "$tmp/wrong-key.json" <<'EOF'
import json, sys
key = json.load(open(sys.argv[1]))
key["private_key"] = open(sys.argv[2]).read()
json.dump(key, open(sys.argv[3], "w"))
EOF
wrong_line=$(sed -n 2p "$tmp/wrong.pem")
token_endpoint=${NOVA_TEST_GCS_TOKEN_URI%/token}; token_endpoint=${token_endpoint#http://}
refused_before=$(token_count refused)
GOOGLE_APPLICATION_CREDENTIALS=$tmp/wrong-key.json expect_exit 5 "$NOVA" list
grep -q BACKUP_001 "$tmp/err" || { cat "$tmp/err" >&2; fail "wrong key: no BACKUP_001"; }
grep -qF "$token_endpoint" "$tmp/err" || { cat "$tmp/err" >&2; fail "wrong key: token endpoint not named"; }
if grep -q "gave up after" "$tmp/err"; then cat "$tmp/err" >&2; fail "a refused key was retried"; fi
if grep -qF "$wrong_line" "$tmp/out" "$tmp/err"; then fail "wrong key: the key appears in the output"; fi
GOOGLE_APPLICATION_CREDENTIALS=$tmp/wrong-key.json expect_exit 5 "$NOVA" --json list
if grep -qF "$wrong_line" "$tmp/out" "$tmp/err"; then fail "wrong key: the key appears in --json output"; fi
[ "$(token_count refused)" -gt "$refused_before" ] || fail "the token endpoint saw no refused assertion"
dead_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf '{"storage": {"retry_deadline": "2s"}}\n' >"$tmp/deadline.json"
STORAGE_EMULATOR_HOST=127.0.0.1:$dead_port expect_exit 5 "$NOVA" --config "$tmp/deadline.json" list
grep -q BACKUP_001 "$tmp/err" || { cat "$tmp/err" >&2; fail "dead endpoint: no BACKUP_001"; }
grep -q "at the deadline" "$tmp/err" || { cat "$tmp/err" >&2; fail "dead endpoint: storage.retry_deadline not applied"; }
grep -qF "127.0.0.1:$dead_port" "$tmp/err" || { cat "$tmp/err" >&2; fail "dead endpoint not named"; }
if grep -rqF "BEGIN PRIVATE KEY" "$tmp/gcs/state/blobs" 2>/dev/null; then
  fail "a private key was written into the repository"
fi
ok

# ---- delete + prune
expect_exit 0 "$NOVA" delete "$id_inc"
expect_exit 0 "$NOVA" --json prune --max-repack-ratio 1
expect_exit 0 "$NOVA" --json check --read-data
json "assert d['status']=='ok', d['errors']"
restores_identical "$id_full" "$tmp/state-full"
restores_identical "$id_diff" "$tmp/state-diff"
ok

# ---- the emulator killed and restarted in the middle of a backup
head -c 40000000 /dev/urandom >"$src/layers/episodic/large.bin"
"$NOVA" --json backup --strategy incremental "$src" >"$tmp/bg.out" 2>"$tmp/bg.err" & bg=$!
sleep 0.7
kill -9 "$NOVA_TEST_GCS_PID"; wait "$NOVA_TEST_GCS_PID" 2>/dev/null || true
sleep 0.5
start_servers --port "$NOVA_TEST_GCS_PORT" --no-token-server
set +e; wait "$bg"; bg_rc=$?; set -e; bg=""
echo "backup interrupted by the restart exited $bg_rc"
if [ "$bg_rc" -eq 0 ]; then
  cp -a "$src" "$tmp/state-interrupted"
  id_interrupted=$(python3 -c "import json; print(json.load(open('$tmp/bg.out'))['backup_id'])")
fi
"$NOVA" unlock >/dev/null 2>&1 || true
expect_exit 0 "$NOVA" --json check
json "assert d['status']=='ok', d['errors']"
printf '{"after": "restart"}\n' >"$src/layers/core/after.json"
expect_exit 0 "$NOVA" --json backup --strategy incremental "$src"
id_after=$(backup_id); cp -a "$src" "$tmp/state-after"
restores_identical "$id_after" "$tmp/state-after"
[ "$bg_rc" -ne 0 ] || restores_identical "$id_interrupted" "$tmp/state-interrupted"
expect_exit 0 "$NOVA" --json check --read-data
json "assert d['status']=='ok', d['errors']"
ok

echo "$passed passed, 0 failed"
