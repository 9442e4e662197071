#!/usr/bin/env bash
# A real Apache Kafka cluster (KRaft, loopback) for the real-Kafka test tier and bench.
#   scripts/kafka.sh fetch                  install Java and Maven if missing, assemble Kafka
#                                           (4.x, and 3.9.x for SCRAM) into the cache, and a
#                                           Python environment with a current confluent-kafka
#   scripts/kafka.sh start [--nodes 1|3] [--version V] [--dir D]
#                                           start a cluster in the background (default dir
#                                           /tmp/sluice-kafka-$UID); prints bootstrap.servers=...
#   scripts/kafka.sh stop [--dir D]         stop it: no process is left behind
#   scripts/kafka.sh status [--dir D]       print its bootstrap servers if it runs
#   scripts/kafka.sh python ARGS...         run the tier's Python (tests/kafka/*.py)
# The cache is $SLUICE_KAFKA_CACHE (default ~/.cache/sluice-kafka), outside the checkout.
# Nothing in sluice itself needs Java: only these tests and bench do.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${SLUICE_KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice-kafka}"
venv="$cache/venv"
# A client of our own choosing for the tests: admin (ACLs, configs, partitions),
# transactions, and a librdkafka other than the 2.0.2 that sluice links.
confluent_kafka_version=2.16.1

need_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "kafka: installing ${missing[*]}" >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_venv() {
  if [ ! -x "$venv/bin/python" ] ||
     ! "$venv/bin/python" -c "import confluent_kafka, sys; \
sys.exit(confluent_kafka.version()[0] != '$confluent_kafka_version')" 2>/dev/null; then
    echo "kafka: making $venv with confluent-kafka $confluent_kafka_version" >&2
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check \
      "confluent-kafka==$confluent_kafka_version"
  fi
}

cmd="${1:-}"
[ -n "$cmd" ] || { sed -n '2,13p' "$0" >&2; exit 2; }
shift
case "$cmd" in
  fetch)
    need_packages openjdk-17-jre-headless maven python3-venv
    mkdir -p "$cache"
    # One fetch at a time: two cold ones would clear each other's venv and jars.
    exec 9>"$cache/.lock"
    flock 9
    ensure_venv
    versions=()
    while [ $# -gt 0 ]; do
      case "$1" in
        --version) [ $# -ge 2 ] || { echo "usage: scripts/kafka.sh fetch [--version V]..." >&2; exit 2; }
                   versions+=("$2"); shift 2 ;;
        *) echo "usage: scripts/kafka.sh fetch [--version V]..." >&2; exit 2 ;;
      esac
    done
    # 4.x for everything; 3.9.x for SCRAM (librdkafka 2.0.2's exchange is refused by 4.x).
    [ ${#versions[@]} -gt 0 ] || versions=(4.1.1 3.9.1)
    for v in "${versions[@]}"; do
      SLUICE_KAFKA_CACHE="$cache" "$venv/bin/python" "$here/kafka/cluster.py" fetch \
        --version "$v" --pom "$here/kafka/pom.xml"
    done
    ;;
  start|stop|status)
    [ -x "$venv/bin/python" ] || { echo "kafka: not fetched yet: run scripts/kafka.sh fetch" >&2; exit 1; }
    SLUICE_KAFKA_CACHE="$cache" exec "$venv/bin/python" "$here/kafka/cluster.py" "$cmd" "$@"
    ;;
  python)
    [ -x "$venv/bin/python" ] || { echo "kafka: not fetched yet: run scripts/kafka.sh fetch" >&2; exit 1; }
    SLUICE_KAFKA_CACHE="$cache" PYTHONPATH="$here/kafka${PYTHONPATH:+:$PYTHONPATH}" \
      exec "$venv/bin/python" "$@"
    ;;
  *) echo "kafka: unknown command '$cmd'" >&2; sed -n '2,13p' "$0" >&2; exit 2 ;;
esac
