#!/usr/bin/env bash
# test_cloud_azure.sh -- the whole CLI suite against Azure Blob Storage, served on
# 127.0.0.1 by azurite (Microsoft's emulator; tests/servers/start-azure.sh):
#   - the backend's unit tests against this server (the test_azure program, when built);
#   - init, backups with the three strategies, list, restore of each (byte-identical),
#     check --read-data, delete + prune, everything at --repo azure:CONTAINER/PREFIX with
#     AZURE_STORAGE_CONNECTION_STRING pointing at the emulator;
#   - an independent client (rclone, through an account SAS URL) lists what Nova wrote,
#     and every pack it downloads hashes to its name;
#   - a wrong account key is refused with BACKUP_001 (exit 5) naming the endpoint, never
#     the key;
#   - the server stopped and restarted in the middle of a backup: the repository checks
#     clean and the next backup succeeds and restores;
# Prints "skip: ..." and exits 0 when the servers are not installed
# (tests/servers/install.sh).
set -euo pipefail
NOVA=${NOVA:?path to the nova binary}
here=$(cd "$(dirname "$0")" && pwd)
servers=${NOVA_TEST_SOURCE_DIR:-$here/../..}/tests/servers
if [ ! -f "$servers/node_modules/azurite/package.json" ] || ! command -v node >/dev/null; then
  echo "skip: azurite is not installed (run tests/servers/install.sh)"
  exit 0
fi
tmp=$(mktemp -d "${NOVA_TEST_TMP:-/tmp}/e2e-azure.XXXXXX" 2>/dev/null || mktemp -d)
tmp=$(cd "$tmp" && pwd -P)
bg=""
cleanup() {
  [ -z "$bg" ] || kill -9 "$bg" 2>/dev/null || true
  bash "$servers/stop-azure.sh" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
passed=0
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_cloud.sh"
unset NOVA_REPOSITORY NOVA_PASSWORD AZURE_STORAGE_CONNECTION_STRING AZURE_STORAGE_ACCOUNT \
  AZURE_STORAGE_KEY AZURE_STORAGE_SAS_TOKEN || true

start_server() { # [PORT]
  local env
  env=$(NOVA_TEST_AZURE_PORT=${1:-} bash "$servers/start-azure.sh" "$tmp/azurite") || fail "start azurite"
  eval "$env"
}
start_server
export AZURE_STORAGE_CONNECTION_STRING=$NOVA_TEST_AZURE_CONNECTION_STRING
export NOVA_PASSWORD=e2e-azure-secret
endpoint_hostport=127.0.0.1:$NOVA_TEST_AZURE_PORT

# ---- the backend's unit tests against this server
unit=$(dirname "$NOVA")/test_azure
if [ -x "$unit" ]; then
  NOVA_TEST_SOURCE_DIR=${NOVA_TEST_SOURCE_DIR:-$here/../..} "$unit" >"$tmp/unit.out" 2>&1 \
    || { cat "$tmp/unit.out" >&2; fail "test_azure against azurite"; }
  if grep -q SKIPPED "$tmp/unit.out"; then cat "$tmp/unit.out" >&2; fail "test_azure skipped tests with a server running"; fi
  ok
fi

# ---- init, the three strategies, list, restore, check --read-data (lib_cloud.sh)
repo=azure:nova-e2e/hosts/h1
cloud_init "$repo"
export NOVA_REPOSITORY=$repo
cloud_three_backups

# ---- an independent client lists what Nova wrote (rclone through an account SAS URL)
account_sas() { # PERMISSIONS: an account SAS token for the emulator's account
  python3 - "$NOVA_TEST_AZURE_ACCOUNT" "$NOVA_TEST_AZURE_KEY" "$1" <<'EOF'
import base64, hashlib, hmac, sys, urllib.parse
account, key, perms = sys.argv[1], base64.b64decode(sys.argv[2]), sys.argv[3]
version, expiry = "2025-11-05", "2099-01-01T00:00:00Z"
# account SAS string-to-sign (version 2020-12-06 and later): account, permissions,
# services, resource types, start, expiry, IP, protocol, version, encryption scope, "".
to_sign = "\n".join([account, perms, "b", "sco", "", expiry, "", "", version, "", ""])
sig = base64.b64encode(hmac.new(key, to_sign.encode(), hashlib.sha256).digest()).decode()
print(urllib.parse.urlencode({"sv": version, "ss": "b", "srt": "sco", "sp": perms, "se": expiry, "sig": sig}))
EOF
}
if command -v rclone >/dev/null; then
  sas=$(account_sas rl)
  remote=":azureblob,sas_url='$NOVA_TEST_AZURE_ENDPOINT?$sas':nova-e2e/hosts/h1"
  rclone --config /dev/null lsf -R --files-only "$remote" >"$tmp/rclone.lst" 2>"$tmp/rclone.err" \
    || { cat "$tmp/rclone.err" >&2; fail "rclone lsf"; }
  grep -qx config "$tmp/rclone.lst" || { cat "$tmp/rclone.lst" >&2; fail "rclone does not see 'config'"; }
  for dir in keys/ index/ data/ snapshots/; do
    grep -q "^$dir" "$tmp/rclone.lst" || { cat "$tmp/rclone.lst" >&2; fail "rclone sees no $dir objects"; }
  done
  # every pack's name is the SHA-256 of its bytes: check three through rclone
  for pack in $(grep '^data/' "$tmp/rclone.lst" | head -3); do
    got=$(rclone --config /dev/null cat "$remote/$pack" | sha256sum | cut -c1-64)
    [ "$got" = "$(basename "$pack")" ] || fail "pack $pack read by rclone hashes to $got"
  done
  echo "rclone sees $(wc -l <"$tmp/rclone.lst") objects"
  ok
else
  fail "rclone is not installed: no independent client to list what nova wrote (scripts/install-deps.sh installs it)"
fi

# ---- a wrong key: BACKUP_001 (exit 5) naming the endpoint, never the key
wrong_key=$(printf 'not the key of this account, but valid base64 %s' "$RANDOM" | base64 -w0)
AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=$NOVA_TEST_AZURE_ACCOUNT;AccountKey=$wrong_key;BlobEndpoint=$NOVA_TEST_AZURE_ENDPOINT;" \
  expect_exit 5 "$NOVA" list
grep -q BACKUP_001 "$tmp/err" || { cat "$tmp/err" >&2; fail "wrong key: no BACKUP_001"; }
grep -q "$endpoint_hostport" "$tmp/err" || { cat "$tmp/err" >&2; fail "wrong key: endpoint not named"; }
if grep -q "gave up after" "$tmp/err"; then cat "$tmp/err" >&2; fail "a refused key was retried"; fi
if grep -qF "$wrong_key" "$tmp/out" "$tmp/err"; then fail "wrong key: the key appears in the output"; fi
if grep -qF "$NOVA_TEST_AZURE_KEY" "$tmp/out" "$tmp/err"; then fail "the real key appears in the output"; fi
ok

# ---- a SAS token instead of the key (BlobEndpoint + SharedAccessSignature)
AZURE_STORAGE_CONNECTION_STRING="BlobEndpoint=$NOVA_TEST_AZURE_ENDPOINT;SharedAccessSignature=$(account_sas rwdlac)" \
  expect_exit 0 "$NOVA" --json list
json "assert len(d)==3, d"
if grep -qF "sig=" "$tmp/out" "$tmp/err"; then fail "the SAS signature appears in the output"; fi
ok

# ---- delete + prune
expect_exit 0 "$NOVA" delete "$id_inc"
expect_exit 0 "$NOVA" --json prune --max-repack-ratio 1
expect_exit 0 "$NOVA" --json check --read-data
json "assert d['status']=='ok', d['errors']"
restores_identical "$id_full" "$tmp/state-full"
restores_identical "$id_diff" "$tmp/state-diff"
ok

# ---- the server stopped and restarted in the middle of a backup
# (SIGTERM: azurite saves its metadata every 5 s and on shutdown, so a SIGKILL would make
# the emulator itself forget blobs it had acknowledged -- a loss no client can undo.)
head -c 40000000 /dev/urandom >"$src/layers/episodic/large.bin"
"$NOVA" --json backup --strategy incremental "$src" >"$tmp/bg.out" 2>"$tmp/bg.err" & bg=$!
sleep 0.7
bash "$servers/stop-azure.sh" >/dev/null
sleep 0.5
start_server "$NOVA_TEST_AZURE_PORT"
set +e; wait "$bg"; bg_rc=$?; set -e; bg=""
echo "backup interrupted by the restart exited $bg_rc"
[ "$bg_rc" -eq 0 ] || grep -q BACKUP_001 "$tmp/bg.err" || { cat "$tmp/bg.err" >&2; fail "the interrupted backup failed without BACKUP_001"; }
if [ "$bg_rc" -eq 0 ]; then cp -a "$src" "$tmp/state-interrupted"; id_interrupted=$(python3 -c "import json; print(json.load(open('$tmp/bg.out'))['backup_id'])"); fi
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
