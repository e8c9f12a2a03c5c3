#!/usr/bin/env bash
# test_backup_crash.sh -- kill -9 during `nova backup` at random moments: afterwards the
# repository checks clean, a new backup succeeds, and every backup that was reported
# complete restores byte-identical. A handful of rounds by default; NOVA_TEST_LONG=1 runs
# 50 (NOVA_CRASH_ROUNDS overrides both).
set -euo pipefail
NOVA=${NOVA:?path to the nova binary}
tmp=$(mktemp -d "${NOVA_TEST_TMP:-/tmp}/e2e-backup-crash.XXXXXX" 2>/dev/null || mktemp -d)
tmp=$(cd "$tmp" && pwd)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/lib.sh"
rounds=${NOVA_CRASH_ROUNDS:-$([ "${NOVA_TEST_LONG:-0}" = 1 ] && echo 50 || echo 5)}
passed=0

export NOVA_PASSWORD=e2e-crash-secret
export NOVA_REPOSITORY=$tmp/repo
src=$tmp/src
"$NOVA" init >/dev/null || fail "init"

# a source with many small files and a few large ones, so a kill lands in every phase
make_source() { # ROUND
  local r=$1 d
  rm -rf "$src"
  for d in 1 2 3 4; do
    mkdir -p "$src/dir$d"
    for i in $(seq 1 60); do printf '{"round": %d, "dir": %d, "file": %d}\n' "$r" "$d" "$i" >"$src/dir$d/f$i.json"; done
  done
  head -c $((4000000 + r * 1000)) /dev/urandom >"$src/large-$r.bin"
  head -c 12000000 /dev/zero >"$src/zeros.bin"
  printf 'round %d\n' "$r" >"$src/round.txt"
}

declare -A complete=()  # backup id -> the source copy it must restore to
for r in $(seq 1 "$rounds"); do
  make_source "$r"
  strategy=$(case $((r % 3)) in 0) echo full;; 1) echo incremental;; *) echo differential;; esac)
  "$NOVA" --json backup --strategy "$strategy" "$src" >"$tmp/out" 2>"$tmp/err" & pid=$!
  # kill somewhere between start-up and the end (a fast machine may finish first)
  sleep "0.$(printf '%03d' $((RANDOM % 400)))"
  kill -9 "$pid" 2>/dev/null || true
  set +e; wait "$pid"; rc=$?; set -e
  if [ "$rc" -eq 0 ]; then
    # finished before the kill: it must restore exactly
    id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["backup_id"])' "$tmp/out")
    cp -a "$src" "$tmp/expect-$id"
    complete[$id]=$tmp/expect-$id
  elif [ "$rc" -ne 137 ]; then
    cat "$tmp/err" >&2; fail "round $r: backup exited $rc"
  fi
  "$NOVA" check >"$tmp/check.out" 2>&1 || { cat "$tmp/check.out" >&2; fail "round $r: check after kill"; }
  passed=$((passed + 1))
done

# a backup after all that succeeds and restores
make_source 999
"$NOVA" --json backup --strategy incremental "$src" >"$tmp/out" || fail "backup after the kills"
id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["backup_id"])' "$tmp/out")
cp -a "$src" "$tmp/expect-$id"
complete[$id]=$tmp/expect-$id
for id in "${!complete[@]}"; do
  rm -rf "$tmp/restore"
  "$NOVA" restore "$id" --target "$tmp/restore" >/dev/null || fail "restore $id"
  diff -r "${complete[$id]}" "$tmp/restore$src" >&2 || fail "backup $id does not restore identically"
done
passed=$((passed + 1))
"$NOVA" check --read-data >/dev/null || fail "check --read-data at the end"
passed=$((passed + 1))
echo "$passed passed, 0 failed"
