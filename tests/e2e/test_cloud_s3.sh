#!/usr/bin/env bash
# test_cloud_s3.sh -- the whole CLI suite against S3, served on 127.0.0.1 by s3rver (which
# checks SigV4 signatures; tests/servers/start-s3.sh):
#   - the backend's unit tests against this server (the test_s3 program, when built);
#   - init, backups with the three strategies, list, restore of each (byte-identical),
#     check --read-data, delete + prune, everything at
#     --repo s3:http://127.0.0.1:PORT/BUCKET/PREFIX with the AWS_* variables;
#   - the same repository through the config file's storage.s3 (endpoint, bucket,
#     credentials) with no --repo;
#   - an independent client (awscli or rclone) lists what Nova wrote, and every pack it
#     downloads hashes to its name;
#   - a wrong secret is refused with BACKUP_001 (exit 5) naming the endpoint, never the
#     secret; so is an endpoint where nothing listens;
#   - the server killed (SIGKILL) and restarted in the middle of a backup: the repository
#     checks clean and the next backup succeeds and restores.
# Prints "skip: ..." and exits 0 when the servers are not installed
# (tests/servers/install.sh).
set -euo pipefail
NOVA=${NOVA:?path to the nova binary}
here=$(cd "$(dirname "$0")" && pwd)
servers=${NOVA_TEST_SOURCE_DIR:-$here/../..}/tests/servers
if [ ! -f "$servers/node_modules/@20minutes/s3rver/package.json" ] || ! command -v node >/dev/null; then
  echo "skip: s3rver is not installed (run tests/servers/install.sh)"
  exit 0
fi
tmp=$(mktemp -d "${NOVA_TEST_TMP:-/tmp}/e2e-s3.XXXXXX" 2>/dev/null || mktemp -d)
tmp=$(cd "$tmp" && pwd -P)
bg=""
server_pid=""
cleanup() {
  [ -z "$bg" ] || kill -9 "$bg" 2>/dev/null || true
  [ -z "$server_pid" ] || bash "$servers/stop-s3.sh" "$server_pid" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
passed=0
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_cloud.sh"
unset NOVA_REPOSITORY NOVA_PASSWORD NOVA_CONFIG AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY \
  AWS_SESSION_TOKEN AWS_REGION AWS_DEFAULT_REGION AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 \
  AWS_CA_BUNDLE NOVA_S3_ADDRESSING || true

start_server() { # [PORT] -- same data directory every time
  local env
  env=$(bash "$servers/start-s3.sh" --dir "$tmp/s3rver" ${1:+--port "$1"} \
        --bucket nova-e2e) || fail "start s3rver"
  eval "$env"
  server_pid=$NOVA_TEST_S3_PID
}
start_server
export AWS_ACCESS_KEY_ID=$NOVA_TEST_S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$NOVA_TEST_S3_SECRET_KEY
export AWS_REGION=us-east-1
export NOVA_PASSWORD=e2e-s3-secret
endpoint=$NOVA_TEST_S3_ENDPOINT

# ---- the backend's unit tests against this server
unit=$(dirname "$NOVA")/test_s3
if [ -x "$unit" ]; then
  NOVA_TEST_SOURCE_DIR=${NOVA_TEST_SOURCE_DIR:-$here/../..} NOVA_TEST_S3_BUCKET=nova-e2e \
    "$unit" >"$tmp/unit.out" 2>&1 || { cat "$tmp/unit.out" >&2; fail "test_s3 against s3rver"; }
  if grep -q SKIPPED "$tmp/unit.out"; then cat "$tmp/unit.out" >&2; fail "test_s3 skipped tests with a server running"; fi
  ok
fi

# ---- init, the three strategies, list, restore, check --read-data (lib_cloud.sh)
repo=s3:$endpoint/nova-e2e/hosts/h1
cloud_init "$repo"
export NOVA_REPOSITORY=$repo
cloud_three_backups

# ---- the same repository named by the config file alone (storage.s3)
cat >"$tmp/config.json" <<EOF
{"storage": {"s3": {"bucket": "nova-e2e/hosts/h1", "region": "us-east-1", "endpoint": "$endpoint",
 "credentials": {"aws_access_key_id": "$NOVA_TEST_S3_ACCESS_KEY",
                 "aws_secret_access_key": "$NOVA_TEST_S3_SECRET_KEY"}}}}
EOF
expect_exit 0 env -u NOVA_REPOSITORY -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
  "$NOVA" --config "$tmp/config.json" --json list
json "ids=[b['backup_id'] for b in d]; assert '$id_full' in ids, ids"
ok

# ---- an independent client lists what Nova wrote (awscli, else rclone)
lister=""
if command -v aws >/dev/null; then
  lister=aws
  aws --endpoint-url "$endpoint" s3 ls --recursive s3://nova-e2e/hosts/h1/ >"$tmp/indep.raw" 2>"$tmp/indep.err" \
    || { cat "$tmp/indep.err" >&2; fail "aws s3 ls"; }
  awk '{print $4}' "$tmp/indep.raw" | sed 's|^hosts/h1/||' >"$tmp/indep.lst"
  fetch_object() { aws --endpoint-url "$endpoint" s3 cp "s3://nova-e2e/hosts/h1/$1" - 2>/dev/null; }
elif command -v rclone >/dev/null; then
  lister=rclone
  remote=":s3,provider=Other,access_key_id=$NOVA_TEST_S3_ACCESS_KEY,secret_access_key=$NOVA_TEST_S3_SECRET_KEY,endpoint='$endpoint',force_path_style=true:nova-e2e/hosts/h1"
  env -u AWS_CA_BUNDLE rclone --config /dev/null lsf -R --files-only "$remote" >"$tmp/indep.lst" 2>"$tmp/indep.err" \
    || { cat "$tmp/indep.err" >&2; fail "rclone lsf"; }
  fetch_object() { env -u AWS_CA_BUNDLE rclone --config /dev/null cat "$remote/$1"; }
fi
if [ -n "$lister" ]; then
  grep -qx config "$tmp/indep.lst" || { cat "$tmp/indep.lst" >&2; fail "$lister does not see 'config'"; }
  for dir in keys/ index/ data/ snapshots/; do
    grep -q "^$dir" "$tmp/indep.lst" || { cat "$tmp/indep.lst" >&2; fail "$lister sees no $dir objects"; }
  done
  for pack in $(grep '^data/' "$tmp/indep.lst" | head -3); do
    got=$(fetch_object "$pack" | sha256sum | cut -c1-64)
    [ "$got" = "$(basename "$pack")" ] || fail "pack $pack read by $lister hashes to $got"
  done
  echo "$lister sees $(wc -l <"$tmp/indep.lst") objects"
  ok
else
  fail "neither awscli nor rclone is installed: no independent client to list what nova wrote (scripts/install-deps.sh installs rclone)"
fi

# ---- a wrong secret, and an endpoint where nothing listens: BACKUP_001 (exit 5)
wrong_secret="WrongSecret$RANDOM$RANDOM"
AWS_SECRET_ACCESS_KEY=$wrong_secret expect_exit 5 "$NOVA" list
grep -q BACKUP_001 "$tmp/err" || { cat "$tmp/err" >&2; fail "wrong secret: no BACKUP_001"; }
grep -qF "$endpoint" "$tmp/err" || { cat "$tmp/err" >&2; fail "wrong secret: endpoint not named"; }
if grep -q "gave up after" "$tmp/err"; then cat "$tmp/err" >&2; fail "a refused secret was retried"; fi
if grep -qF "$wrong_secret" "$tmp/out" "$tmp/err"; then fail "wrong secret: the secret appears in the output"; fi
AWS_SECRET_ACCESS_KEY=$wrong_secret expect_exit 5 "$NOVA" --json list
if grep -qF "$wrong_secret" "$tmp/out" "$tmp/err"; then fail "wrong secret: the secret appears in --json output"; fi
dead_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf '{"storage": {"retry_deadline": "2s"}}\n' >"$tmp/deadline.json"
expect_exit 5 "$NOVA" --config "$tmp/deadline.json" --repo "s3:http://127.0.0.1:$dead_port/nova-e2e/hosts/h1" list
grep -q BACKUP_001 "$tmp/err" || { cat "$tmp/err" >&2; fail "dead endpoint: no BACKUP_001"; }
grep -q "at the deadline" "$tmp/err" || { cat "$tmp/err" >&2; fail "dead endpoint: storage.retry_deadline not applied"; }
grep -qF "127.0.0.1:$dead_port" "$tmp/err" || { cat "$tmp/err" >&2; fail "dead endpoint not named"; }
if grep -rqF "$NOVA_TEST_S3_SECRET_KEY" "$tmp/s3rver/nova-e2e" 2>/dev/null; then
  fail "the secret was written into the repository"
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

# ---- the server killed and restarted in the middle of a backup (s3rver writes each
# object to its directory before it answers, so SIGKILL loses nothing acknowledged).
# s3rver is not crash-safe itself: an object it was writing when killed keeps a missing
# or truncated metadata file, which makes every later listing of its prefix answer 500.
# S3 never shows an unacknowledged PUT, so such half-written objects are removed before
# the restart, as the real service's atomic PUT would have it.
drop_half_written_objects() { # DIR
  python3 - "$1" <<'PY'
import json, os, sys
suffix = "._S3rver_object"
for root, _, files in os.walk(sys.argv[1]):
    for name in files:
        if not name.endswith(suffix):
            continue
        base = os.path.join(root, name[: -len(suffix)])
        try:
            json.load(open(base + "._S3rver_metadata.json"))
        except (OSError, ValueError):
            for leftover in (suffix, suffix + ".md5", "._S3rver_metadata.json"):
                if os.path.exists(base + leftover):
                    os.remove(base + leftover)
            print("removed the half-written object", os.path.relpath(base, sys.argv[1]))
PY
}
head -c 40000000 /dev/urandom >"$src/layers/episodic/large.bin"
"$NOVA" --json backup --strategy incremental "$src" >"$tmp/bg.out" 2>"$tmp/bg.err" & bg=$!
sleep 0.7
kill -9 "$server_pid"; wait "$server_pid" 2>/dev/null || true
drop_half_written_objects "$tmp/s3rver"
sleep 0.5
start_server "$NOVA_TEST_S3_PORT"
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
