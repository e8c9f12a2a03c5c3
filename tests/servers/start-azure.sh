#!/usr/bin/env bash
# start-azure.sh -- starts azurite's Blob service (Microsoft's storage emulator, pinned in
# package.json) on 127.0.0.1 on a free port, waits until it answers, and prints the
# variables the Azure tests read, as shell `export` lines:
#   eval "$(tests/servers/start-azure.sh [DIR])"   ...   tests/servers/stop-azure.sh
# DIR (default: a new temporary directory) holds the emulator's data and its log
# (azurite.log; with NOVA_TEST_AZURE_DEBUG=1 also the debug log azurite-debug.log, which
# shows the string-to-sign the server expected). Only stdout carries the exports.
# Exit 2 when the servers are not installed (tests/servers/install.sh installs them).
# The account is the emulator's published development account (devstoreaccount1 and its
# well-known key): nothing here is a secret.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin="$here/node_modules/.bin/azurite-blob"
if [ ! -x "$bin" ] || ! command -v node >/dev/null; then
  echo "start-azure.sh: azurite is not installed (run tests/servers/install.sh)" >&2
  exit 2
fi
dir=${1:-$(mktemp -d "${TMPDIR:-/tmp}/nova-azurite.XXXXXX")}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd -P)

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

port=${NOVA_TEST_AZURE_PORT:-$(free_port)}
debug=()
if [ "${NOVA_TEST_AZURE_DEBUG:-0}" = 1 ]; then debug=(--debug "$dir/azurite-debug.log"); fi
# setsid: the server gets its own process group, so a test's Ctrl-C or kill of the
# caller's group does not race with stop-azure.sh.
setsid node "$bin" --blobHost 127.0.0.1 --blobPort "$port" --location "$dir" \
  --disableTelemetry --silent "${debug[@]}" >"$dir/azurite.log" 2>&1 </dev/null &
pid=$!
endpoint="http://127.0.0.1:$port/devstoreaccount1"

# Any HTTP answer means it listens (an unauthenticated request gets 400/403).
for _ in $(seq 1 150); do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "start-azure.sh: azurite exited during start-up; its log:" >&2
    cat "$dir/azurite.log" >&2
    exit 1
  fi
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$endpoint?comp=list" || true)
  if [ -n "$code" ] && [ "$code" != 000 ]; then
    key='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
    echo "export NOVA_TEST_AZURE_PID=$pid"
    echo "export NOVA_TEST_AZURE_PORT=$port"
    echo "export NOVA_TEST_AZURE_DIR='$dir'"
    echo "export NOVA_TEST_AZURE_ENDPOINT='$endpoint'"
    echo "export NOVA_TEST_AZURE_ACCOUNT=devstoreaccount1"
    echo "export NOVA_TEST_AZURE_KEY='$key'"
    echo "export NOVA_TEST_AZURE_CONNECTION_STRING='DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$key;BlobEndpoint=$endpoint;'"
    exit 0
  fi
  sleep 0.2
done
echo "start-azure.sh: azurite did not answer on 127.0.0.1:$port within 30 s" >&2
kill "$pid" 2>/dev/null || true
exit 1
