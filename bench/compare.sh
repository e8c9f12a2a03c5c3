#!/usr/bin/env bash
# compare.sh -- Nova, restic and BorgBackup on the same data in one run, then the ratios.
#
#   bench/compare.sh [WORKLOADS]      default "w1 w2 w3"
#
# Uses the peer harness of the steering repository (../shared/bench, or $NOVA_BENCH_HARNESS):
# it builds the workloads (make_datasets.sh, which also installs restic and borg with
# apt-get), runs every tool on every workload twice with fresh repositories (the second,
# warm-cache run is the one reported) and records time, peak memory and sizes. This script
# builds Nova in Release mode, points the harness at it, and prints bench/ratios.py's table.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
HARNESS=${NOVA_BENCH_HARNESS:-$TOP/../shared/bench}
[ -x "$HARNESS/run_all.sh" ] || { echo "compare.sh: no peer harness at $HARNESS (set NOVA_BENCH_HARNESS)" >&2; exit 2; }
export BENCH_DATA=${BENCH_DATA:-/var/tmp/nova-bench}
export WORKLOADS=${1:-${WORKLOADS:-"w1 w2 w3"}}
export RESULTS=${RESULTS:-$BENCH_DATA/results-$(date -u +%Y%m%dT%H%M%SZ)}
cmake -S "$TOP" -B "$TOP/build/release" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$TOP/build/release" -j"$(nproc)" --target nova >/dev/null
export NOVA=$TOP/build/release/nova
"$HARNESS/make_datasets.sh"
"$HARNESS/run_all.sh"
python3 "$HERE/ratios.py" "$RESULTS" | tee "$RESULTS/ratios.md"
echo "results: $RESULTS (summary.md, ratios.md, peers.tsv)"
