#!/usr/bin/env bash
# test_keys_cli.sh -- `nova init` and `nova key` end to end: the location from --repo,
# $NOVA_REPOSITORY and the config; the passphrase from $NOVA_PASSWORD and --password-file;
# compression from the config (a bad value is CONFIG_001 naming the key, and nothing is
# created); an existing repository is refused by name; key slots are added, listed,
# changed and removed, each passphrase opens exactly while its slot exists, and the last
# slot cannot be removed.
set -euo pipefail
NOVA=${NOVA:?path to the nova binary}
tmp=$(mktemp -d "${NOVA_TEST_TMP:-/tmp}/e2e-keys.XXXXXX" 2>/dev/null || mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
. "$(dirname "$0")/lib.sh"
unset NOVA_REPOSITORY NOVA_PASSWORD NOVA_NEW_PASSWORD || true
fast=(--kdf-cost 10)

# ---- init ----------------------------------------------------------------------------
expect_exit 0 "$NOVA" init --help
grep -q 'usage: nova init' "$tmp/out" || fail "init --help"

# no passphrase and no terminal: exit 4, nothing created
expect_exit 4 "$NOVA" init --repo "$tmp/r0" "${fast[@]}" </dev/null
grep -q 'KEY_001' "$tmp/err" || fail "missing passphrase names KEY_001"
[ ! -e "$tmp/r0/config" ] || fail "init without a passphrase created a repository"
NOVA_PASSWORD= expect_exit 2 "$NOVA" init --repo "$tmp/r0" "${fast[@]}"
grep -q 'empty passphrase' "$tmp/err" || fail "empty passphrase refused"
# no location at all
NOVA_PASSWORD=x expect_exit 2 "$NOVA" init "${fast[@]}"
grep -q 'REPO_003' "$tmp/err" || fail "missing location names REPO_003"
ok

export NOVA_PASSWORD=first-secret
expect_exit 0 "$NOVA" init --repo "$tmp/r1" "${fast[@]}"
grep -q "created a repository at $tmp/r1" "$tmp/out" || fail "init message"
[ -f "$tmp/r1/config" ] && [ -d "$tmp/r1/keys" ] || fail "repository layout"
[ "$(ls "$tmp/r1/keys" | wc -l)" -eq 1 ] || fail "one key slot after init"
# an existing repository is never touched, and the error names it
before=$(cd "$tmp/r1" && find . -type f | sort | xargs sha256sum)
expect_exit 1 "$NOVA" init --repo "$tmp/r1" "${fast[@]}"
grep -q "already exists at '$tmp/r1'" "$tmp/err" || fail "existing repository named"
after=$(cd "$tmp/r1" && find . -type f | sort | xargs sha256sum)
[ "$before" = "$after" ] || fail "init over an existing repository changed it"
ok

# the location from $NOVA_REPOSITORY, then from the config; --json output
NOVA_REPOSITORY="$tmp/r2" expect_exit 0 "$NOVA" --json init "${fast[@]}"
json "assert d['repository'] == '$tmp/r2', d; assert d['compression'] == 'zstd:3', d"
[ -f "$tmp/r2/config" ] || fail "\$NOVA_REPOSITORY used"
printf '{"storage": {"local_path": "%s"}, "compression": "lz4"}' "$tmp/r3" >"$tmp/c3.json"
expect_exit 0 "$NOVA" --config "$tmp/c3.json" init --json "${fast[@]}"
json "assert d['repository'] == '$tmp/r3' and d['compression'] == 'lz4', d"
# --repo wins over the config
expect_exit 0 "$NOVA" --config "$tmp/c3.json" init --repo "$tmp/r4" "${fast[@]}"
[ -f "$tmp/r4/config" ] || fail "--repo wins over storage.local_path"
ok

# a bad compression in the config: CONFIG_001 naming the key, exit 7, nothing created
printf '{"compression": "zstd:99"}' >"$tmp/bad.json"
expect_exit 7 "$NOVA" --config "$tmp/bad.json" init --repo "$tmp/r5" "${fast[@]}"
grep -q "CONFIG_001.*'compression'" "$tmp/err" || fail "bad compression names the key"
[ ! -e "$tmp/r5" ] || fail "a bad config created something"
printf '{"compression": 3}' >"$tmp/bad2.json"
expect_exit 7 "$NOVA" --config "$tmp/bad2.json" init --repo "$tmp/r5" "${fast[@]}"
grep -q "CONFIG_001.*compression" "$tmp/err" || fail "mistyped compression names the key"
expect_exit 2 "$NOVA" init --repo "$tmp/r5" --compression brotli "${fast[@]}"
expect_exit 2 "$NOVA" init --repo "$tmp/r5" --kdf-cost 3
expect_exit 2 "$NOVA" init "$tmp/r5"
[ ! -e "$tmp/r5" ] || fail "a usage error created something"
ok

# the passphrase from a file; it opens the repository, a wrong one gives exit 4
printf 'file-secret\n' >"$tmp/pw"
env -u NOVA_PASSWORD "$NOVA" init --repo "$tmp/r6" --password-file "$tmp/pw" "${fast[@]}" >/dev/null \
  || fail "init --password-file"
NOVA_PASSWORD=file-secret expect_exit 0 "$NOVA" key list --repo "$tmp/r6"
NOVA_PASSWORD=nope expect_exit 4 "$NOVA" key list --repo "$tmp/r6"
grep -q 'KEY_001' "$tmp/err" || fail "wrong passphrase names KEY_001"
expect_exit 5 "$NOVA" key list --repo "$tmp/missing"
grep -q 'REPO_003' "$tmp/err" || fail "missing repository names REPO_003"
ok

# ---- key slots -------------------------------------------------------------------------
R=(--repo "$tmp/r1")
expect_exit 0 "$NOVA" --json key list "${R[@]}"
json "assert len(d) == 1 and d[0]['current'] and len(d[0]['id']) == 64, d"
first=$(python3 -c "import json; print(json.load(open('$tmp/out'))[0]['id'])")

NOVA_NEW_PASSWORD=second-secret expect_exit 0 "$NOVA" --json key add "${R[@]}"
second=$(python3 -c "import json; print(json.load(open('$tmp/out'))['slot_id'])")
[ ${#second} -eq 64 ] && [ "$second" != "$first" ] || fail "key add returns a new slot id"
printf 'third-secret\n' >"$tmp/third"
expect_exit 0 "$NOVA" key add "${R[@]}" --new-password-file "$tmp/third"
grep -q '^added key slot [0-9a-f]\{64\}$' "$tmp/out" || fail "key add message"
# no new passphrase and no terminal; an empty one; a file that is not there
expect_exit 4 "$NOVA" key add "${R[@]}" </dev/null
grep -q 'KEY_001: no new passphrase' "$tmp/err" || fail "key add without a new passphrase"
NOVA_NEW_PASSWORD= expect_exit 2 "$NOVA" key add "${R[@]}"
expect_exit 2 "$NOVA" key add "${R[@]}" --new-password-file "$tmp/nothing-here"
[ "$(ls "$tmp/r1/keys" | wc -l)" -eq 3 ] || fail "three key slots"
ok

# every passphrase opens, and each sees its own slot as current
for pw in first-secret second-secret third-secret; do
  NOVA_PASSWORD=$pw expect_exit 0 "$NOVA" --json key list "${R[@]}"
  json "assert len(d) == 3 and sum(k['current'] for k in d) == 1, d"
done
NOVA_PASSWORD=second-secret expect_exit 0 "$NOVA" --json key list "${R[@]}"
json "assert [k['id'] for k in d if k['current']] == ['$second'], d"
ok

# passwd: the old passphrase stops working, the new one works, the slot count stays
NOVA_PASSWORD=second-secret NOVA_NEW_PASSWORD=second-changed expect_exit 0 "$NOVA" key passwd "${R[@]}"
grep -q 'changed the passphrase' "$tmp/out" || fail "passwd message"
NOVA_PASSWORD=second-secret expect_exit 4 "$NOVA" key list "${R[@]}"
NOVA_PASSWORD=second-changed expect_exit 0 "$NOVA" --json key list "${R[@]}"
json "assert len(d) == 3 and '$second' not in [k['id'] for k in d], d"
ok

# remove by prefix: that passphrase stops working; the others still open
third=$(NOVA_PASSWORD=third-secret "$NOVA" --json key list "${R[@]}" |
        python3 -c 'import json,sys; print([k["id"] for k in json.load(sys.stdin) if k["current"]][0])')
expect_exit 0 "$NOVA" key remove "${third:0:10}" "${R[@]}"
grep -q "removed key slot $third" "$tmp/out" || fail "remove names the full slot id"
NOVA_PASSWORD=third-secret expect_exit 4 "$NOVA" key list "${R[@]}"
expect_exit 0 "$NOVA" key list "${R[@]}"
[ "$(wc -l <"$tmp/out")" -eq 2 ] || fail "two slots listed after remove"
expect_exit 1 "$NOVA" key remove "${third:0:10}" "${R[@]}"
grep -q "no key slot" "$tmp/err" || fail "removing a missing slot"
expect_exit 2 "$NOVA" key remove abc "${R[@]}"
expect_exit 2 "$NOVA" key remove "${R[@]}"
expect_exit 2 "$NOVA" key rotate "${R[@]}"
ok

# the last slot can never go: remove the other, then try the current one
other=$(NOVA_PASSWORD=first-secret "$NOVA" --json key list "${R[@]}" |
        python3 -c 'import json,sys; print([k["id"] for k in json.load(sys.stdin) if not k["current"]][0])')
expect_exit 0 "$NOVA" key remove "$other" "${R[@]}"
expect_exit 2 "$NOVA" key remove "$first" "${R[@]}"
grep -q 'last usable key slot' "$tmp/err" || fail "last slot refusal explained"
expect_exit 0 "$NOVA" key list "${R[@]}"
grep -q "^$first  (current)$" "$tmp/out" || fail "the last slot is still there"
ok

# on a terminal a new passphrase is asked twice (script(1) provides the terminal)
if command -v script >/dev/null 2>&1; then
  printf 'typed-secret\ntyped-secret\n' |
    env -u NOVA_PASSWORD script -qec "'$NOVA' init --repo '$tmp/tty' --kdf-cost 10" /dev/null \
    >"$tmp/out" 2>&1 || { cat "$tmp/out"; fail "init with a terminal prompt"; }
  grep -q 'passphrase for the new repository again' "$tmp/out" || fail "init asks twice"
  NOVA_PASSWORD=typed-secret expect_exit 0 "$NOVA" key list --repo "$tmp/tty"
  set +e
  printf 'one\ntwo\n' |
    env -u NOVA_PASSWORD script -qec "'$NOVA' init --repo '$tmp/tty2' --kdf-cost 10" /dev/null \
    >"$tmp/out" 2>&1
  set -e
  grep -q 'the two passphrases differ' "$tmp/out" || fail "different passphrases refused"
  [ ! -e "$tmp/tty2" ] || fail "init with different passphrases created something"
  printf 'added-by-tty\nadded-by-tty\n' |
    env -u NOVA_NEW_PASSWORD NOVA_PASSWORD=typed-secret script -qec "'$NOVA' key add --repo '$tmp/tty'" /dev/null \
    >"$tmp/out" 2>&1 || { cat "$tmp/out"; fail "key add with a terminal prompt"; }
  NOVA_PASSWORD=added-by-tty expect_exit 0 "$NOVA" key list --repo "$tmp/tty"
  ok
fi

echo "$passed passed, 0 failed"
