#!/usr/bin/env bash
# test_example.sh -- examples/backup_example.c (public API only) creates a repository,
# backs up twice (the second run is incremental and reads nothing), and the nova command
# sees the same backups.
set -euo pipefail
NOVA=${NOVA:?path to the nova binary}
example=$(dirname "$NOVA")/backup_example
tmp=$(mktemp -d "${NOVA_TEST_TMP:-/tmp}/e2e-example.XXXXXX" 2>/dev/null || mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export NOVA_PASSWORD=example-secret
mkdir -p "$tmp/src"
seq 1 5000 >"$tmp/src/a.json"
"$example" "$tmp/repo" "$tmp/src" >"$tmp/out1"
"$example" "$tmp/repo" "$tmp/src" >"$tmp/out2"
[ "$("$NOVA" --repo "$tmp/repo" --json list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 2 ] \
  || { cat "$tmp/out1" "$tmp/out2"; echo "FAIL: two backups expected"; exit 1; }
"$NOVA" --repo "$tmp/repo" --json show latest | python3 -c '
import json, sys
b = json.load(sys.stdin)
assert b["strategy"] == "INCREMENTAL" and b["files_unchanged"] == 1 and b["bytes_read"] == 0, b'
echo "1 passed, 0 failed"
