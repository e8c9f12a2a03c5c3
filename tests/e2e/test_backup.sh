#!/usr/bin/env bash
# test_backup.sh -- `nova backup` end to end: the three strategies and their parents, the
# "no parent" note, --json with every field, tags, excludes, usage errors, exit code 3 for
# a partial backup (a file made unreadable to an unprivileged user), two backups into one
# repository at once, a disk that fills up (BACKUP_002), and a restore plus a check of
# what was backed up.
set -euo pipefail
NOVA=${NOVA:?path to the nova binary}
NOVA=$(cd "$(dirname "$NOVA")" && pwd)/$(basename "$NOVA")
tmp=$(mktemp -d "${NOVA_TEST_TMP:-/tmp}/e2e-backup.XXXXXX" 2>/dev/null || mktemp -d)
tmp=$(cd "$tmp" && pwd)
pub=""
cleanup() {
  if mountpoint -q "$tmp/small" 2>/dev/null; then umount "$tmp/small" || true; fi
  rm -rf "$tmp"
  [ -z "$pub" ] || rm -rf "$pub"
}
trap cleanup EXIT
passed=0
. "$(dirname "$0")/lib.sh"
# json FILE EXPR: evaluates a Python expression over the parsed object `d`.
json() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); v=eval(sys.argv[2]); print(v)' "$1" "$2"; }
json_true() { [ "$(json "$1" "$2")" = True ] || { cat "$1" >&2; fail "json: $2"; }; }

export NOVA_PASSWORD=e2e-backup-secret
export NOVA_REPOSITORY=$tmp/repo
src=$tmp/src
mkdir -p "$src/layers/core" "$src/layers/empty" "$src/logs"
for i in 1 2 3 4 5; do printf '{"layer": %d, "facts": ["x", "y"]}\n' "$i" >"$src/layers/core/l$i.json"; done
printf 'top\n' >"$src/top.txt"
: >"$src/empty.json"
ln -s core/l1.json "$src/layers/link.json"
ln "$src/top.txt" "$src/top-hardlink.txt"
printf 'noise\n' >"$src/logs/run.log"
head -c 3000000 /dev/urandom >"$src/blob.bin"
files=10 # regular files (the hard link counts as one more name)

expect_exit 0 "$NOVA" init
ok

# usage errors: exit 2
expect_exit 2 "$NOVA" backup
grep -q 'no PATH' "$tmp/err" || fail "missing PATH message"
expect_exit 2 "$NOVA" backup --strategy sometimes "$src"
expect_exit 2 "$NOVA" backup --tag novalue "$src"
expect_exit 2 "$NOVA" backup --bogus "$src"
ok
# a path that does not exist: an error naming it, nothing stored
expect_exit 1 "$NOVA" backup "$tmp/nope"
grep -q "nope" "$tmp/err" || fail "missing path not named"
[ -z "$(ls "$tmp/repo/snapshots" 2>/dev/null)" ] || fail "a snapshot was written for a missing path"
ok

# incremental without a parent: the note, then a full backup
expect_exit 0 "$NOVA" backup --strategy incremental "$src"
grep -q 'no parent backup: running a full backup' "$tmp/out" || fail "no-parent note"
grep -q '(FULL, completed)' "$tmp/out" || fail "summary names FULL"
ok

# full with tags, as JSON: every field of the issue
expect_exit 0 "$NOVA" --json backup --strategy full --tag env=test --tag layer=core "$src"
cp "$tmp/out" "$tmp/full.json"
for k in backup_id strategy parent_backup_id status started_at finished_at host tags paths \
         files_new files_changed files_unchanged bytes_read original_size compressed_size \
         bytes_added; do
  json_true "$tmp/full.json" "'$k' in d"
done
json_true "$tmp/full.json" "d['strategy'] == 'FULL' and d['status'] == 'completed'"
json_true "$tmp/full.json" "d['parent_backup_id'] is None and len(d['backup_id']) == 64"
json_true "$tmp/full.json" "d['tags'] == {'env': 'test', 'layer': 'core'}"
json_true "$tmp/full.json" "d['paths'] == ['$src']"
json_true "$tmp/full.json" "d['files_new'] == $files and d['files_unchanged'] == 0"
json_true "$tmp/full.json" "d['bytes_read'] == d['original_size'] > 3000000"
json_true "$tmp/full.json" "0 < d['compressed_size'] <= d['original_size'] + 200" # random data: codec headers only
json_true "$tmp/full.json" "d['bytes_added'] < 1000000" # everything was stored already
full_id=$(json "$tmp/full.json" "d['backup_id']")
ok

# incremental, nothing changed: nothing read, parent = the latest backup
expect_exit 0 "$NOVA" --json backup --strategy incremental "$src"
json_true "$tmp/out" "d['strategy'] == 'INCREMENTAL' and d['parent_backup_id'] == '$full_id'"
json_true "$tmp/out" "d['files_unchanged'] == $files and d['bytes_read'] == 0"
inc_id=$(json "$tmp/out" "d['backup_id']")
ok

# one file changes: an incremental reads it alone, so does the differential (since FULL)
sleep 0.01
printf '{"layer": 2, "facts": ["changed"]}\n' >"$src/layers/core/l2.json"
expect_exit 0 "$NOVA" --json backup --strategy incremental "$src"
json_true "$tmp/out" "d['parent_backup_id'] == '$inc_id' and d['files_changed'] == 1"
json_true "$tmp/out" "d['bytes_read'] == 35"
expect_exit 0 "$NOVA" --json backup --strategy differential "$src"
json_true "$tmp/out" "d['strategy'] == 'DIFFERENTIAL' and d['parent_backup_id'] == '$full_id'"
json_true "$tmp/out" "d['files_changed'] == 1 and d['files_unchanged'] == $((files - 1))"
ok

# excludes: by name and by full path
expect_exit 0 "$NOVA" --json backup --strategy full --exclude '*.log' --exclude "$src/layers/empty" "$src"
json_true "$tmp/out" "d['files_new'] == $((files - 1))"
ok

# a restore of the latest backup (no excludes) is identical, and the repository checks clean
expect_exit 0 "$NOVA" backup --strategy incremental "$src"
expect_exit 0 "$NOVA" restore latest --target "$tmp/restored"
diff -r --no-dereference "$src" "$tmp/restored$src" >&2 || fail "restored tree differs"
[ "$(stat -c %i "$tmp/restored$src/top.txt")" = "$(stat -c %i "$tmp/restored$src/top-hardlink.txt")" ] \
  || fail "hard link not restored as one"
expect_exit 0 "$NOVA" check
ok

# two backups into one repository at once: both succeed
head -c 30000000 /dev/urandom >"$src/bigger.bin"
set +e
"$NOVA" backup --strategy full --tag run=a "$src" >"$tmp/a.out" 2>&1 & pa=$!
"$NOVA" backup --strategy full --tag run=b "$src" >"$tmp/b.out" 2>&1 & pb=$!
wait $pa; ra=$?; wait $pb; rb=$?
set -e
[ "$ra" -eq 0 ] && [ "$rb" -eq 0 ] || { cat "$tmp/a.out" "$tmp/b.out" >&2; fail "concurrent backups: $ra $rb"; }
expect_exit 0 "$NOVA" --json list --tag run
json_true "$tmp/out" "len(d) == 2"
expect_exit 0 "$NOVA" check
[ -z "$(ls "$tmp/repo/locks" 2>/dev/null)" ] || fail "a lock was left behind"
ok

# a partial backup: a file the (unprivileged) user cannot read is reported, exit 3
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
  # a directory the unprivileged user can reach (the test scratch may be private)
  pub=$(mktemp -d /tmp/nova-e2e-backup.XXXXXX)
  chmod 755 "$pub"
  user_repo=$pub/user-repo
  mkdir -p "$pub/usersrc/sub"
  printf 'readable\n' >"$pub/usersrc/ok.txt"
  printf 'secret\n' >"$pub/usersrc/sub/secret.txt"
  chmod 000 "$pub/usersrc/sub/secret.txt"
  chmod 755 "$pub/usersrc" "$pub/usersrc/sub"
  mkdir -p "$user_repo" && chown 65534:65534 "$user_repo"
  as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=/ "$@"; }
  expect_exit 0 as_nobody "$NOVA" --repo "$user_repo" init
  expect_exit 3 as_nobody "$NOVA" --repo "$user_repo" --json backup --strategy full "$pub/usersrc"
  grep -q 'BACKUP_003' "$tmp/err" || fail "unreadable file not reported with BACKUP_003"
  grep -q 'secret.txt' "$tmp/err" || fail "unreadable file not named"
  json_true "$tmp/out" "d['status'] == 'partial' and d['errors'] == 1 and d['files_new'] == 1"
  ok
else
  echo "skipped: the partial-backup check needs root and setpriv" >&2
fi

# a full disk: BACKUP_002, and the repository stays consistent
if [ "$(id -u)" -eq 0 ] && command -v mount >/dev/null && mkdir -p "$tmp/small" &&
   mount -t tmpfs -o size=2m tmpfs "$tmp/small" 2>/dev/null; then
  "$NOVA" --repo "$tmp/small/repo" init >/dev/null
  expect_exit 1 "$NOVA" --repo "$tmp/small/repo" backup --strategy full "$src"
  grep -q 'BACKUP_002' "$tmp/err" || { cat "$tmp/err" >&2; fail "full disk is not BACKUP_002"; }
  [ -z "$(ls "$tmp/small/repo/snapshots" 2>/dev/null)" ] || fail "snapshot written on a full disk"
  [ -z "$(ls "$tmp/small/repo/locks" 2>/dev/null)" ] || fail "lock left on a full disk"
  expect_exit 0 "$NOVA" --repo "$tmp/small/repo" check
  umount "$tmp/small"
  ok
else
  echo "skipped: the full-disk check needs a tmpfs mount" >&2
fi

echo "$passed passed, 0 failed"
