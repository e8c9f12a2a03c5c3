#!/usr/bin/env bash
# test_check.sh -- `nova check` end to end: a clean repository checks clean (structure
# and --read-data, text and JSON), --subset n/m and x% read the right packs, usage
# errors, and damage -- a flipped byte in a pack, a snapshot, an index file, a tree; a
# missing pack -- gives exit 6 with INTEGRITY_001/002, the object and the backups it
# affects. A pack no index names is a warning only.
set -euo pipefail
NOVA=${NOVA:?path to the nova binary}
tmp=$(mktemp -d "${NOVA_TEST_TMP:-/tmp}/e2e-check.XXXXXX" 2>/dev/null || mktemp -d)
tmp=$(cd "$tmp" && pwd -P)
trap 'rm -rf "$tmp"' EXIT
passed=0
. "$(dirname "$0")/lib.sh"
flip() { # FILE OFFSET (negative: from the end)
  python3 - "$1" "$2" <<'EOF'
import os, sys
path, off = sys.argv[1], int(sys.argv[2])
size = os.path.getsize(path)
off = off % size
with open(path, 'r+b') as f:
    f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0x01]))
EOF
}
fresh_copy() { rm -rf "$tmp/damaged"; cp -a "$tmp/repo" "$tmp/damaged"; }
unset NOVA_PASSWORD NOVA_NEW_PASSWORD NOVA_REPOSITORY || true
export NOVA_PASSWORD=check-secret

# ---- a repository with two backups that share data
"$NOVA" --repo "$tmp/repo" init --kdf-cost 10 >/dev/null || fail "init"
src="$tmp/src"
mkdir -p "$src/layers/deep"
head -c 3000000 /dev/urandom >"$src/layers/big.bin"
head -c 200000 /dev/urandom >"$src/layers/deep/mid.bin"
printf '{"layer": "core", "facts": [1, 2, 3]}\n' >"$src/core.json"
expect_exit 0 "$NOVA" --repo "$tmp/repo" --json backup --strategy full "$src"
id1=$(python3 -c "import json; print(json.load(open('$tmp/out'))['backup_id'])")
head -c 500000 /dev/urandom >"$src/layers/new.bin"
printf '{"layer": "core", "facts": [1, 2, 3, 4]}\n' >"$src/core.json"
expect_exit 0 "$NOVA" --repo "$tmp/repo" --json backup --strategy incremental "$src"
id2=$(python3 -c "import json; print(json.load(open('$tmp/out'))['backup_id'])")
packs=$(find "$tmp/repo/data" -type f | wc -l)
export NOVA_REPOSITORY="$tmp/repo"

# ---- clean
expect_exit 0 "$NOVA" check
grep -q 'no errors found' "$tmp/out" || fail "clean check says so"
grep -q "2 snapshots" "$tmp/out" || fail "clean check counts the snapshots"
ok
expect_exit 0 "$NOVA" --json check
json "assert d['status']=='ok' and d['errors']==[] and d['warnings']==[], d
assert d['packs_checked']==$packs and d['snapshots_checked']==2 and d['packs_read']==0, d
assert d['trees_checked']>=4 and d['indexes_checked']>=2 and d['keys_checked']==1, d"
ok
expect_exit 0 "$NOVA" check --read-data --json
bytes=$(find "$tmp/repo/data" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
json "assert d['status']=='ok' and d['packs_read']==$packs and d['bytes_read']==$bytes, d
assert d['blobs_checked']>10, d"
ok
expect_exit 0 "$NOVA" check --read-data
grep -q "read $packs pack" "$tmp/out" || fail "read-data summary"
expect_exit 0 "$NOVA" -q check
[ ! -s "$tmp/out" ] || fail "--quiet prints nothing on a clean repository"
[ -z "$(ls "$tmp/repo/locks")" ] || fail "check leaves no lock behind"
ok

# ---- subsets: n/m by the first byte of the pack id; x% at random
total=0
for n in 1 2 3; do
  expect_exit 0 "$NOVA" --json check --subset "$n/3"
  want=$(find "$tmp/repo/data" -type f -printf '%f\n' | python3 -c "import sys; print(sum(1 for l in sys.stdin if int(l[:2],16)%3==$n-1))")
  json "assert d['packs_read']==$want and d['packs_checked']==$packs, (d['packs_read'], $want)"
  total=$((total + want))
done
[ "$total" -eq "$packs" ] || fail "subsets 1/3..3/3 cover every pack once"
expect_exit 0 "$NOVA" --json check --subset 100%
json "assert d['packs_read']==$packs"
expect_exit 0 "$NOVA" --json check --read-data-subset 1%
json "assert d['packs_read']==1"
ok
for bad in 0/3 4/3 1/0 1/300 x 0% 150% 1/2/3; do
  expect_exit 2 "$NOVA" check --subset "$bad"
done
expect_exit 2 "$NOVA" check --subset 1/2 --subset 50%
expect_exit 2 "$NOVA" check --bogus
expect_exit 2 "$NOVA" check extra
expect_exit 0 "$NOVA" check --help
grep -q 'usage: nova check' "$tmp/out" || fail "check --help"
ok

# ---- damage: a byte in the biggest pack (a data blob)
fresh_copy
big=$(find "$tmp/damaged/data" -type f -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2)
name=${big#"$tmp/damaged/"}
flip "$big" 1000000
expect_exit 6 "$NOVA" --repo "$tmp/damaged" --json check --read-data
json "assert d['status']=='damaged', d
errs = d['errors']
assert any(e['code']=='INTEGRITY_001' and e['object']=='$name' for e in errs), errs
blob = [e for e in errs if e['code']=='INTEGRITY_002' and e['object'].startswith('blob ')]
assert len(blob)==1, errs
assert set(blob[0]['snapshots']) <= {'$id1', '$id2'} and blob[0]['snapshots'], blob"
expect_exit 6 "$NOVA" --repo "$tmp/damaged" check --read-data
grep -q "^error: INTEGRITY_001 $name" "$tmp/out" || fail "text names the pack with its code"
grep -q "affects [12] backup" "$tmp/out" || fail "text names the affected backups"
grep -q "errors found: the repository is damaged" "$tmp/out" || fail "text verdict"
# only the selected part of the packs is read
first=$(basename "$big" | cut -c1-2)
part=$(( 16#$first % 2 + 1 ))
other=$(( (16#$first + 1) % 2 + 1 ))
expect_exit 6 "$NOVA" --repo "$tmp/damaged" check --subset "$part/2"
expect_exit 0 "$NOVA" --repo "$tmp/damaged" check --subset "$other/2"
ok

# ---- a snapshot: only that backup is affected
fresh_copy
flip "$tmp/damaged/snapshots/$id2" 60
expect_exit 6 "$NOVA" --repo "$tmp/damaged" --json check
json "errs = d['errors']
assert len(errs)==1 and errs[0]['object']=='snapshots/$id2', errs
assert errs[0]['code']=='INTEGRITY_002' and errs[0]['snapshots']==['$id2'], errs"
ok

# ---- an index file: its checksum, and what goes missing with it
fresh_copy
index=$(find "$tmp/damaged/index" -type f | head -1)
flip "$index" 70
expect_exit 6 "$NOVA" --repo "$tmp/damaged" --json check
json "errs = d['errors']
assert any(e['code']=='INTEGRITY_001' and e['object']=='index/$(basename "$index")' for e in errs), errs
assert any(e['snapshots'] for e in errs), errs"
ok

# ---- a missing pack
fresh_copy
rm -f "$tmp/damaged/$name"
expect_exit 6 "$NOVA" --repo "$tmp/damaged" --json check
json "errs = d['errors']
e = [e for e in errs if e['object']=='$name']
assert e and 'missing' in e[0]['message'] and e[0]['code']=='INTEGRITY_002' and e[0]['snapshots'], errs"
ok

# ---- every pack: a flipped byte anywhere is found by --read-data
for pack in $(find "$tmp/repo/data" -type f | sort); do
  fresh_copy
  flip "$tmp/damaged/${pack#"$tmp/repo/"}" 777
  expect_exit 6 "$NOVA" --repo "$tmp/damaged" check --read-data
done
ok

# ---- a pack no index names is only a warning
fresh_copy
mkdir -p "$tmp/damaged/data/ab"
head -c 5000 /dev/urandom >"$tmp/damaged/data/ab/ab$(printf '%062d' 7)"
expect_exit 0 "$NOVA" --repo "$tmp/damaged" --json check --read-data
json "assert d['status']=='ok' and len(d['warnings'])==1 and 'no index' in d['warnings'][0]['message'], d"
expect_exit 0 "$NOVA" --repo "$tmp/damaged" check --no-lock
grep -q '^warning: ' "$tmp/out" || fail "text warning"
ok

echo "$passed passed, 0 failed"
