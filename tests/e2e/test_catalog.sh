#!/usr/bin/env bash
# test_catalog.sh -- `nova list`, `nova show`, `nova ls` and `nova diff` end to end on
# real backups: the table and the JSON, every filter, ids by prefix and 'latest', the tree
# of a backup (all of it, below a path, as JSON lines), and the exact changes between a
# full backup and an incremental one after content, size, mode, mtime and type changes.
set -euo pipefail
NOVA=${NOVA:?path to the nova binary}
tmp=$(mktemp -d "${NOVA_TEST_TMP:-/tmp}/e2e-catalog.XXXXXX" 2>/dev/null || mktemp -d)
tmp=$(cd "$tmp" && pwd -P)
trap 'rm -rf "$tmp"' EXIT
passed=0
. "$(dirname "$0")/lib.sh"
unset NOVA_PASSWORD NOVA_NEW_PASSWORD || true
export NOVA_PASSWORD=catalog-secret NOVA_REPOSITORY="$tmp/repo"

"$NOVA" init --kdf-cost 10 >/dev/null || fail "init"
src="$tmp/src"
mkdir -p "$src/notes" "$src/swap"
printf '{"layer": "core", "facts": [1, 2, 3]}\n' >"$src/core.json"
printf '{"layer": "episodic"}\n' >"$src/episodic.json"
printf 'same size A\n' >"$src/notes/same.txt"
printf 'mode\n' >"$src/notes/mode.txt"
printf 'time\n' >"$src/notes/time.txt"
printf 'old\n' >"$src/gone.json"
printf 'file\n' >"$src/swap/thing"
ln -s core.json "$src/link"
touch -d '2026-01-02 03:04:05' "$src/notes/time.txt"

expect_exit 0 "$NOVA" --json backup --strategy full --tag job=e2e --host alpha "$src"
id1=$(python3 -c "import json; print(json.load(open('$tmp/out'))['backup_id'])")

# the changes: content (same size), size, mode only, mtime only, added, removed, type
printf 'same size B\n' >"$src/notes/same.txt"
printf '{"layer": "episodic", "more": true}\n' >"$src/episodic.json"
chmod 600 "$src/notes/mode.txt"
touch -d '2026-02-03 04:05:06' "$src/notes/time.txt"
printf '{"new": 1}\n' >"$src/added.json"
rm "$src/gone.json"
rm "$src/swap/thing" && mkdir "$src/swap/thing" && printf 'inside\n' >"$src/swap/thing/x"
sleep 1 # a later start time: id2 is the newest
expect_exit 0 "$NOVA" --json backup --strategy incremental --tag job=e2e --tag run=2 \
  --host alpha "$src"
id2=$(python3 -c "import json; print(json.load(open('$tmp/out'))['backup_id'])")
[ "$id1" != "$id2" ] || fail "two different backups"

# ---- list ------------------------------------------------------------------------------
expect_exit 0 "$NOVA" list
head -1 "$tmp/out" | grep -q '^ID  *Time  *Strategy  *Status  *Host  *Files  *Size  *Added  *Tags$' \
  || fail "list header"
sed -n 2p "$tmp/out" | grep -q "^${id2:0:12}  .* INCREMENTAL  *completed  *alpha .*job=e2e,run=2$" \
  || fail "list row of the newest"
sed -n 3p "$tmp/out" | grep -q "^${id1:0:12}  .* FULL  *completed  *alpha .*job=e2e$" \
  || fail "list row of the oldest"
grep -q '^2 backups$' "$tmp/out" || fail "list count line"
expect_exit 0 "$NOVA" --json list
json "assert [b['backup_id'] for b in d] == ['$id2', '$id1'], d
b = d[0]
for k in ['backup_id','strategy','parent_backup_id','status','started_at','finished_at','host',
          'tags','paths','files_new','files_changed','files_unchanged','bytes_read',
          'original_size','compressed_size','bytes_added']:
    assert k in b, k
assert b['parent_backup_id'] == '$id1' and b['paths'] == ['$src'] and b['tags'] == {'job': 'e2e', 'run': '2'}, b"
ok

count() { "$NOVA" --json list "$@" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
[ "$(count --strategy full)" = 1 ] || fail "--strategy full"
[ "$(count --strategy INCREMENTAL)" = 1 ] || fail "--strategy incremental"
[ "$(count --strategy differential)" = 0 ] || fail "--strategy differential"
[ "$(count --status completed)" = 2 ] || fail "--status completed"
[ "$(count --status failed)" = 0 ] || fail "--status failed"
[ "$(count --tag job=e2e)" = 2 ] || fail "--tag job=e2e"
[ "$(count --tag run=2)" = 1 ] || fail "--tag run=2"
[ "$(count --tag run)" = 1 ] || fail "--tag KEY alone"
[ "$(count --tag job=e2e --tag run=3)" = 0 ] || fail "two --tag must both match"
[ "$(count --host alpha)" = 2 ] || fail "--host alpha"
[ "$(count --host beta)" = 0 ] || fail "--host beta"
[ "$(count --path "$src")" = 2 ] || fail "--path"
[ "$(count --path /elsewhere)" = 0 ] || fail "--path elsewhere"
[ "$(cd "$src/notes" && count --path ../)" = 2 ] || fail "--path relative to the working directory"
[ "$(cd "$tmp" && count --path ./src/./notes/..//)" = 2 ] || fail "--path cleaned lexically"
expect_exit 0 "$NOVA" --json list --limit 1
json "assert [b['backup_id'] for b in d] == ['$id2'], d"
expect_exit 2 "$NOVA" list --strategy sometimes
grep -q 'GENERAL_003.*sometimes' "$tmp/err" || fail "bad strategy explained"
expect_exit 2 "$NOVA" list --status maybe
expect_exit 2 "$NOVA" list --limit 0
expect_exit 2 "$NOVA" list --bogus
expect_exit 2 "$NOVA" list extra
NOVA_PASSWORD=wrong expect_exit 4 "$NOVA" list
expect_exit 5 "$NOVA" list --repo "$tmp/nothing"
ok

# ---- show ------------------------------------------------------------------------------
expect_exit 0 "$NOVA" show latest
grep -q "^backup      $id2$" "$tmp/out" || fail "show latest is the newest"
grep -q "^parent      $id1$" "$tmp/out" || fail "show parent"
grep -q '^strategy    INCREMENTAL$' "$tmp/out" || fail "show strategy"
grep -q "^paths       $src$" "$tmp/out" || fail "show paths"
grep -q '^tags        job=e2e run=2$' "$tmp/out" || fail "show tags"
grep -q '^files       [0-9]* new, [0-9]* changed, [0-9]* unchanged$' "$tmp/out" || fail "show files"
expect_exit 0 "$NOVA" --json show "${id1:0:8}"
json "assert d['backup_id'] == '$id1' and d['strategy'] == 'FULL' and d['parent_backup_id'] is None, d"
expect_exit 1 "$NOVA" show 00000000
grep -q 'RECOVERY_001' "$tmp/err" || fail "unknown id gives RECOVERY_001"
expect_exit 2 "$NOVA" show xyz
expect_exit 2 "$NOVA" show
expect_exit 2 "$NOVA" show "$id1" "$id2"
ok

# ---- ls --------------------------------------------------------------------------------
expect_exit 0 "$NOVA" ls "$id1"
grep -q "^drwxr-xr-x  .*  $src$" "$tmp/out" || fail "ls shows the backed-up directory"
grep -q "^-rw-r--r--  .* 5  .*  $src/notes/mode.txt$" "$tmp/out" || { cat "$tmp/out"; fail "ls file line"; }
grep -q "^lrwxrwxrwx  .*  $src/link -> core.json$" "$tmp/out" || fail "ls symlink line"
grep -q "^-rw-r--r--  .*  2026-01-02 03:04:05  $src/notes/time.txt$" "$tmp/out" \
  || fail "ls shows the local mtime"
sed 's/ -> .*//' "$tmp/out" | awk '{print $NF}' | grep "^$src" >"$tmp/paths1"
printf '%s\n' "$src" "$src/core.json" "$src/episodic.json" "$src/gone.json" "$src/link" \
  "$src/notes" "$src/notes/mode.txt" "$src/notes/same.txt" "$src/notes/time.txt" "$src/swap" \
  "$src/swap/thing" >"$tmp/want1"
diff "$tmp/want1" "$tmp/paths1" >&2 || fail "ls lists every entry below src, in order"
# below a path, and one file
expect_exit 0 "$NOVA" ls "$id2" "$src/swap"
[ "$(awk '{print $NF}' "$tmp/out" | tr '\n' ' ')" = "$src/swap $src/swap/thing $src/swap/thing/x " ] \
  || { cat "$tmp/out"; fail "ls below a path"; }
expect_exit 0 "$NOVA" ls latest "$src/core.json"
[ "$(wc -l <"$tmp/out")" -eq 1 ] || fail "ls of one file"
(cd "$src/notes" && "$NOVA" ls latest ../core.json) >"$tmp/out" || fail "ls of a relative path"
grep -q "  $src/core.json$" "$tmp/out" || fail "ls of a relative path shows the absolute path"
expect_exit 0 "$NOVA" --json ls "$id2" "$src/notes"
python3 - "$tmp/out" "$src" <<'EOF' || fail "ls --json lines"
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
src = sys.argv[2]
by = {r["path"]: r for r in rows}
assert list(by) == [src + "/notes", src + "/notes/mode.txt", src + "/notes/same.txt",
                    src + "/notes/time.txt"], list(by)
assert by[src + "/notes"]["type"] == "dir"
m = by[src + "/notes/mode.txt"]
assert m["type"] == "file" and m["mode"] == "0600" and m["size"] == 5, m
assert by[src + "/notes/time.txt"]["mtime"].startswith("2026-02-03T"), by
EOF
expect_exit 2 "$NOVA" ls "$id1" "$src/added.json"
grep -q "is not in backup ${id1:0:12}" "$tmp/err" || fail "ls of a missing path explained"
expect_exit 2 "$NOVA" ls "$id1" "$src/core.json/deeper"
expect_exit 2 "$NOVA" ls
expect_exit 1 "$NOVA" ls 00000000
ok

# ---- diff ------------------------------------------------------------------------------
expect_exit 0 "$NOVA" diff "$id1" "$id2"
cat >"$tmp/want" <<EOF
+  $src/added.json
M  $src/episodic.json
-  $src/gone.json
m  $src/notes/mode.txt
M  $src/notes/same.txt
m  $src/notes/time.txt
-  $src/swap/thing
+  $src/swap/thing/
+  $src/swap/thing/x
3 added, 2 removed, 2 modified, 2 metadata only; +32 B -9 B
EOF
diff "$tmp/want" "$tmp/out" >&2 || fail "diff lists exactly the changes"
expect_exit 0 "$NOVA" --json diff "${id1:0:10}" latest
json "s = d['summary']; assert (s['added'], s['removed'], s['modified'], s['metadata']) == (3, 2, 2, 2), s
c = {(x['change'], x['path']) for x in d['changes']}
assert ('M', '$src/notes/same.txt') in c and ('+', '$src/swap/thing/x') in c, c"
expect_exit 0 "$NOVA" diff "$id2" "$id2"
[ "$(cat "$tmp/out")" = "0 added, 0 removed, 0 modified, 0 metadata only; +0 B -0 B" ] \
  || fail "a backup against itself"
expect_exit 2 "$NOVA" diff "$id1"
expect_exit 1 "$NOVA" diff "$id1" 00000000
ok

echo "$passed passed, 0 failed"
