#!/usr/bin/env bash
# test_replication.sh -- replication across repositories and backends (3-2-1):
#   - nova copy local -> local: a new replica, --json summary, incremental and idempotent
#     runs, a subset by id, refusal of a target holding another repository;
#   - nova copy local -> S3 (s3rver) and local -> Azure Blob (azurite); every backup
#     restores byte-identical from each replica with --repo REPLICA;
#   - nova replicas status over the three copies (all complete); a flipped byte in a pack
#     of the S3 replica is reported (INTEGRITY_001, exit 6, the copy named) and
#     nova replicas repair puts the primary's good bytes back; a pack deleted from the
#     local replica is reported (INTEGRITY_002) and repaired too;
#   - a config naming two storage targets (storage.local_path and storage.s3): nova init
#     initialises both with the same keys, one nova backup writes to both, each restores
#     on its own, and replicas status (no arguments) shows both complete;
#   - with NOVA_TEST_REPL_BENCH_MB=N (default 0: skipped): throughput of nova copy
#     local -> s3rver for a repository of about N MB.
# The cloud parts print "skip: ..." when the servers are not installed
# (tests/servers/install.sh); the local parts always run.
set -euo pipefail
NOVA=${NOVA:?path to the nova binary}
here=$(cd "$(dirname "$0")" && pwd)
servers=${NOVA_TEST_SOURCE_DIR:-$here/../..}/tests/servers
tmp=$(mktemp -d "${NOVA_TEST_TMP:-/tmp}/e2e-replication.XXXXXX" 2>/dev/null || mktemp -d)
tmp=$(cd "$tmp" && pwd -P)
s3_pid=""
azure_pid=""
cleanup() {
  [ -z "$s3_pid" ] || bash "$servers/stop-s3.sh" "$s3_pid" >/dev/null 2>&1 || true
  [ -z "$azure_pid" ] || bash "$servers/stop-azure.sh" "$azure_pid" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
passed=0
. "$(dirname "$0")/lib.sh"
flip_byte() { # FILE OFFSET
  python3 -c "
import sys
f = open(sys.argv[1], 'r+b'); f.seek(int(sys.argv[2])); b = f.read(1)
f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 1])); f.close()" "$1" "$2"
}
unset NOVA_REPOSITORY NOVA_PASSWORD NOVA_CONFIG AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY \
  AWS_SESSION_TOKEN AWS_REGION AWS_DEFAULT_REGION AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 \
  AWS_CA_BUNDLE AZURE_STORAGE_CONNECTION_STRING AZURE_STORAGE_ACCOUNT AZURE_STORAGE_KEY \
  AZURE_STORAGE_SAS_TOKEN || true
export NOVA_PASSWORD=e2e-replication-secret

# ---- a primary with two backups
src=$tmp/src
mkdir -p "$src/layers/core" "$src/layers/episodic"
for i in $(seq 1 40); do printf '{"memory": %d, "text": "layer entry %d"}\n' "$i" "$i" >"$src/layers/core/m$i.json"; done
head -c 2500000 /dev/urandom >"$src/layers/episodic/blob.bin"
primary=$tmp/primary
expect_exit 0 "$NOVA" --repo "$primary" init --kdf-cost 10
expect_exit 0 "$NOVA" --repo "$primary" --json backup --strategy full "$src"
id1=$(backup_id); cp -a "$src" "$tmp/state1"
printf '{"memory": 1, "text": "changed"}\n' >"$src/layers/core/m1.json"
head -c 400000 /dev/urandom >"$src/layers/episodic/new.bin"
expect_exit 0 "$NOVA" --repo "$primary" --json backup --strategy incremental "$src"
id2=$(backup_id); cp -a "$src" "$tmp/state2"
ok

restores_identical() { # REPO ID STATE
  rm -rf "$tmp/target"
  "$NOVA" --repo "$1" restore "$2" --target "$tmp/target" >/dev/null 2>"$tmp/restore.err" \
    || { cat "$tmp/restore.err" >&2; fail "restore of $2 from $1"; }
  diff -r "$3" "$tmp/target$src" >/dev/null || fail "backup $2 restores different bytes from $1"
}

# ---- local -> local
local_replica=$tmp/replica-local
expect_exit 0 "$NOVA" --repo "$primary" --json copy --to "$local_replica"
json "assert d['created'] and d['snapshots_copied']==2 and d['packs_copied']>0 and d['keys_copied']==1, d"
expect_exit 0 "$NOVA" --repo "$primary" --json copy --to "$local_replica"
json "assert not d['created'] and d['snapshots_copied']==0 and d['snapshots_present']==2 and d['bytes_copied']==0, d"
restores_identical "$local_replica" "$id1" "$tmp/state1"
restores_identical "$local_replica" "$id2" "$tmp/state2"
expect_exit 0 "$NOVA" --repo "$local_replica" --json check --read-data
json "assert d['status']=='ok', d"
ok
subset=$tmp/replica-subset
expect_exit 0 "$NOVA" --repo "$primary" --json copy --to "$subset" "${id1:0:12}"
json "assert d['snapshots_copied']==1, d"
expect_exit 0 "$NOVA" --repo "$subset" --json list
json "assert [b['backup_id'] for b in d]==['$id1'], d"
restores_identical "$subset" "$id1" "$tmp/state1"
other=$tmp/other
expect_exit 0 "$NOVA" --repo "$other" init --kdf-cost 10
expect_exit 2 "$NOVA" --repo "$primary" copy --to "$other"
grep -q "holds another repository" "$tmp/err" || { cat "$tmp/err" >&2; fail "copy onto another repository"; }
expect_exit 2 "$NOVA" --repo "$primary" copy
ok

# ---- cloud servers (optional)
have_s3=0 have_azure=0
if command -v node >/dev/null && [ -f "$servers/node_modules/@20minutes/s3rver/package.json" ]; then
  env_s3=$(bash "$servers/start-s3.sh" --dir "$tmp/s3rver" --bucket nova-repl --bucket nova-multi) \
    || fail "start s3rver"
  eval "$env_s3"
  s3_pid=$NOVA_TEST_S3_PID
  export AWS_ACCESS_KEY_ID=$NOVA_TEST_S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$NOVA_TEST_S3_SECRET_KEY
  export AWS_REGION=us-east-1
  have_s3=1
else
  echo "skip: s3rver is not installed (run tests/servers/install.sh): S3 parts skipped"
fi
if command -v node >/dev/null && [ -x "$servers/node_modules/.bin/azurite-blob" ]; then
  env_azure=$(bash "$servers/start-azure.sh" "$tmp/azurite") || fail "start azurite"
  eval "$env_azure"
  azure_pid=$NOVA_TEST_AZURE_PID
  export AZURE_STORAGE_CONNECTION_STRING=$NOVA_TEST_AZURE_CONNECTION_STRING
  have_azure=1
else
  echo "skip: azurite is not installed (run tests/servers/install.sh): Azure parts skipped"
fi

copies=("$primary" "$local_replica")
if [ "$have_s3" = 1 ]; then
  s3_replica=s3:$NOVA_TEST_S3_ENDPOINT/nova-repl/replica
  expect_exit 0 "$NOVA" --repo "$primary" --json copy --to "$s3_replica"
  json "assert d['created'] and d['snapshots_copied']==2, d"
  restores_identical "$s3_replica" "$id1" "$tmp/state1"
  restores_identical "$s3_replica" "$id2" "$tmp/state2"
  copies+=("$s3_replica")
  ok
fi
if [ "$have_azure" = 1 ]; then
  azure_replica=azure:nova-repl/replica
  expect_exit 0 "$NOVA" --repo "$primary" --json copy --to "$azure_replica"
  json "assert d['created'] and d['snapshots_copied']==2, d"
  restores_identical "$azure_replica" "$id1" "$tmp/state1"
  restores_identical "$azure_replica" "$id2" "$tmp/state2"
  copies+=("$azure_replica")
  ok
fi
if [ "$have_s3" = 1 ] && [ "$have_azure" = 1 ]; then # any backend to any backend
  expect_exit 0 "$NOVA" --repo "$s3_replica" --json copy --to "azure:nova-repl/from-s3"
  json "assert d['snapshots_copied']==2, d"
  restores_identical "azure:nova-repl/from-s3" "$id2" "$tmp/state2"
  ok
fi

# ---- status over every copy: all complete
expect_exit 0 "$NOVA" --json replicas status --read-data "${copies[@]}"
json "assert d['status']=='ok' and len(d['copies'])==${#copies[@]} and all(b['complete_copies']==${#copies[@]} for b in d['backups']) and len(d['backups'])==2, d"
ok

# ---- damage in one copy: reported, then repaired from the primary
if [ "$have_s3" = 1 ]; then
  damaged=$s3_replica
  pack_file=$(find "$tmp/s3rver/nova-repl/replica/data" -name '*._S3rver_object' | head -1)
  pack=$(basename "$pack_file" ._S3rver_object)
else
  damaged=$local_replica
  pack_file=$(find "$local_replica/data" -type f | head -1)
  pack=$(basename "$pack_file")
fi
[ -n "$pack_file" ] || fail "no pack found in the replica"
flip_byte "$pack_file" 100
expect_exit 6 "$NOVA" --json replicas status --read-data "$primary" "$damaged"
json "p=d['problems']; assert d['status']=='damaged' and any(x['code']=='INTEGRITY_001' and '$pack' in x['object'] and x['copy']=='$damaged' for x in p), p"
expect_exit 6 "$NOVA" replicas status --read-data "$primary" "$damaged"
grep -q "INTEGRITY_001 \[2\]" "$tmp/out" || { cat "$tmp/out" >&2; fail "text status names the damage"; }
expect_exit 0 "$NOVA" --repo "$primary" --json replicas repair --to "$damaged"
json "assert d['damaged_found']==1 and d['replaced']==1 and d['unrepairable']==0, d"
expect_exit 0 "$NOVA" --json replicas status --read-data "$primary" "$damaged"
json "assert d['status']=='ok' and not d['problems'], d"
restores_identical "$damaged" "$id2" "$tmp/state2"
ok
# a pack missing from the local replica
rm "$(find "$local_replica/data" -type f | head -1)"
expect_exit 6 "$NOVA" --json replicas status "$primary" "$local_replica"
json "assert any(x['code']=='INTEGRITY_002' for x in d['problems']) and any(b['copies']['$local_replica']=='incomplete' for b in d['backups']), d"
expect_exit 0 "$NOVA" --json replicas repair --from "$primary" --to "$local_replica"
json "assert d['missing_copied']>=1 and d['unrepairable']==0, d"
expect_exit 0 "$NOVA" --json replicas status "$primary" "$local_replica"
json "assert d['status']=='ok', d"
ok

# ---- one config, two storage targets: one backup writes to both
if [ "$have_s3" = 1 ]; then
  multi_local=$tmp/multi-local
  cat >"$tmp/multi.json" <<EOF
{"storage": {"local_path": "$multi_local",
             "s3": {"bucket": "nova-multi", "region": "us-east-1", "endpoint": "$NOVA_TEST_S3_ENDPOINT",
                    "credentials": {"aws_access_key_id": "$NOVA_TEST_S3_ACCESS_KEY",
                                    "aws_secret_access_key": "$NOVA_TEST_S3_SECRET_KEY"}}}}
EOF
  multi_s3=s3:$NOVA_TEST_S3_ENDPOINT/nova-multi
  expect_exit 0 "$NOVA" --config "$tmp/multi.json" init --kdf-cost 10
  expect_exit 0 "$NOVA" --repo "$multi_s3" list # init made the repository on every target
  expect_exit 0 "$NOVA" --config "$tmp/multi.json" --json backup "$src"
  id_multi=$(backup_id)
  restores_identical "$multi_local" "$id_multi" "$tmp/state2"
  restores_identical "$multi_s3" "$id_multi" "$tmp/state2"
  expect_exit 0 "$NOVA" --config "$tmp/multi.json" --json replicas status --read-data
  json "assert d['status']=='ok' and len(d['copies'])==2 and d['backups'][0]['complete_copies']==2, d"
  # a second backup, then the local target alone answers for the pair when read
  printf 'more\n' >"$src/layers/core/extra.json"
  expect_exit 0 "$NOVA" --config "$tmp/multi.json" --json backup --strategy incremental "$src"
  expect_exit 0 "$NOVA" --repo "$multi_s3" --json list
  json "assert len(d)==2, d"
  # a target that is not a replica of the others is refused at open
  cat >"$tmp/mixed.json" <<EOF
{"storage": {"local_path": "$other",
           "s3": {"bucket": "nova-multi", "region": "us-east-1", "endpoint": "$NOVA_TEST_S3_ENDPOINT",
                  "credentials": {"aws_access_key_id": "$NOVA_TEST_S3_ACCESS_KEY",
                                  "aws_secret_access_key": "$NOVA_TEST_S3_SECRET_KEY"}}}}
EOF
  set +e; "$NOVA" --config "$tmp/mixed.json" list >"$tmp/out" 2>"$tmp/err"; rc=$?; set -e
  [ "$rc" -ne 0 ] && grep -q "another repository" "$tmp/err" || { cat "$tmp/err" >&2; fail "mixed targets accepted"; }
  ok
fi

# ---- throughput of copy local -> s3rver (opt-in)
bench_mb=${NOVA_TEST_REPL_BENCH_MB:-0}
if [ "$have_s3" = 1 ] && [ "$bench_mb" -gt 0 ]; then
  bench_src=${NOVA_TEST_REPL_BENCH_DIR:-}
  if [ -z "$bench_src" ]; then
    bench_src=$tmp/bench-src
    mkdir -p "$bench_src"
    for i in $(seq 1 "$bench_mb"); do head -c 1048576 /dev/urandom >"$bench_src/f$i"; done
  fi
  bench_repo=$tmp/bench-repo
  expect_exit 0 "$NOVA" --repo "$bench_repo" init --kdf-cost 10 --compression none
  expect_exit 0 "$NOVA" --repo "$bench_repo" backup "$bench_src"
  size=$(du -sb "$bench_repo" | cut -f1)
  expect_exit 0 "$NOVA" --repo "$bench_repo" --json copy --to "s3:$NOVA_TEST_S3_ENDPOINT/nova-repl/bench"
  python3 -c "
import json; d = json.load(open('$tmp/out'))
print('bench: nova copy local -> s3rver: %.1f MB repository, %d packs, %.2f s, %.1f MB/s' % (
    $size / 1e6, d['packs_copied'], d['seconds'], d['bytes_copied'] / 1e6 / d['seconds']))"
  expect_exit 0 "$NOVA" --repo "$bench_repo" --json copy --to "$tmp/bench-local"
  python3 -c "
import json; d = json.load(open('$tmp/out'))
print('bench: nova copy local -> local:   %.2f s, %.1f MB/s' % (d['seconds'], d['bytes_copied'] / 1e6 / d['seconds']))"
  ok
fi

echo "$passed passed, 0 failed"
