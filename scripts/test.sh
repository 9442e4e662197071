#!/usr/bin/env bash
# Installs what is missing, builds into build/, and runs every test with CTest.
#   scripts/test.sh                  unit, integration and end-to-end tests on the embedded
#                                    broker, then the real-Kafka tier (label kafka)
#   scripts/test.sh --embedded-only  skips the real-Kafka tier, on purpose, and says so
#   scripts/test.sh --sanitize       also an ASan+UBSan build (build-asan/) running the unit,
#                                    actor and integration tests (CI does this)
set -euo pipefail
cd "$(dirname "$0")/.."

sanitize=0
real_kafka=1
for arg in "$@"; do
  case "$arg" in
    --sanitize) sanitize=1 ;;
    --embedded-only) real_kafka=0 ;;
    *) echo "usage: scripts/test.sh [--embedded-only] [--sanitize]" >&2; exit 2 ;;
  esac
done

scripts/deps.sh
jobs=$(nproc)
started=$(date +%s)
elapsed() { echo "$(( $(date +%s) - started )) s"; }

if [ "$real_kafka" = 1 ]; then
  # Before the build: a registry that cannot be reached fails the run here, with the
  # reason, instead of after every other test (no silent skip).
  if ! scripts/kafka.sh fetch; then
    echo "test: the real Kafka broker could not be assembled (above); the kafka tier" \
         "cannot run. scripts/test.sh --embedded-only skips it on purpose." >&2
    exit 1
  fi
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$jobs"
# Every embedded-broker test starts its own broker on random ports and keeps its files
# in a directory of its own: safe in parallel.
ctest --test-dir build --output-on-failure --no-tests=error -j "$jobs" -LE kafka
echo "test: embedded-broker tests passed ($(elapsed))"

if [ "$real_kafka" = 1 ]; then
  # Each test starts its own cluster (1 or 3 JVMs) on free ports: two at a time fit.
  ctest --test-dir build --output-on-failure --no-tests=error -j "$jobs" -L kafka
  echo "test: real-Kafka tier passed ($(elapsed))"
else
  echo "test: the real-Kafka tier (label kafka) was skipped on purpose (--embedded-only)"
fi

if [ "$sanitize" = 1 ]; then
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSLUICE_SANITIZE=ON >/dev/null
  targets=(unit_tests actor_tests integration_tests)
  [ "$real_kafka" = 1 ] && targets+=(sluice)
  cmake --build build-asan -j "$jobs" --target "${targets[@]}"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$PWD/scripts/ubsan.supp"
  export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp"
  export SLUICE_TEST_TIMEOUT_MULTIPLIER=4
  ctest --test-dir build-asan --output-on-failure --no-tests=error -j "$jobs" \
    -L 'unit|actor|integration'
  if [ "$real_kafka" = 1 ]; then
    # The sanitized binary where real Kafka reaches paths the embedded broker cannot:
    # replicas and leaders killed, a whole cluster gone, real group coordination.
    ctest --test-dir build-asan --output-on-failure --no-tests=error -j "$jobs" -L kafka \
      -R '^kafka\.(routing|group|broker_faults)$'
  fi
  echo "test: sanitizer build passed ($(elapsed))"
fi
