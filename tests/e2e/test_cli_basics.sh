#!/usr/bin/env bash
# test_cli_basics.sh -- the nova command end to end: help, version, exit codes, the
# selftest main job (twice on one repository: the second run deduplicates), a wrong
# passphrase, a malformed config, and --json output that parses.
set -euo pipefail
NOVA=${NOVA:?path to the nova binary}
tmp=$(mktemp -d "${NOVA_TEST_TMP:-/tmp}/e2e-cli.XXXXXX" 2>/dev/null || mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/lib.sh"

expect_exit 0 "$NOVA" --version
grep -q '^nova [0-9]' "$tmp/out" || fail "--version output"
expect_exit 0 "$NOVA" --help
grep -q 'selftest' "$tmp/out" || fail "--help lists commands"
grep -q 'Exit codes' "$tmp/out" || fail "--help documents exit codes"
expect_exit 0 "$NOVA" selftest --help
grep -q 'usage: nova selftest' "$tmp/out" || fail "selftest --help"
expect_exit 2 "$NOVA"
expect_exit 2 "$NOVA" frobnicate
grep -q "unknown command 'frobnicate'" "$tmp/err" || fail "unknown command message"
expect_exit 2 "$NOVA" --bogus
expect_exit 2 "$NOVA" selftest --repo

export NOVA_PASSWORD=e2e-secret
expect_exit 0 "$NOVA" selftest --repo "$tmp/repo"
grep -q 'created a repository' "$tmp/out" || fail "first selftest creates the repository"
grep -q 'selftest passed' "$tmp/out" || fail "selftest passed line"
expect_exit 0 "$NOVA" --json selftest --repo "$tmp/repo"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["status"]=="passed", d; assert all(c["ok"] for c in d["checks"]); assert len(d["snapshot_id"])==64' "$tmp/out" \
  || fail "--json output"
grep -q 'opened the existing repository' "$tmp/out" || fail "second run opens the repository"
grep -Eq '[1-9][0-9]* deduplicated' "$tmp/out" || fail "second run deduplicates"

# a wrong passphrase: one clear line with its code, exit 4
NOVA_PASSWORD=wrong expect_exit 4 "$NOVA" selftest --repo "$tmp/repo"
grep -q 'KEY_001' "$tmp/out" "$tmp/err" || fail "wrong passphrase names KEY_001"

# the passphrase from a file
printf 'e2e-secret\n' >"$tmp/pass"
env -u NOVA_PASSWORD "$NOVA" selftest --repo "$tmp/repo" --password-file "$tmp/pass" >/dev/null \
  || fail "--password-file"

# malformed and mistyped configs: CONFIG_001 naming the key, exit 7
printf '{"retention_days": "thirty"}' >"$tmp/bad.json"
expect_exit 7 "$NOVA" --config "$tmp/bad.json" selftest --repo "$tmp/repo"
grep -q "CONFIG_001.*retention_days" "$tmp/err" || fail "config error names the key"
printf '{"storage": {"local_path": ' >"$tmp/trunc.json"
expect_exit 7 "$NOVA" --config "$tmp/trunc.json" selftest
grep -q "CONFIG_001" "$tmp/err" || fail "truncated config gives CONFIG_001"
expect_exit 7 "$NOVA" --config "$tmp/missing.json" selftest
# the config's storage.local_path is the repository location
printf '{"storage": {"local_path": "%s"}}' "$tmp/repo2" >"$tmp/good.json"
expect_exit 0 "$NOVA" --config "$tmp/good.json" selftest
[ -f "$tmp/repo2/config" ] || fail "storage.local_path used as the repository"

# a damaged repository config is reported, never accepted
printf 'garbage' >"$tmp/repo2/config.new" && mv "$tmp/repo2/config.new" "$tmp/repo2/config"
expect_exit 6 "$NOVA" selftest --repo "$tmp/repo2"
grep -q 'INTEGRITY_002' "$tmp/out" "$tmp/err" || fail "damaged config gives INTEGRITY_002"
echo "1 passed, 0 failed"
