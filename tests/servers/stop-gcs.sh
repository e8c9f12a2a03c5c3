#!/usr/bin/env bash
# stop-gcs.sh -- stops the GCS test servers that start-gcs.sh started.
#
#   tests/servers/stop-gcs.sh [--emulator-only] [--keep-data]
#
# Reads NOVA_TEST_GCS_PID, NOVA_TEST_GCS_TOKEN_PID and NOVA_TEST_GCS_DIR (as printed by
# start-gcs.sh). Stops each process by its PID (SIGTERM, then SIGKILL after 5 s) and
# removes the data directory unless --keep-data (or --emulator-only, which stops only the
# emulator and keeps its data, so that start-gcs.sh --dir --port can bring it back).
set -uo pipefail
only_emulator=0 keep=0
for arg in "$@"; do
  case "$arg" in
    --emulator-only) only_emulator=1; keep=1 ;;
    --keep-data) keep=1 ;;
    *) echo "stop-gcs.sh: unknown argument $arg" >&2; exit 64 ;;
  esac
done

stop_pid() {
  local pid="$1"
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
}

stop_pid "${NOVA_TEST_GCS_PID:-}"
[ "$only_emulator" = 1 ] || stop_pid "${NOVA_TEST_GCS_TOKEN_PID:-}"
if [ "$keep" = 0 ] && [ -n "${NOVA_TEST_GCS_DIR:-}" ] && [ -d "$NOVA_TEST_GCS_DIR/state" ]; then
  rm -rf "$NOVA_TEST_GCS_DIR"
fi
exit 0
