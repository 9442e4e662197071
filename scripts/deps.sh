#!/usr/bin/env bash
# Installs the Debian 12 packages Sluice builds and tests with, if any is missing.
# Idempotent and quiet when everything is already there.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libcaf-dev                                  # actors (CAF 0.17.6)
  librdkafka-dev                              # Kafka client and the embedded mock broker
  libboost-json1.81-dev libboost-test1.81-dev # JSON and Boost.Test; never the 1.74 dev packages
  libspdlog-dev                               # logs (with external fmt 9)
  libcli11-dev                                # command line of the sluice binary
  librocksdb-dev                              # dedup state (RocksDB 7.8)
  kcat python3-confluent-kafka                # independent clients used by end-to-end tests
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
