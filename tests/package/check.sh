#!/bin/bash
# Installs the build tree into a fresh prefix and builds an outside project
# against it (find_package(sluice), every header alone, the examples); then
# runs the installed `sluice --version` and an example's usage line, to show
# that the installed binaries find their libraries.
# Usage: check.sh BUILD_DIR WORK_DIR
set -euo pipefail
build=$1 work=$2
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work"
cmake --install "$build" --prefix "$work/prefix" > "$work.install.log" 2>&1 ||
  { cat "$work.install.log"; exit 1; }
test -f "$work/prefix/lib/cmake/sluice/sluiceConfig.cmake" ||
  { echo "FAIL: no package config installed"; exit 1; }
if find "$work/prefix/include" -name '*.hpp' -print0 | xargs -0 grep -l 'librdkafka/' ; then
  echo "FAIL: an installed header includes librdkafka"; exit 1
fi
cmake -S "$here" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_BUILD_TYPE=Release > "$work.configure.log" 2>&1 ||
  { cat "$work.configure.log"; exit 1; }
cmake --build "$work/build" -j 2 > "$work.build.log" 2>&1 ||
  { tail -50 "$work.build.log"; exit 1; }
echo "PASS the outside project builds: $(grep -c 'alone' "$work.build.log") header checks, examples"
version=$("$work/prefix/bin/sluice" --version)
[[ $version == "sluice "* ]] || { echo "FAIL: installed sluice --version: $version"; exit 1; }
echo "PASS installed $version runs"
set +e
"$work/build/examples/big_orders" > /dev/null 2> "$work.usage"
rc=$?
set -e
[[ $rc == 2 ]] && grep -q "usage: big_orders" "$work.usage" ||
  { echo "FAIL: the example built against the package does not run (exit $rc)"; cat "$work.usage"; exit 1; }
echo "PASS the example built against the installed package runs"
