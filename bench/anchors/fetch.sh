#!/usr/bin/env bash
# What the anchors bench (bench/anchors_bench.py) runs besides Sluice, fetched once into the
# real-Kafka tier's cache ($SLUICE_KAFKA_CACHE, default ~/.cache/sluice-kafka), outside the
# checkout; nothing in sluice needs any of it:
#   - a Python environment with pyspark (SPARK_VERSION) and the tier's confluent-kafka;
#   - Spark's Kafka connector at the same version, its jars resolved with Maven (Spark's
#     own resolver also asks hosts these machines cannot reach);
#   - the Kafka Streams app of bench/anchors/kstreams, built with Maven.
#   bench/anchors/fetch.sh          prints the three paths as NAME=path lines at the end
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="${SLUICE_KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice-kafka}"
spark_version="${SPARK_VERSION:-4.1.1}"
confluent_kafka_version=2.16.1

"$root/scripts/kafka.sh" fetch   # Java, Maven, the broker and the tier's venv
# The Kafka Streams app is compiled here: a JDK, not only the tier's JRE.
if ! dpkg-query -W -f='${Status}' openjdk-17-jdk-headless 2>/dev/null | grep -q 'install ok installed'; then
  echo "anchors: installing openjdk-17-jdk-headless" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    openjdk-17-jdk-headless >/dev/null
fi
mkdir -p "$cache"
exec 9>"$cache/.bench-lock"
flock 9

venv="$cache/spark-venv-$spark_version"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import pyspark, confluent_kafka" 2>/dev/null; then
  echo "anchors: making $venv with pyspark $spark_version" >&2
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check \
    "pyspark==$spark_version" "confluent-kafka==$confluent_kafka_version"
fi

jars="$cache/spark-kafka-$spark_version"
if [ ! -f "$jars/.complete" ]; then
  echo "anchors: resolving Spark's Kafka connector $spark_version" >&2
  rm -rf "$jars"
  mvn -q -B -f "$here/spark-connector.pom.xml" dependency:copy-dependencies \
    -Dspark.version="$spark_version" -DincludeScope=runtime -DoutputDirectory="$jars"
  touch "$jars/.complete"
fi

# Built outside the checkout so that target/ never lands in the tree; again only when
# its sources changed (a bench may be running the built one).
kstreams="$cache/route-streams"
stamp="$(cd "$here/kstreams" && find pom.xml src -type f | sort | xargs sha256sum | sha256sum | cut -c1-16)"
if [ "$(cat "$kstreams/.built" 2>/dev/null)" != "$stamp" ]; then
  echo "anchors: building the Kafka Streams app" >&2
  rm -rf "$kstreams"
  mkdir -p "$kstreams"
  cp -r "$here/kstreams/pom.xml" "$here/kstreams/src" "$kstreams/"
  mvn -q -B -f "$kstreams/pom.xml" package -DskipTests
  echo "$stamp" > "$kstreams/.built"
fi

echo "SPARK_PYTHON=$venv/bin/python"
echo "SPARK_JARS=$jars"
echo "KSTREAMS_CP=$kstreams/target/route-streams-1.jar:$kstreams/target/lib/*"
