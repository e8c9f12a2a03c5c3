#!/usr/bin/env bash
# start-gcs.sh -- starts the GCS test servers on 127.0.0.1 and prints `export VAR=...` lines.
#
#   eval "$(tests/servers/start-gcs.sh [--dir DIR] [--port PORT] [--parent-pid PID]
#                                      [--token-expires-in SECONDS] [--no-token-server])"
#
# Starts (1) the Cloud Storage emulator of firebase-tools (JSON API, no authentication),
# through gcs-emulator.js, whose objects survive a restart on the same --dir, and (2) unless
# --no-token-server, token_server.py: an OAuth2 token endpoint that accepts JWTs signed with
# the throwaway test key (gcs-throwaway-key.json). Both bind 127.0.0.1 only, on free ports
# (or the emulator on --port, to restart it where it was). Prints:
#   STORAGE_EMULATOR_HOST      http://127.0.0.1:PORT (what Google's libraries and Nova read)
#   NOVA_TEST_GCS_ENDPOINT     the same
#   NOVA_TEST_GCS_PORT, NOVA_TEST_GCS_PID, NOVA_TEST_GCS_DIR
#   NOVA_TEST_GCS_TOKEN_URI, NOVA_TEST_GCS_TOKEN_PID (tokens live --token-expires-in, 300 s)
#   NOVA_TEST_GCS_CREDENTIALS  a service-account key file for the token endpoint
# Stop them with tests/servers/stop-gcs.sh (reads the same variables).
# Exit status 2 (and a message on stderr) when the servers are not installed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="" port=0 parent=0 token=1 expires=300
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --parent-pid) parent="$2"; shift 2 ;;
    --token-expires-in) expires="$2"; shift 2 ;;
    --no-token-server) token=0; shift ;;
    *) echo "start-gcs.sh: unknown argument $1" >&2; exit 64 ;;
  esac
done
if [ ! -f "$here/node_modules/firebase-tools/package.json" ]; then
  echo "start-gcs.sh: firebase-tools is not installed (run tests/servers/install.sh)" >&2
  exit 2
fi
command -v node >/dev/null || { echo "start-gcs.sh: node is missing" >&2; exit 2; }
[ -n "$dir" ] || dir="$(mktemp -d "${TMPDIR:-/tmp}/nova-gcs.XXXXXX")"
mkdir -p "$dir"

wait_for_file() { # FILE PID NAME
  for _ in $(seq 1 200); do
    [ -s "$1" ] && return 0
    kill -0 "$2" 2>/dev/null || { echo "start-gcs.sh: $3 exited early; see $dir" >&2; exit 1; }
    sleep 0.05
  done
  echo "start-gcs.sh: $3 did not start within 10 s; see $dir" >&2
  exit 1
}

rm -f "$dir/emulator.port"
node "$here/gcs-emulator.js" --dir "$dir" --port "$port" --port-file "$dir/emulator.port" \
  --parent-pid "$parent" >>"$dir/emulator.log" 2>&1 </dev/null &
emulator_pid=$!
wait_for_file "$dir/emulator.port" "$emulator_pid" "the gcs emulator"
port="$(cat "$dir/emulator.port")"
for _ in $(seq 1 100); do
  curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/" && break
  sleep 0.05
done

echo "export STORAGE_EMULATOR_HOST=http://127.0.0.1:$port"
echo "export NOVA_TEST_GCS_ENDPOINT=http://127.0.0.1:$port"
echo "export NOVA_TEST_GCS_PORT=$port"
echo "export NOVA_TEST_GCS_PID=$emulator_pid"
echo "export NOVA_TEST_GCS_DIR=$dir"

if [ "$token" = 1 ]; then
  rm -f "$dir/token.port"
  python3 "$here/token_server.py" --key-file "$here/gcs-throwaway-key.json" \
    --port-file "$dir/token.port" --expires-in "$expires" --parent-pid "$parent" \
    >>"$dir/token.log" 2>&1 </dev/null &
  token_pid=$!
  wait_for_file "$dir/token.port" "$token_pid" "the token endpoint"
  token_uri="http://127.0.0.1:$(cat "$dir/token.port")/token"
  python3 - "$here/gcs-throwaway-key.json" "$token_uri" "$dir/service-account.json" <<'EOF'
import json, sys
with open(sys.argv[1], encoding="utf-8") as f:
    key = json.load(f)
key["token_uri"] = sys.argv[2]
with open(sys.argv[3], "w", encoding="utf-8") as f:
    json.dump(key, f, indent=2)
EOF
  chmod 600 "$dir/service-account.json"
  echo "export NOVA_TEST_GCS_TOKEN_URI=$token_uri"
  echo "export NOVA_TEST_GCS_TOKEN_PID=$token_pid"
  echo "export NOVA_TEST_GCS_CREDENTIALS=$dir/service-account.json"
fi
