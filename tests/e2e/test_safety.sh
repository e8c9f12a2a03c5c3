#!/usr/bin/env bash
# test_safety.sh -- "nothing is lost", proven through the nova binary:
#   - kill -9 at random moments during backup and during prune: the repository always
#     checks clean (read-data) and every backup reported complete restores byte-identical
#     (a handful of rounds by default, NOVA_TEST_LONG=1 runs 50 of each);
#   - two backups into one repository at once both succeed;
#   - a flipped byte in any stored object makes check and restore fail loudly, never
#     restore wrong bytes;
#   - a full disk gives BACKUP_002 and leaves the repository consistent;
#   - a wrong passphrase, a missing repository, a malformed config: one line with a code
#     and a non-zero exit.
set -euo pipefail
NOVA=${NOVA:?path to the nova binary}
tmp=$(mktemp -d "${NOVA_TEST_TMP:-/tmp}/e2e-safety.XXXXXX" 2>/dev/null || mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export NOVA_PASSWORD=safety-secret NOVA_REPOSITORY=$tmp/repo
rounds=${NOVA_TEST_KILL_ROUNDS:-4}
[ "${NOVA_TEST_LONG:-0}" = 1 ] && rounds=50
passed=0
. "$(dirname "$0")/lib.sh"
ok() { passed=$((passed + 1)); echo "ok - $*"; }

# A source tree of many small JSON files and a few larger ones (deterministic).
make_source() {
  local dir=$1 seed=$2
  mkdir -p "$dir/layers/a" "$dir/layers/b"
  awk -v dir="$dir" -v seed="$seed" 'BEGIN { srand(seed)
    for (f = 0; f < 400; f++) {
      file = sprintf("%s/layers/%s/m%04d.json", dir, (f % 2 ? "a" : "b"), f)
      printf "{\"id\": %d, \"v\": %.6f, \"text\": \"%s\"}\n", f, rand(), substr("memory layers must never be lost", 1, 1 + f % 30) > file
      close(file) } }'
  head -c 6000000 /dev/urandom >"$dir/layers/blob.bin"
  seq 1 400000 >"$dir/layers/big.txt"
}

# Every backup that list reports as completed must restore byte-identical to what it
# recorded; we keep a copy of the source as it was for each completed backup by tag.
verify_repository() {
  "$NOVA" check --read-data >"$tmp/check.out" 2>&1 || { cat "$tmp/check.out"; fail "check after $1"; }
  "$NOVA" --json list --status completed >"$tmp/list.json" || fail "list after $1"
  python3 - "$tmp/list.json" >"$tmp/ids" <<'PY'
import json, sys
for b in json.load(open(sys.argv[1])):
    print(b["backup_id"], b["tags"].get("copy", ""))
PY
  while read -r id copy; do
    [ -n "$copy" ] || continue
    rm -rf "$tmp/restore"
    "$NOVA" restore "$id" --target "$tmp/restore" >/dev/null || fail "restore $id after $1"
    diff -r "$tmp/copies/$copy" "$tmp/restore$tmp/src" >/dev/null || fail "backup $id restores different bytes after $1"
  done <"$tmp/ids"
}

"$NOVA" init >/dev/null
make_source "$tmp/src" 1
mkdir -p "$tmp/copies"
generation=0
backup_copy() { # a backup whose source we remember exactly
  generation=$((generation + 1))
  cp -a "$tmp/src" "$tmp/copies/g$generation"
  "$NOVA" backup --strategy "$1" --tag "copy=g$generation" "$tmp/src" >/dev/null
}
backup_copy full

# kill_after PID MAX_MS: kills PID -9 after a random delay of 20% to 100% of MAX_MS (the
# measured length of the same operation) and counts it when the signal ended it (so the
# test knows it hit mid-operation).
killed=0
kill_after() {
  sleep "$(awk -v r="$RANDOM" -v m="$2" 'BEGIN { printf "%.3f", (0.2 + 0.8 * (r % 1000) / 1000) * m / 1000 }')"
  kill -9 "$1" 2>/dev/null || true
  local status=0
  wait "$1" 2>/dev/null || status=$?
  [ "$status" -ne 137 ] || killed=$((killed + 1)) # 128 + SIGKILL: it was still running
}

now_ms() { date +%s%3N; }
# timed CMD...: runs CMD, sets $elapsed_ms
timed() { local t0; t0=$(now_ms); "$@"; elapsed_ms=$(( $(now_ms) - t0 )); }

# ---- kill -9 during backup
make_source "$tmp/src" 99
timed "$NOVA" backup --strategy incremental "$tmp/src" >/dev/null   # how long one takes
backup_ms=$elapsed_ms
for round in $(seq 1 "$rounds"); do
  make_source "$tmp/src" $((round + 100))   # new content each round
  generation=$((generation + 1))
  cp -a "$tmp/src" "$tmp/copies/g$generation"
  "$NOVA" backup --strategy incremental --tag "copy=g$generation" "$tmp/src" >/dev/null 2>&1 &
  before=$killed
  kill_after $! "$backup_ms"
  [ "$killed" -gt "$before" ] || backup_ms=$((backup_ms * 2 / 3))
  verify_repository "kill -9 during backup (round $round)"
done
[ "$killed" -ge 1 ] || fail "no backup was still running when killed: the test proves nothing"
ok "kill -9 during backup, $rounds rounds ($killed killed mid-run): repository checks clean, completed backups restore"
killed=0

# ---- kill -9 during prune (after forgetting some backups)
backup_copy incremental
"$NOVA" forget --keep-last 2 >/dev/null
timed "$NOVA" prune --dry-run >/dev/null   # a lower bound of how long a prune takes
prune_ms=$((elapsed_ms * 2))
for round in $(seq 1 "$rounds"); do
  backup_copy incremental
  "$NOVA" forget --keep-last 2 >/dev/null
  "$NOVA" prune >/dev/null 2>&1 &
  before=$killed
  kill_after $! "$prune_ms"
  # it finished first: aim earlier next round
  [ "$killed" -gt "$before" ] || prune_ms=$((prune_ms * 2 / 3))
  "$NOVA" unlock >/dev/null # the killed prune's lock: its process is gone
  verify_repository "kill -9 during prune (round $round)"
done
"$NOVA" prune >/dev/null
verify_repository "a final prune"
[ "$killed" -ge 1 ] || fail "no prune was still running when killed: the test proves nothing"
ok "kill -9 during prune, $rounds rounds ($killed killed mid-run): repository checks clean, completed backups restore"

# ---- two backups at once
make_source "$tmp/src2" 7
"$NOVA" backup --strategy full --tag pair=1 "$tmp/src" >"$tmp/p1" 2>&1 &
p1=$!
"$NOVA" backup --strategy full --tag pair=2 "$tmp/src2" >"$tmp/p2" 2>&1 &
p2=$!
wait "$p1" || { cat "$tmp/p1"; fail "first concurrent backup"; }
wait "$p2" || { cat "$tmp/p2"; fail "second concurrent backup"; }
"$NOVA" check --read-data >/dev/null || fail "check after concurrent backups"
[ "$("$NOVA" --json list --tag pair=1 | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 1 ] || fail "pair=1 listed"
[ "$("$NOVA" --json list --tag pair=2 | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 1 ] || fail "pair=2 listed"
ok "two backups into one repository at once both succeed"

# ---- a flipped byte in every kind of stored object
flip() { # FILE OFFSET-FRACTION
  python3 - "$1" <<'PY'
import os, sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); i = len(b) // 2
b[i] ^= 0x20; open(p, 'wb').write(bytes(b))
PY
}
last_copy_id=$("$NOVA" --json list --tag "copy=g$generation" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["backup_id"])')
restore_failures=0
cp -a "$tmp/repo" "$tmp/pristine"
for kind in data index snapshots keys config; do
  rm -rf "$tmp/repo"; cp -a "$tmp/pristine" "$tmp/repo"
  victim=$(find "$tmp/repo/$kind" -type f ! -name '.*' 2>/dev/null | sort | head -1) # not a killed writer's temp file
  [ -n "$victim" ] || victim=$tmp/repo/$kind
  flip "$victim"
  set +e
  "$NOVA" check --read-data >"$tmp/flip.out" 2>&1; rc_check=$?
  rm -rf "$tmp/restore"
  "$NOVA" restore "$last_copy_id" --target "$tmp/restore" >"$tmp/flip-restore.out" 2>&1; rc_restore=$?
  set -e
  [ "$rc_check" -ne 0 ] || fail "check accepted a flipped byte in $kind"
  grep -Eq 'INTEGRITY_00[12]|KEY_001|REPO_' "$tmp/flip.out" || { cat "$tmp/flip.out"; fail "check names no code for $kind"; }
  if [ "$rc_restore" -eq 0 ]; then
    # restore may succeed only when the damaged object is not one it needs: the bytes
    # it wrote must then be right
    diff -r "$tmp/copies/g$generation" "$tmp/restore$tmp/src" >/dev/null 2>&1 \
      || fail "restore wrote wrong bytes after a flip in $kind"
  else
    restore_failures=$((restore_failures + 1))
  fi
done
rm -rf "$tmp/repo"; mv "$tmp/pristine" "$tmp/repo"
[ "$restore_failures" -ge 3 ] || fail "restore failed after only $restore_failures of 5 flips"
ok "a flipped byte in data, index, snapshots, keys and config is caught by check"

# ---- disk full: BACKUP_002, repository consistent (needs a private mount namespace)
if unshare -m true 2>/dev/null; then
  cat >"$tmp/full.sh" <<EOS
set -u
mkdir -p "$tmp/small"
mount -t tmpfs -o size=3m tmpfs "$tmp/small" || exit 77
export NOVA_REPOSITORY="$tmp/small/repo"
"$NOVA" init >/dev/null || exit 10
head -c 8000000 /dev/urandom >"$tmp/bigfile"
"$NOVA" backup --strategy full "$tmp/bigfile" >"$tmp/full.out" 2>&1
echo "backup_rc=\$?" >>"$tmp/full.out"
"$NOVA" check --read-data >>"$tmp/full.out" 2>&1 || exit 11
exit 0
EOS
  set +e; unshare -m bash "$tmp/full.sh"; rc=$?; set -e
  if [ "$rc" -eq 77 ]; then
    echo "skip - disk full (tmpfs cannot be mounted here)"
  else
    [ "$rc" -eq 0 ] || { cat "$tmp/full.out"; fail "repository not consistent after disk full (rc $rc)"; }
    grep -q 'BACKUP_002' "$tmp/full.out" || { cat "$tmp/full.out"; fail "disk full does not say BACKUP_002"; }
    grep -q 'backup_rc=[1-9]' "$tmp/full.out" || fail "disk full exit code"
    ok "disk full gives BACKUP_002 and leaves the repository consistent"
  fi
else
  echo "skip - disk full (no mount namespace)"
fi

# ---- one clear line with a code and a non-zero exit
one_line_error() { # WANT_CODE WANT_EXIT CMD...
  local code=$1 want=$2; shift 2
  set +e; "$@" >"$tmp/e.out" 2>"$tmp/e.err"; local rc=$?; set -e
  [ "$rc" -eq "$want" ] || { cat "$tmp/e.err"; fail "'$*' exited $rc, want $want"; }
  [ "$(grep -c "^nova: $code" "$tmp/e.err")" = 1 ] || { cat "$tmp/e.err"; fail "'$*' does not say $code on one line"; }
}
NOVA_PASSWORD=wrong one_line_error KEY_001 4 "$NOVA" list
one_line_error REPO_003 5 "$NOVA" --repo "$tmp/nowhere" list
printf '{"retention_days": [' >"$tmp/bad.json"
one_line_error CONFIG_001 7 "$NOVA" --config "$tmp/bad.json" list
ok "wrong passphrase, missing repository and malformed config: one line, code, exit code"

echo "$passed passed, 0 failed"
