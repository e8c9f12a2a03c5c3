#!/usr/bin/env bash
# test_retention.sh -- `nova delete`, `nova forget` and `nova cleanup` end to end: what is
# deleted is gone from `nova list` and `nova show`, what is kept stays readable, a typo
# deletes nothing, dry runs delete nothing, groups (host and paths) are judged apart,
# --host/--tag filters limit what is judged, the retention period comes from the config,
# and no lock is left behind.
set -euo pipefail
NOVA=${NOVA:?path to the nova binary}
tmp=$(mktemp -d "${NOVA_TEST_TMP:-/tmp}/e2e-retention.XXXXXX" 2>/dev/null || mktemp -d)
tmp=$(cd "$tmp" && pwd -P)
trap 'rm -rf "$tmp"' EXIT
passed=0
. "$(dirname "$0")/lib.sh"
unset NOVA_PASSWORD NOVA_NEW_PASSWORD || true
export NOVA_PASSWORD=retention-secret NOVA_REPOSITORY="$tmp/repo"
"$NOVA" init --kdf-cost 10 >/dev/null || fail "init"
mkdir -p "$tmp/a" "$tmp/b"

backup() { # HOST DIR [TAG] -> prints the id
  local tag=()
  [ $# -ge 3 ] && tag=(--tag "$3")
  printf '%s\n' "$RANDOM$RANDOM" >>"$2/layer.json"
  "$NOVA" --json backup --host "$1" "${tag[@]}" "$2" 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["backup_id"])'
}
ids() { "$NOVA" --json list "$@" | python3 -c 'import json,sys; print(" ".join(b["backup_id"] for b in json.load(sys.stdin)))'; }
count() { "$NOVA" --json list "$@" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
no_locks() { [ -z "$(ls -A "$tmp/repo/locks" 2>/dev/null)" ] || fail "a lock was left behind"; }

A1=$(backup alpha "$tmp/a"); A2=$(backup alpha "$tmp/a"); A3=$(backup alpha "$tmp/a")
A4=$(backup alpha "$tmp/a")
B1=$(backup alpha "$tmp/b" set=b); B2=$(backup alpha "$tmp/b" set=b)
C1=$(backup beta "$tmp/a")
[ "$(count)" = 7 ] || fail "seven backups to start with"

# ---- delete ------------------------------------------------------------------------------
expect_exit 2 "$NOVA" delete
# every id is checked first: one typo and nothing goes
expect_exit 1 "$NOVA" delete "${A1:0:8}" 00000000
grep -q 'RECOVERY_001' "$tmp/err" || fail "unknown id named"
[ "$(count)" = 7 ] || fail "a failed delete deleted something"
expect_exit 0 "$NOVA" delete "${A1:0:8}"
grep -q "^deleted backup ${A1:0:12} " "$tmp/out" || fail "delete message"
grep -q "nova prune" "$tmp/out" || fail "delete points to prune"
[ "$(count)" = 6 ] || fail "six backups after delete"
expect_exit 1 "$NOVA" show "$A1"
expect_exit 1 "$NOVA" delete "$A1"
expect_exit 0 "$NOVA" --json delete "$A2"
json "assert d == {'deleted': ['$A2']}, d"
case " $(ids) " in *" $A2 "*) fail "deleted backup still listed";; esac
# the others are untouched and still readable (data stays until prune)
expect_exit 0 "$NOVA" ls "$A3" "$tmp/a/layer.json"
expect_exit 0 "$NOVA" diff "$A3" "$A4"
grep -q "^M  $tmp/a/layer.json$" "$tmp/out" || fail "kept backups still diff"
no_locks
ok

A5=$(backup alpha "$tmp/a"); A6=$(backup alpha "$tmp/a")
# alpha:/a holds A6 A5 A4 A3 (newest first), alpha:/b B2 B1, beta:/a C1

# ---- forget ------------------------------------------------------------------------------
expect_exit 2 "$NOVA" forget
grep -q 'no rule given' "$tmp/err" || fail "forget without a rule explained"
expect_exit 2 "$NOVA" forget --dry-run --host alpha
expect_exit 2 "$NOVA" forget --keep-last many
expect_exit 2 "$NOVA" forget --keep-within 3x
expect_exit 2 "$NOVA" forget --keep-last 1 extra
[ "$(count)" = 7 ] || fail "usage errors deleted something"

expect_exit 0 "$NOVA" forget --keep-last 2 --dry-run
grep -q "^  keep    ${A6:0:12} .* last$" "$tmp/out" || fail "dry run shows A6 kept for 'last'"
grep -q "^  remove  ${A3:0:12} " "$tmp/out" || fail "dry run shows A3 to remove"
grep -q '5 backups kept, 2 would be removed (dry run' "$tmp/out" || fail "dry run summary"
[ "$(count)" = 7 ] || fail "a dry run deleted something"
expect_exit 0 "$NOVA" --json forget --keep-last 2 --dry-run
json "assert d['dry_run'] and d['kept'] == 5 and d['removed'] == 2 and d['deleted'] == 0, d
groups = {(g['host'], tuple(g['paths'])): g['backups'] for g in d['groups']}
a = groups[('alpha', ('$tmp/a',))]
assert [b['backup_id'] for b in a] == ['$A6', '$A5', '$A4', '$A3'], a
assert [b['keep'] for b in a] == [True, True, False, False], a
assert a[0]['reasons'] == ['last'] and a[3]['reasons'] == [], a
assert [b['keep'] for b in groups[('alpha', ('$tmp/b',))]] == [True, True]
assert [b['keep'] for b in groups[('beta', ('$tmp/a',))]] == [True]
assert d['policy']['keep_last'] == 2"
# unlimited days on one day: the newest, and the oldest while count is left
expect_exit 0 "$NOVA" --json forget --keep-daily unlimited --dry-run
json "a = [g for g in d['groups'] if g['host'] == 'alpha' and g['paths'] == ['$tmp/a']][0]['backups']
assert [b['keep'] for b in a] == [True, False, False, True], a
assert a[0]['reasons'] == ['daily'] and a[3]['reasons'] == ['daily'], a"
# everything is recent
expect_exit 0 "$NOVA" --json forget --keep-within 1h --dry-run
json "assert d['removed'] == 0 and d['kept'] == 7, d"
ok

# filters: only matching backups are judged
expect_exit 0 "$NOVA" --json forget --keep-last 1 --host beta
json "assert d['kept'] == 1 and d['removed'] == 0, d"
expect_exit 0 "$NOVA" --json forget --keep-last 1 --tag set=b
json "assert d['removed'] == 1 and d['deleted'] == 1 and len(d['groups']) == 1, d"
[ "$(ids --tag set=b)" = "$B2" ] || fail "forget --tag kept the newest of b"
[ "$(count)" = 6 ] || fail "forget --tag touched other backups"
ok

# the real thing
expect_exit 0 "$NOVA" forget --keep-last 2
grep -q "^  removed ${A4:0:12} " "$tmp/out" || fail "forget reports removed backups"
grep -q '4 backups kept, 2 removed; run .nova prune' "$tmp/out" || fail "forget summary"
[ "$(ids --host alpha --path "$tmp/a")" = "$A6 $A5" ] || fail "the two newest of alpha:/a remain"
expect_exit 1 "$NOVA" show "$A3"
expect_exit 0 "$NOVA" ls "$A5" "$tmp/a"
no_locks
ok

# ---- cleanup -----------------------------------------------------------------------------
expect_exit 2 "$NOVA" cleanup --retention-days -1
expect_exit 2 "$NOVA" cleanup --retention-days soon
expect_exit 2 "$NOVA" cleanup now
# the default period (30 days, no config): everything is recent
expect_exit 0 "$NOVA" --json cleanup
json "assert d['retention_days'] == 30 and d['removed'] == 0 and d['kept'] == 4, d"
# the period from the config; a dry run first
printf '{"retention_days": 0}' >"$tmp/zero.json"
expect_exit 0 "$NOVA" --config "$tmp/zero.json" --json cleanup --dry-run
json "assert d['retention_days'] == 0 and d['removed'] == 1 and d['deleted'] == 0, d
a = [g for g in d['groups'] if g['host'] == 'alpha' and g['paths'] == ['$tmp/a']][0]['backups']
assert [(b['backup_id'], b['keep'], b['reasons']) for b in a] == [('$A6', True, ['newest']), ('$A5', False, [])], a"
[ "$(count)" = 4 ] || fail "cleanup --dry-run deleted something"
expect_exit 0 "$NOVA" --config "$tmp/zero.json" cleanup
grep -q '^retention: 0 days$' "$tmp/out" || fail "cleanup names the period"
grep -q "^  removed ${A5:0:12} " "$tmp/out" || fail "cleanup reports what it removed"
[ "$(count)" = 3 ] || fail "cleanup keeps the newest of each host and paths"
[ "$(ids)" = "$A6 $C1 $B2" ] || fail "the newest of each group remain"
# nothing more to do
expect_exit 0 "$NOVA" cleanup --retention-days 0
[ "$(count)" = 3 ] || fail "cleanup never deletes the newest of a group"
expect_exit 0 "$NOVA" ls latest
no_locks
ok

echo "$passed passed, 0 failed"
