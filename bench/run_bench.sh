#!/usr/bin/env bash
# Whole-process benchmark: Sluice against the raw librdkafka copy loop (C++), a
# python3-confluent-kafka copy loop, and the loop a user would write in Python
# instead of Sluice (parse, validate, route, commit after delivery), on one
# embedded broker, in the same run, alternating rounds, medians. Every contestant
# assigns all input partitions (no group join), so whole-process wall and CPU
# times compare as well as rates. See bench/README.md.
#
#   bench/run_bench.sh [--events 1000000] [--partitions 64] [--rounds 3]
#                      [--build build] [--sluice BIN] [--out DIR]
#   SLUICE_BIN=/path/to/other/sluice SLUICE_LABEL=before bench/run_bench.sh ...
#   SLUICE_BIN=before=/tmp/a/sluice,head=/tmp/b/sluice bench/run_bench.sh ...
#
# SLUICE_BIN adds more sluice binaries (e.g. builds of other commits) to the same
# rounds: a path (named SLUICE_LABEL, default sluice-other), or a comma list of
# label=path.
#
# Needs build/apps/sluice and build/bench/copy_loop
# (cmake --build build --target sluice copy_loop), /usr/bin/python3 with
# confluent_kafka, and GNU time at /usr/bin/time.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
events=1000000
partitions=64
rounds=3
build="$root/build"
out=""
sluice=""
while [ $# -gt 0 ]; do
  case "$1" in
    --events) events=$2; shift 2 ;;
    --partitions) partitions=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --build) build=$(cd "$2" && pwd); shift 2 ;;
    --sluice) sluice=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: $0 [--events N] [--partitions P] [--rounds R] [--build DIR]" \
            "[--sluice BIN] [--out DIR]" >&2
       exit 2 ;;
  esac
done

# --sluice: the binary measured as `sluice` (and hosting the broker); default the
# build's. Pass a copy when someone may rebuild the tree during the run.
[ -n "$sluice" ] || sluice="$build/apps/sluice"
copy_loop="$build/bench/copy_loop"
python=/usr/bin/python3
for f in "$sluice" "$copy_loop" /usr/bin/time; do
  [ -x "$f" ] || { echo "missing $f" >&2; exit 2; }
done
"$python" -c 'import confluent_kafka' || { echo "$python lacks confluent_kafka" >&2; exit 2; }
declare -A others=() # label -> binary
other_labels=()
if [ -n "${SLUICE_BIN:-}" ]; then
  IFS=, read -r -a entries <<< "$SLUICE_BIN"
  for e in "${entries[@]}"; do
    if [[ "$e" == *=* ]]; then label=${e%%=*}; bin=${e#*=}
    else label=${SLUICE_LABEL:-sluice-other}; bin=$e; fi
    [ -x "$bin" ] || { echo "SLUICE_BIN: $bin is not executable" >&2; exit 2; }
    case "$label" in copy_loop*|route_loop*|sluice) echo "SLUICE_BIN: label $label is taken" >&2; exit 2 ;; esac
    others[$label]=$bin
    other_labels+=("$label")
  done
fi

[ -n "$out" ] || out=$(mktemp -d /tmp/sluice-bench.XXXXXX)
mkdir -p "$out"
tag=$(date +%s)
results="$out/results.tsv"
: > "$results"

# The broker: its own process, 3 mock brokers, every topic made up front.
bootfile="$out/bootstrap"
rm -f "$bootfile"
"$sluice" broker --brokers 3 --topic "bench-in:$partitions" \
  --topic "bench-copy-out:$partitions" --topic "bench-py-out:$partitions" \
  --topic "bench-route-out:$partitions" --topic "bench-sluice-out:$partitions" \
  --topic "bench-other-out:$partitions" \
  --topic bench-dlq:1 --bootstrap-file "$bootfile" > "$out/broker.log" 2>&1 &
broker_pid=$!
trap 'kill "$broker_pid" 2>/dev/null || true; wait "$broker_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$bootfile" ] && break; sleep 0.1; done
[ -s "$bootfile" ] || { echo "the broker did not start (see $out/broker.log)" >&2; exit 1; }
bootstrap=$(cut -d= -f2 "$bootfile")
echo "broker pid $broker_pid at $bootstrap; results in $out" >&2

echo "producing $events events to bench-in ($partitions partitions)..." >&2
"$sluice" produce --bootstrap "$bootstrap" --topic bench-in --count "$events" \
  --seed 1 >&2

# The Sluice pipeline: the order parse schema (src/testing/order_events.cpp, order_parse_section),
# a fixed route, a DLQ, availableNow -- the pipeline of bench/copy_ratio.cpp, but
# assigned every partition of bench-in, as the loops are: no group join to wait for.
assign=$(seq -s, 0 $((partitions - 1)))
pipeline_json() { # $1 output topic
  cat <<EOF
{
  "name": "bench",
  "source": {"kafka.bootstrap.servers": "$bootstrap", "assign": {"bench-in": [$assign]},
             "startingOffsets": "earliest", "includeHeaders": true,
             "kafka.session.timeout.ms": 6000, "kafka.fetch.wait.max.ms": 50},
  "parse": {"format": "json",
    "schema": {"order_id": "string", "customer_id": "string", "product_id": "string",
               "quantity": "int", "price": "double", "order_time": "timestamp",
               "priority": "string"},
    "required": ["order_id", "customer_id", "quantity", "price", "priority"]},
  "route": {"topic": "$1"},
  "sink": {"kafka.bootstrap.servers": "$bootstrap", "kafka.linger.ms": 5},
  "dlq": {"topic": "bench-dlq"},
  "trigger": {"availableNow": true}
}
EOF
}
pipeline_json bench-sluice-out > "$out/pipeline-sluice.json"
pipeline_json bench-other-out > "$out/pipeline-other.json"
# sluice-dedup: the same pipeline with dedup on order_id within an hour (RocksDB
# state and its changelog; the input holds no duplicates, so every record is a
# lookup and an insert). Each round gets a fresh state directory and changelog
# topic, so that no round starts with another's state.
"$python" - "$out/pipeline-sluice.json" "$out/pipeline-dedup.json" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
text = text.replace('"trigger":', '"dedup": {"key": ["order_id"], "within": "1 hour"},\n  "trigger":')
open(sys.argv[2], "w").write(text)
PY

# copy_loop-prefetch: the same loop with queued.min.messages=1000000. At the
# default (100000) the prefetch limit applies to the one consumer queue that all
# 64 partitions share, and the loop waits on fetches (measured ~140k msgs/s with
# 1/3 of a core busy); with a larger limit it prefetches the whole input.
contestants=(copy_loop copy_loop-prefetch copy_loop.py route_loop.py sluice sluice-dedup)
contestants+=("${other_labels[@]}")

# One whole process under GNU time (wall s, peak RSS KiB, user s, sys s); appends
# one line to results.tsv:
# round contestant records seconds rate wall_s peak_rss_kb user_s sys_s
run_one() { # $1 round, $2 contestant
  local r=$1 c=$2 group="bench-$tag-r$1-$2" base="$out/r$1-$2"
  local timed=(/usr/bin/time -f '%e %M %U %S' -o "$base.time" timeout 600)
  local rc=0
  case "$c" in
    copy_loop)
      "${timed[@]}" "$copy_loop" --bootstrap "$bootstrap" --group "$group" \
        --output bench-copy-out --count "$events" --assign \
        > "$base.out" 2> "$base.err" || rc=$? ;;
    copy_loop-prefetch)
      "${timed[@]}" "$copy_loop" --bootstrap "$bootstrap" --group "$group" \
        --output bench-copy-out --count "$events" --assign \
        --consumer-set queued.min.messages=1000000 \
        > "$base.out" 2> "$base.err" || rc=$? ;;
    copy_loop.py)
      "${timed[@]}" "$python" "$here/copy_loop.py" --bootstrap "$bootstrap" \
        --group "$group" --output bench-py-out --count "$events" \
        > "$base.out" 2> "$base.err" || rc=$? ;;
    route_loop.py)
      "${timed[@]}" "$python" "$here/route_loop.py" --bootstrap "$bootstrap" \
        --group "$group" --output bench-route-out --dlq bench-dlq --count "$events" \
        > "$base.out" 2> "$base.err" || rc=$? ;;
    sluice-dedup)
      rm -rf "$out/state-r$r"
      "${timed[@]}" "$sluice" run "$out/pipeline-dedup.json" \
        --set "source.kafka.group.id=$group" --set "dedup.stateDir=$out/state-r$r" \
        --set "dedup.changelog=bench-dedup-changelog-$tag-r$r" \
        > "$base.out" 2> "$base.err" || rc=$?
      du -sb "$out/state-r$r" | cut -f1 > "$base.state" ;;
    *)
      local bin=$sluice pipe="$out/pipeline-sluice.json"
      if [ "$c" != sluice ]; then bin=${others[$c]}; pipe="$out/pipeline-other.json"; fi
      "${timed[@]}" "$bin" run "$pipe" --set "source.kafka.group.id=$group" \
        > "$base.out" 2> "$base.err" || rc=$? ;;
  esac
  if [ "$rc" != 0 ]; then
    echo "round $r $c: exit $rc (see $base.err)" >&2
    return 1
  fi
  "$python" - "$r" "$c" "$base" "$events" >> "$results" <<'PY' || return 1
import json, re, sys
from datetime import datetime
r, c, base, events = sys.argv[1:]
wall, rss, user, sys_s = open(base + ".time").read().split()[-4:]
if c.startswith(("copy_loop", "route_loop")):
    j = json.loads(open(base + ".out").read().strip().splitlines()[-1])
    records, secs = j["records"], j["seconds"]
    # route_loop.py commits only what was delivered: all of it, by the end.
    if "committed" in j and j["committed"] != records:
        sys.exit(f"round {r} {c}: committed {j['committed']} of {records} records")
else:
    # Sluice: from its first non-empty "assigned:" log line (with assign, right
    # after the start) to its last "committed the offsets" line (every output
    # acknowledged, then committed): the committed-offset lookup and the first
    # fetch are in, the shutdown after the last commit is out.
    ts = lambda line: datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%f")
    strip = lambda s: re.sub(r"\x1b\[[0-9;]*m", "", s)
    lines = [strip(l) for l in open(base + ".err")]
    start = next(ts(l) for l in lines if " assigned: " in l and "(none)" not in l)
    end_line = next(l for l in lines if " run ended: " in l)
    end = max(ts(l) for l in lines if " committed the offsets " in l)
    m = re.search(r"run ended: (\d+) in, (\d+) out, (\d+) to the DLQ, (\d+) dropped",
                  end_line)
    records = int(m.group(1))
    if int(m.group(2)) + int(m.group(3)) + int(m.group(4)) != records:
        sys.exit(f"round {r} {c}: {m.group(0)}")
    secs = (end - start).total_seconds()
if records != int(events):
    sys.exit(f"round {r} {c}: handled {records} of {events} records")
print("\t".join([r, c, str(records), "%.3f" % secs, "%.0f" % (records / secs),
                 wall, rss, user, sys_s]))
PY
  tail -n1 "$results" >&2
}

failures=0
for r in $(seq 1 "$rounds"); do
  # Rotate the order each round so that no contestant always runs first or last.
  n=${#contestants[@]}
  for i in $(seq 0 $((n - 1))); do
    run_one "$r" "${contestants[$(((i + r - 1) % n))]}" || failures=$((failures + 1))
  done
done
[ "$failures" = 0 ] || echo "$failures run(s) failed: left out of the tables" >&2

"$python" - "$results" "$events" "$partitions" "$rounds" <<'PY'
import statistics, sys
from collections import OrderedDict
path, events, partitions, rounds = sys.argv[1:]
rows = [l.rstrip("\n").split("\t") for l in open(path) if l.strip()]
by = OrderedDict((name, []) for name in
                 ["copy_loop", "copy_loop-prefetch", "copy_loop.py", "route_loop.py"])
for r, c, records, secs, rate, wall, rss, user, sys_s in rows:
    cpu = float(user) + float(sys_s)
    by.setdefault(c, []).append({"rate": float(rate), "wall": float(wall),
                                 "rss": int(rss), "cpu": cpu,
                                 "cpu_per_m": cpu / int(records) * 1e6,
                                 "per_cpu": int(records) / cpu if cpu else 0})
med = lambda c, k: statistics.median(x[k] for x in by[c]) if by.get(c) else 0
ratio = lambda a, b: f"{a / b:.2f}" if a and b else "-"
base_rate, base_wall = med("copy_loop", "rate"), med("copy_loop", "wall")
py_rate, py_wall = med("route_loop.py", "rate"), med("route_loop.py", "wall")
print(f"{events} events, {partitions} partitions, {rounds} rounds (medians)\n")
print("| contestant | msgs/s | / copy_loop | / route_loop.py | wall s "
      "| copy_loop wall / wall | route_loop.py wall / wall | CPU s "
      "| CPU s / M records | records / CPU-s | peak RSS MB |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for c, xs in by.items():
    if not xs:
        continue
    rate, wall = med(c, "rate"), med(c, "wall")
    print(f"| {c} | {rate:.0f} | {ratio(rate, base_rate)} | {ratio(rate, py_rate)} "
          f"| {wall:.2f} | {ratio(base_wall, wall)} | {ratio(py_wall, wall)} "
          f"| {med(c, 'cpu'):.2f} | {med(c, 'cpu_per_m'):.2f} | {med(c, 'per_cpu'):.0f} "
          f"| {med(c, 'rss') / 1024:.0f} |")
for c in by:
    if c.startswith("sluice") and by[c] and py_rate:
        print(f"\n{c} / route_loop.py: {med(c, 'rate') / py_rate:.2f}x msgs/s, "
              f"{py_wall / med(c, 'wall'):.2f}x by wall time, "
              f"{med('route_loop.py', 'cpu_per_m') / med(c, 'cpu_per_m'):.2f}x "
              "records per CPU-second (goal: 3x)")
import glob, os
sizes = [int(open(f).read()) for f in glob.glob(os.path.join(os.path.dirname(path), "*-sluice-dedup.state"))]
if sizes:
    print(f"\nsluice-dedup state directory after a run (RocksDB files): "
          f"median {statistics.median(sizes) / 2**20:.1f} MiB")
print("\nEvery round:\n")
print("| round | contestant | records | timed s | msgs/s | wall s | CPU s "
      "| peak RSS MB |")
print("|---|---|---|---|---|---|---|---|")
for row in sorted(rows, key=lambda x: int(x[0])):
    r, c, records, secs, rate, wall, rss, user, sys_s = row
    print(f"| {r} | {c} | {records} | {float(secs):.2f} | {rate} | {float(wall):.2f} "
          f"| {float(user) + float(sys_s):.2f} | {int(rss) / 1024:.0f} |")
PY
