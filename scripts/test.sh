#!/usr/bin/env bash
# Installs what is missing, builds into build/, and runs every test with CTest.
#   scripts/test.sh               unit, integration and end-to-end tests
#   scripts/test.sh --sanitize    also an ASan+UBSan build (build-asan/) running
#                                 the unit and integration tests (CI does this)
set -euo pipefail
cd "$(dirname "$0")/.."

sanitize=0
for arg in "$@"; do
  case "$arg" in
    --sanitize) sanitize=1 ;;
    *) echo "usage: scripts/test.sh [--sanitize]" >&2; exit 2 ;;
  esac
done

scripts/deps.sh
jobs=$(nproc)

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$jobs"
# Every test starts its own embedded broker on random ports and keeps its files
# in a directory of its own: safe in parallel.
ctest --test-dir build --output-on-failure -j "$jobs"

if [ "$sanitize" = 1 ]; then
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSLUICE_SANITIZE=ON >/dev/null
  cmake --build build-asan -j "$jobs" --target unit_tests integration_tests
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp"
  export SLUICE_TEST_TIMEOUT_MULTIPLIER=4
  ctest --test-dir build-asan --output-on-failure -j "$jobs" -L 'unit|integration'
fi
