#!/usr/bin/env bash
# quickstart.sh -- the README's first command: install what is missing, build Nova, and run
# its main job on the embedded default (a local repository under ./nova-data).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j"$(nproc)"
exec ./build/release/nova selftest --repo "${NOVA_REPOSITORY:-./nova-data/selftest-repo}" "$@"
