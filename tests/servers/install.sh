#!/usr/bin/env bash
# install.sh -- installs the pinned protocol servers for the cloud backend tests into
# tests/servers/node_modules (npm). Idempotent: does nothing when they are present.
set -euo pipefail
cd "$(dirname "$0")"
want="@20minutes/s3rver azurite firebase-tools"
missing=0
for p in $want; do [ -f "node_modules/$p/package.json" ] || missing=1; done
if [ "$missing" = 0 ]; then
  echo "test servers: present"
  exit 0
fi
command -v npm >/dev/null || { echo "install.sh: npm is missing (scripts/install-deps.sh installs it)" >&2; exit 1; }
echo "test servers: installing $want (npm, a few minutes the first time)"
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi
