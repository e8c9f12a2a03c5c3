#!/usr/bin/env bash
# test_main_job.sh -- the README's main job (scripts/main-job.sh) runs end to end twice on
# fresh and then existing data, with the binary under test.
set -euo pipefail
NOVA=${NOVA:?path to the nova binary}
SRC=${NOVA_TEST_SOURCE_DIR:?}
tmp=$(mktemp -d "${NOVA_TEST_TMP:-/tmp}/e2e-main.XXXXXX" 2>/dev/null || mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset NOVA_PASSWORD NOVA_REPOSITORY
NOVA_DATA=$tmp/data bash "$SRC/scripts/main-job.sh" "$NOVA" >"$tmp/out1" 2>&1 || { cat "$tmp/out1"; exit 1; }
grep -q 'semantic.json restored, byte-identical' "$tmp/out1"
grep -q 'no errors found' "$tmp/out1"
grep -q '(INCREMENTAL, completed)' "$tmp/out1"
grep -q '(DIFFERENTIAL, completed)' "$tmp/out1"
[ "$(stat -c %a "$tmp/data/passphrase")" = 600 ]
NOVA_DATA=$tmp/data bash "$SRC/scripts/main-job.sh" "$NOVA" >"$tmp/out2" 2>&1 || { cat "$tmp/out2"; exit 1; }
grep -q 'using the existing repository' "$tmp/out2"
grep -q '6 backups' "$tmp/out2"
echo "1 passed, 0 failed"
