#!/usr/bin/env bash
# test.sh -- the README's second command: install what is missing, build with -Werror under
# AddressSanitizer + UndefinedBehaviorSanitizer (LeakSanitizer included), run every test,
# then build the optimised configuration with -Werror too.
#   NOVA_TEST_LONG=1   also run the long torture modes of the tests that have them
#   NOVA_TEST_JOBS=N   parallel test jobs (default: number of cores)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh

jobs=${NOVA_TEST_JOBS:-$(nproc)}
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=report_objects=1

echo "== cloud protocol servers for the backend tests (npm, pinned in tests/servers)"
./tests/servers/install.sh

echo "== sanitizer build (ASan + UBSan + LSan, -Werror)"
cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DNOVA_SANITIZE=ON >/dev/null
cmake --build build/asan -j"$jobs"
echo "== tests under the sanitizers"
ctest --test-dir build/asan --output-on-failure -j"$jobs" --timeout 900

echo "== static analysis (cppcheck)"
cppcheck --quiet --enable=warning,performance,portability --error-exitcode=1 --inline-suppr \
  --std=c11 -I include -I src src tests/support

echo "== optimised build (-O2, -Werror)"
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j"$jobs"
./build/release/nova --version
echo "test.sh: all passed"
