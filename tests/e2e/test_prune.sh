#!/usr/bin/env bash
# test_prune.sh -- `nova prune` end to end: nothing to do on a fresh repository; after
# 'nova delete' a dry run plans without changing anything and the real run removes the
# unreferenced data (deleting and repacking packs), after which the repository checks
# clean and every remaining backup restores byte-identical; usage errors; refusal with
# REPO_002 while a backup holds its lock; and prune killed with SIGKILL at random moments
# (a handful of rounds; NOVA_TEST_LONG=1 for 50): the repository always checks clean,
# every backup restores, and a second prune finishes the job.
set -euo pipefail
NOVA=${NOVA:?path to the nova binary}
tmp=$(mktemp -d "${NOVA_TEST_TMP:-/tmp}/e2e-prune.XXXXXX" 2>/dev/null || mktemp -d)
tmp=$(cd "$tmp" && pwd -P)
bg=""
cleanup() { [ -z "$bg" ] || { kill -CONT "$bg" 2>/dev/null || true; kill -9 "$bg" 2>/dev/null || true; }; rm -rf "$tmp"; }
trap cleanup EXIT
passed=0
. "$(dirname "$0")/lib.sh"
listing() { (cd "$1" && find . -type f ! -path './locks/*' | sort); }
unset NOVA_PASSWORD NOVA_NEW_PASSWORD NOVA_REPOSITORY || true
export NOVA_PASSWORD=prune-secret

# ---- three backups; consecutive ones share a file, so packs mix used and unused data
repo="$tmp/repo"
src="$tmp/src"
"$NOVA" --repo "$repo" init --kdf-cost 10 >/dev/null || fail "init"
mkdir -p "$src/sub"
head -c 9000000 /dev/urandom >"$src/a.bin"
head -c 9000000 /dev/urandom >"$src/sub/b.bin"
printf '{"layer": 1}\n' >"$src/core.json"
expect_exit 0 "$NOVA" --repo "$repo" --json backup "$src"
id1=$(backup_id); cp -a "$src" "$tmp/state1"
rm "$src/a.bin"; head -c 9000000 /dev/urandom >"$src/sub/c.bin"
printf '{"layer": 2}\n' >"$src/core.json"
expect_exit 0 "$NOVA" --repo "$repo" --json backup "$src"
id2=$(backup_id); cp -a "$src" "$tmp/state2"
rm "$src/sub/b.bin"; head -c 9000000 /dev/urandom >"$src/d.bin"
printf '{"layer": 3}\n' >"$src/core.json"
expect_exit 0 "$NOVA" --repo "$repo" --json backup "$src"
id3=$(backup_id); cp -a "$src" "$tmp/state3"
export NOVA_REPOSITORY="$repo"

restores_identical() { # REPO ID STATE
  rm -rf "$tmp/target"
  "$NOVA" --repo "$1" restore "$2" --target "$tmp/target" >/dev/null 2>"$tmp/restore.err" \
    || { cat "$tmp/restore.err" >&2; fail "restore of $2 from $1"; }
  diff -r "$3" "$tmp/target$src" >/dev/null || fail "backup $2 restores different bytes"
}
checks_clean() { # REPO [extra python assertion on d]
  expect_exit 0 "$NOVA" --repo "$1" --json check --read-data
  json "assert d['status']=='ok', d['errors']; ${2:-pass}"
}

# ---- nothing to do
before=$(listing "$repo")
expect_exit 0 "$NOVA" prune
grep -q 'nothing to remove' "$tmp/out" || fail "prune of a fresh repository"
[ "$before" = "$(listing "$repo")" ] || fail "prune changed a repository with nothing to remove"
[ -z "$(ls "$repo/locks")" ] || fail "prune leaves no lock behind"
ok

# ---- usage
for bad in 2 -1 abc 150% ''; do
  expect_exit 2 "$NOVA" prune --max-repack-ratio "$bad"
done
expect_exit 2 "$NOVA" prune extra
expect_exit 2 "$NOVA" prune --bogus
expect_exit 0 "$NOVA" prune --help
grep -q 'usage: nova prune' "$tmp/out" || fail "prune --help"
ok

# ---- delete the first backup: dry run, then the real thing
expect_exit 0 "$NOVA" delete "$id1"
cp -a "$repo" "$tmp/after-delete"
before=$(listing "$repo")
expect_exit 0 "$NOVA" --json prune --dry-run
json "assert d['dry_run'] is True and d['snapshots']==2, d
assert d['packs_deleted'] + d['packs_repacked'] > 0 and d['bytes_freed'] > 0, d"
plan=$(cat "$tmp/out")
[ "$before" = "$(listing "$repo")" ] || fail "a dry run changed the repository"
expect_exit 0 "$NOVA" prune --dry-run
grep -q 'dry run: nothing was changed' "$tmp/out" || fail "dry run text"
expect_exit 0 "$NOVA" --json prune
json "p = json.loads('''$plan''')
for k in ('packs_deleted', 'packs_repacked', 'blobs_repacked', 'indexes_deleted', 'blobs_unused'):
    assert d[k] == p[k], (k, d[k], p[k])
assert d['dry_run'] is False and d['bytes_freed'] > 4000000, d
assert d['repository_bytes_after'] == d['repository_bytes_before'] - d['bytes_freed'], d"
[ "$before" != "$(listing "$repo")" ] || fail "prune changed nothing"
checks_clean "$repo"
restores_identical "$repo" "$id2" "$tmp/state2"
restores_identical "$repo" "$id3" "$tmp/state3"
ok
# repacking every pack with an unused blob leaves no unused data; then nothing is left
expect_exit 0 "$NOVA" prune --max-repack-ratio 100%
checks_clean "$repo" "assert d['blobs_unused']==0, d"
expect_exit 0 "$NOVA" --json prune --max-repack-ratio 1
json "assert d['packs_deleted'] + d['packs_repacked'] + d['bytes_freed'] == 0, d"
restores_identical "$repo" "$id2" "$tmp/state2"
ok

# ---- a running backup holds a shared lock: prune refuses with REPO_002
truncate -s 1500M "$tmp/sparse.bin"
"$NOVA" backup "$tmp/sparse.bin" >/dev/null 2>&1 &
bg=$!
seen=0
for _ in $(seq 1 500); do
  if [ -n "$(ls "$repo/locks" 2>/dev/null)" ]; then kill -STOP "$bg"; seen=1; break; fi
  kill -0 "$bg" 2>/dev/null || break
  sleep 0.01
done
if [ "$seen" = 1 ]; then
  expect_exit 5 "$NOVA" prune
  grep -q 'REPO_002' "$tmp/err" || fail "prune names REPO_002"
  grep -q 'backup' "$tmp/err" || fail "prune says a backup holds the lock"
  expect_exit 0 "$NOVA" check # shared locks coexist
  kill -CONT "$bg"
  ok
else
  echo "note: the backup finished before its lock was seen; lock refusal not exercised" >&2
fi
wait "$bg" || fail "the backup holding the lock failed"
bg=""
expect_exit 0 "$NOVA" prune
checks_clean "$repo"

# ---- SIGKILL at random moments: every interrupted prune leaves a consistent repository
rounds=5
[ "${NOVA_TEST_LONG:-0}" = 1 ] && rounds=50
rm -rf "$tmp/killed"; cp -a "$tmp/after-delete" "$tmp/killed"
start=$(date +%s%N)
"$NOVA" --repo "$tmp/killed" prune --max-repack-ratio 1 >/dev/null 2>&1 || fail "timing run"
span=$(( ($(date +%s%N) - start) / 1000000 + 1 ))
interrupted=0
for round in $(seq 1 "$rounds"); do
  rm -rf "$tmp/killed"
  cp -a "$tmp/after-delete" "$tmp/killed"
  delay=$(( (RANDOM * 32768 + RANDOM) % span + 1 ))
  got=$( (timeout -s KILL "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))" \
          "$NOVA" --repo "$tmp/killed" prune --max-repack-ratio 1 >/dev/null 2>&1; echo $?) \
        2>/dev/null)
  [ "$got" -eq 137 ] && interrupted=$((interrupted + 1))
  rm -f "$tmp/killed/locks/"* # the killed prune's lock, as 'nova unlock' would
  checks_clean "$tmp/killed"
  restores_identical "$tmp/killed" "$id2" "$tmp/state2"
  restores_identical "$tmp/killed" "$id3" "$tmp/state3"
  expect_exit 0 "$NOVA" --repo "$tmp/killed" prune --max-repack-ratio 1
  checks_clean "$tmp/killed" "assert d['blobs_unused']==0 and d['warnings']==[], d"
done
echo "note: $interrupted of $rounds prunes were killed mid-run (prune takes ~${span} ms)" >&2
ok

echo "$passed passed, 0 failed"
