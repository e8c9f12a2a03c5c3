#!/usr/bin/env bash
# quickstart.sh -- the README's first command: install what is missing, build Nova, and run
# its main job on the embedded default (a local repository and sample memory layers under
# ./nova-data): full, incremental and differential backups, a layer deleted and restored,
# and a check of the repository. See scripts/main-job.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j"$(nproc)"
exec ./scripts/main-job.sh ./build/release/nova
