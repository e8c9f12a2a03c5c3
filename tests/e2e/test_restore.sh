#!/usr/bin/env bash
# test_restore.sh -- `nova restore` end to end through the nova binary: a tree with every
# entry type and metadata backed up and restored identically; --json result; a second
# restore into the same target rewrites nothing; --include; point in time (--at absolute
# UTC, local, relative); a missing backup (RECOVERY_001, exit 1); usage errors (exit 2); a
# flipped byte in a pack fails loudly (exit 6) and never leaves wrong bytes; a symlink
# planted in the target is never followed.
set -euo pipefail
NOVA=${NOVA:?path to the nova binary}
tmp=$(mktemp -d "${NOVA_TEST_TMP:-/tmp}/e2e-restore.XXXXXX" 2>/dev/null || mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
. "$(dirname "$0")/lib.sh"
json_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$tmp/out" "$1"; }
# type, mode, owner, size (non-dirs), mtime (ns) and symlink target of every entry, relative
meta() {
  (cd "$1" && find . -printf '%p %y %m %U:%G %T@ %l\n' -type f -printf '%p size %s links %n\n' | sort)
}
same_tree() { # SOURCE RESTORED
  diff -r --no-dereference -x fifo "$1" "$2" >/dev/null || fail "content of $2 differs from $1"
  diff <(meta "$1") <(meta "$2") >"$tmp/meta.diff" || { cat "$tmp/meta.diff" >&2; fail "metadata of $2 differs"; }
}

export NOVA_PASSWORD=e2e-restore NOVA_REPOSITORY="$tmp/repo"
src="$tmp/src"
mkdir -p "$src/layers/core" "$src/layers/empty-dir" "$src/read-only"
printf '{"layer": "core", "n": 1}\n' >"$src/layers/core/a.json"
printf '{"layer": "core", "n": 2}\n' >"$src/layers/core/b.json"
head -c 3000000 /dev/urandom >"$src/layers/big.bin"
: >"$src/layers/empty.json"
ln "$src/layers/core/a.json" "$src/layers/a-hardlink.json"
ln -s core/b.json "$src/layers/b-link"
ln -s /nonexistent/target "$src/dangling"
mkfifo "$src/fifo"
truncate -s 6M "$src/sparse.img"
printf 'head' | dd of="$src/sparse.img" conv=notrunc status=none
printf 'tail' | dd of="$src/sparse.img" bs=1 seek=5000000 conv=notrunc status=none
printf 'inside' >"$src/read-only/file"
chmod 0640 "$src/layers/core/a.json"
chmod 4755 "$src/layers/empty.json"
setfattr -n user.layer -v core "$src/layers/core/b.json" 2>/dev/null || true
touch -h -d '2024-01-02 03:04:05.123456789' "$src/layers/b-link" "$src/layers/core/b.json"
touch -d '2023-05-06 07:08:09' "$src/layers/empty-dir" "$src/layers/core"
chmod 0555 "$src/read-only"

expect_exit 0 "$NOVA" init
expect_exit 0 "$NOVA" --json backup --strategy full "$src"
first_id=$(json_field backup_id)
[ ${#first_id} -eq 64 ] || fail "backup id"

# --- a full restore, with the JSON result
expect_exit 0 "$NOVA" --json restore latest --target "$tmp/t1"
[ "$(json_field backup_id)" = "$first_id" ] || fail "--json backup_id"
[ "$(json_field errors)" = 0 ] || fail "--json errors"
[ "$(json_field files_unchanged)" = 0 ] || fail "--json files_unchanged"
restored=$(json_field files_restored)
[ "$restored" -eq 10 ] || fail "files_restored $restored, want 10"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["bytes_written"] >= 3000000 and d["seconds"] >= 0' "$tmp/out" \
  || fail "--json bytes_written/seconds"
same_tree "$src" "$tmp/t1$src"
[ "$(stat -c %i "$tmp/t1$src/layers/core/a.json")" = "$(stat -c %i "$tmp/t1$src/layers/a-hardlink.json")" ] \
  || fail "hard link not relinked"
[ "$(stat -c %b "$tmp/t1$src/sparse.img")" -lt 1000 ] || fail "sparse file lost its holes"
ok

# --- again into the same target: nothing rewritten
inode_before=$(stat -c %i "$tmp/t1$src/layers/big.bin")
expect_exit 0 "$NOVA" --json restore "${first_id:0:12}" --target "$tmp/t1"
[ "$(json_field files_restored)" = 0 ] || fail "second restore rewrote files"
[ "$(json_field files_unchanged)" = "$restored" ] || fail "second restore files_unchanged"
[ "$(stat -c %i "$tmp/t1$src/layers/big.bin")" = "$inode_before" ] || fail "unchanged file replaced"
# a changed file is put back, an extra one is kept
printf 'changed!' >"$tmp/t1$src/layers/core/b.json"
printf 'mine' >"$tmp/t1$src/layers/mine.txt"
expect_exit 0 "$NOVA" --json restore latest --target "$tmp/t1"
[ "$(json_field files_restored)" = 1 ] || fail "changed file not restored once"
cmp -s "$src/layers/core/b.json" "$tmp/t1$src/layers/core/b.json" || fail "changed file content"
[ -f "$tmp/t1$src/layers/mine.txt" ] || fail "extra file removed"
ok

# --- includes
expect_exit 0 "$NOVA" restore latest --target "$tmp/t2" --include "$src/layers/core" --include "$src/fifo" --sync
[ -p "$tmp/t2$src/fifo" ] || fail "--include file"
diff -r "$src/layers/core" "$tmp/t2$src/layers/core" >/dev/null || fail "--include dir"
[ ! -e "$tmp/t2$src/layers/big.bin" ] || fail "--include restored too much"
expect_exit 2 "$NOVA" restore latest --target "$tmp/t3" --include "$src/not-there"
grep -q 'not in backup' "$tmp/err" || fail "unknown include message"
[ ! -e "$tmp/t3" ] || fail "unknown include created the target"
ok

# --- point in time
sleep 1.2
between_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ)
between_local=$(date +'%Y-%m-%d %H:%M:%S')
sleep 1.2
printf '{"layer": "core", "n": 3}\n' >"$src/layers/core/a.json"
expect_exit 0 "$NOVA" --json backup --strategy incremental "$src"
second_id=$(json_field backup_id)
expect_exit 0 "$NOVA" --json restore --at "$between_utc" --target "$tmp/pit1"
[ "$(json_field backup_id)" = "$first_id" ] || fail "--at UTC picked the wrong backup"
grep -q '"n": 1' "$tmp/pit1$src/layers/core/a.json" || fail "--at UTC content"
expect_exit 0 "$NOVA" --json restore --at "$between_local" --target "$tmp/pit2"
[ "$(json_field backup_id)" = "$first_id" ] || fail "--at local picked the wrong backup"
expect_exit 0 "$NOVA" --json restore --at 0m --target "$tmp/pit3"
[ "$(json_field backup_id)" = "$second_id" ] || fail "--at 0m picked the wrong backup"
grep -q '"n": 3' "$tmp/pit3$src/layers/core/a.json" || fail "--at 0m content"
expect_exit 1 "$NOVA" restore --at 1h --target "$tmp/pit4"
grep -q 'RECOVERY_001' "$tmp/err" || fail "--at before every backup: RECOVERY_001"
expect_exit 1 "$NOVA" restore --at 2000-01-01 --target "$tmp/pit4"
expect_exit 2 "$NOVA" restore --at 'yesterday-ish' --target "$tmp/pit4"
ok

# --- errors and usage
expect_exit 1 "$NOVA" restore deadbeef --target "$tmp/x"
grep -q 'RECOVERY_001' "$tmp/err" || fail "missing backup: RECOVERY_001"
expect_exit 2 "$NOVA" restore latest
expect_exit 2 "$NOVA" restore --target "$tmp/x"
expect_exit 2 "$NOVA" restore latest --at 1h --target "$tmp/x"
expect_exit 2 "$NOVA" restore latest --target "$tmp/x" --bogus
expect_exit 0 "$NOVA" restore --help
grep -q 'usage: nova restore' "$tmp/out" || fail "restore --help"
ok

# --- a symlink planted where a directory goes is removed, never followed
mkdir -p "$tmp/outside"
rm -rf "$tmp/t1$src/layers/core"
ln -s "$tmp/outside" "$tmp/t1$src/layers/core"
expect_exit 0 "$NOVA" restore "$first_id" --target "$tmp/t1" --include "$src/layers"
[ -z "$(ls -A "$tmp/outside")" ] || fail "wrote through a planted symlink"
[ -d "$tmp/t1$src/layers/core" ] && [ ! -L "$tmp/t1$src/layers/core" ] || fail "planted symlink kept"
ok

# --- a flipped byte in a pack: exit 6, INTEGRITY_00x, never wrong bytes
pack=$(find "$tmp/repo/data" -type f -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2)
chmod u+w "$pack"
python3 - "$pack" <<'EOF'
import sys
p = sys.argv[1]
with open(p, "r+b") as f:
    f.seek(1500000)  # inside big.bin's data, far from the header at the end
    b = f.read(1)
    f.seek(1500000)
    f.write(bytes([b[0] ^ 0x10]))
EOF
expect_exit 6 "$NOVA" restore "$first_id" --target "$tmp/bad"
grep -q 'INTEGRITY_00[12]' "$tmp/err" || fail "damage not reported with INTEGRITY code"
grep -q 'data/' "$tmp/err" || fail "damage message does not name the pack"
# every file that was restored is identical to the source; the damaged one is absent
(cd "$tmp/bad$src" && find . -type f) | while read -r f; do
  case "$f" in ./layers/core/a.json|./layers/a-hardlink.json) continue;; esac  # changed since
  cmp -s "$src/$f" "$tmp/bad$src/$f" || fail "wrong bytes in $f"
done
[ "$(find "$tmp/bad$src" -type f | wc -l)" -lt 9 ] || fail "nothing was refused"
ok

echo "$passed passed, 0 failed"
