#!/usr/bin/env bash
# stop-azure.sh -- stops the azurite started by start-azure.sh: the process whose id is
# $NOVA_TEST_AZURE_PID (or the first argument), waiting up to 10 s before SIGKILL.
# With --purge also removes $NOVA_TEST_AZURE_DIR (its data and log). Stopping a server
# that is already gone is not an error.
set -uo pipefail
purge=0
pid=${NOVA_TEST_AZURE_PID:-}
for arg in "$@"; do
  case $arg in
    --purge) purge=1 ;;
    *) pid=$arg ;;
  esac
done
if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
  kill "$pid" 2>/dev/null
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  kill -9 "$pid" 2>/dev/null || true
fi
if [ "$purge" = 1 ] && [ -n "${NOVA_TEST_AZURE_DIR:-}" ] && [ -d "$NOVA_TEST_AZURE_DIR" ]; then
  rm -rf "$NOVA_TEST_AZURE_DIR"
fi
exit 0
