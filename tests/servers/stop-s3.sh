#!/usr/bin/env bash
# stop-s3.sh -- stops an s3rver started by start-s3.sh.
# Usage: tests/servers/stop-s3.sh [PID] [--clean]
#   PID      default $NOVA_TEST_S3_PID
#   --clean  also removes $NOVA_TEST_S3_DIR and its log
set -uo pipefail
pid="" clean=0
for a in "$@"; do
  case "$a" in
    --clean) clean=1 ;;
    *) pid="$a" ;;
  esac
done
pid="${pid:-${NOVA_TEST_S3_PID:-}}"
if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
  kill "$pid" 2>/dev/null
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
fi
if [ "$clean" = 1 ] && [ -n "${NOVA_TEST_S3_DIR:-}" ] && [ -d "$NOVA_TEST_S3_DIR" ]; then
  rm -rf "$NOVA_TEST_S3_DIR" "$NOVA_TEST_S3_DIR.log"
fi
exit 0
