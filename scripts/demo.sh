#!/usr/bin/env bash
# Installs what is missing, builds, and runs the demo: an embedded broker,
# a few hundred thousand order events (some malformed), the priority-routing
# pipeline with a dead-letter queue, and a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target sluice
exec build/apps/sluice --log-level warn demo "$@"
