#!/usr/bin/env bash
# start-s3.sh -- starts the S3 protocol server (s3rver, SigV4-checking) on 127.0.0.1 for the
# tests, waits until it answers, and prints the variables the tests read:
#   export NOVA_TEST_S3_ENDPOINT=http://127.0.0.1:PORT   NOVA_TEST_S3_BUCKET=nova-test
#   export NOVA_TEST_S3_ACCESS_KEY=S3RVER NOVA_TEST_S3_SECRET_KEY=S3RVER
#   export NOVA_TEST_S3_PID=PID NOVA_TEST_S3_PORT=PORT NOVA_TEST_S3_DIR=DIR
# Usage: eval "$(tests/servers/start-s3.sh [--dir DIR] [--port PORT] [--bucket NAME]...)"
#   --dir DIR     keep the objects there (default: a new temporary directory); reuse it
#                 with the same --port to restart a server on the same data
#   --port PORT   listen there (default: a free port)
#   --bucket NAME buckets created at start-up (repeatable; default nova-test)
# Also answers virtual-hosted requests: http://BUCKET.s3.localhost:PORT/ (curl resolves
# *.localhost to the loopback address). Stop it with stop-s3.sh. The server log goes to
# DIR.log. Exits 2 when the server is not installed (tests/servers/install.sh installs it).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="" port="" buckets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --bucket) buckets+=("$2"); shift 2 ;;
    *) echo "start-s3.sh: unknown argument '$1'" >&2; exit 1 ;;
  esac
done
[ ${#buckets[@]} -gt 0 ] || buckets=(nova-test)
if [ ! -f "$here/node_modules/@20minutes/s3rver/package.json" ] || ! command -v node >/dev/null; then
  echo "start-s3.sh: s3rver is not installed (run tests/servers/install.sh)" >&2
  exit 2
fi
[ -n "$dir" ] || dir="$(mktemp -d "${TMPDIR:-/tmp}/nova-s3rver.XXXXXX")"
mkdir -p "$dir"
if [ -z "$port" ]; then
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
          node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
fi
args=(-d "$dir" -a 127.0.0.1 -p "$port" -s --service-endpoint localhost)
for b in "${buckets[@]}"; do args+=(--configure-bucket "$b"); done
NODE_OPTIONS=--openssl-legacy-provider nohup node "$here/s3rver.js" "${args[@]}" \
  >"$dir.log" 2>&1 </dev/null &
pid=$!
for _ in $(seq 1 100); do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "start-s3.sh: s3rver exited; its log:" >&2
    cat "$dir.log" >&2
    exit 1
  fi
  if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/"; then
    echo "export NOVA_TEST_S3_ENDPOINT=http://127.0.0.1:$port"
    echo "export NOVA_TEST_S3_BUCKET=${buckets[0]}"
    echo "export NOVA_TEST_S3_ACCESS_KEY=S3RVER"
    echo "export NOVA_TEST_S3_SECRET_KEY=S3RVER"
    echo "export NOVA_TEST_S3_PID=$pid"
    echo "export NOVA_TEST_S3_PORT=$port"
    echo "export NOVA_TEST_S3_DIR=$dir"
    exit 0
  fi
  sleep 0.1
done
echo "start-s3.sh: s3rver did not answer on 127.0.0.1:$port within 10 s" >&2
kill "$pid" 2>/dev/null || true
exit 1
