#!/usr/bin/env bash
# Lanes (source.minPartitions) on a one-partition topic with a CPU-heavy user
# stage: bench/lanes_bench with 1, 2, 4 and 8 lanes, each run its own process
# under /usr/bin/time, against one `sluice broker` process, alternating rounds,
# medians. See bench/README.md.
#
#   bench/run_lanes.sh [--events 20000] [--rounds 3] [--work 10000] [--build build]
#                      [--out DIR]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
events=20000
rounds=3
work=10000
build="$root/build"
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --events) events=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --build) build=$(cd "$2" && pwd); shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: $0 [--events N] [--rounds R] [--work ROUNDS] [--build DIR] [--out DIR]" >&2
       exit 2 ;;
  esac
done
sluice="$build/apps/sluice"
bench="$build/bench/lanes_bench"
for f in "$sluice" "$bench" /usr/bin/time; do
  [ -x "$f" ] || { echo "missing $f (cmake --build build --target sluice lanes_bench)" >&2; exit 2; }
done
[ -n "$out" ] || out=$(mktemp -d /tmp/sluice-lanes.XXXXXX)
mkdir -p "$out"
results="$out/results.tsv"
: > "$results"
tag=$(date +%s)

bootfile="$out/bootstrap"
rm -f "$bootfile"
"$sluice" broker --topic bench-lanes-in:1 --topic bench-lanes-out:8 \
  --bootstrap-file "$bootfile" > "$out/broker.log" 2>&1 &
broker_pid=$!
trap 'kill "$broker_pid" 2>/dev/null || true; wait "$broker_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$bootfile" ] && break; sleep 0.1; done
[ -s "$bootfile" ] || { echo "the broker did not start (see $out/broker.log)" >&2; exit 1; }
bootstrap=$(cut -d= -f2 "$bootfile")
"$sluice" produce --bootstrap "$bootstrap" --topic bench-lanes-in --count "$events" \
  --seed 1 >&2

lanes=(1 2 4 8)
for r in $(seq 1 "$rounds"); do
  n=${#lanes[@]}
  for i in $(seq 0 $((n - 1))); do
    l=${lanes[$(((i + r - 1) % n))]}
    base="$out/r$r-l$l"
    /usr/bin/time -f '%e %M %U %S' -o "$base.time" timeout 600 "$bench" \
      --bootstrap "$bootstrap" --group "lanes-$tag-r$r-l$l" --lanes "$l" \
      --work "$work" > "$base.out" 2> "$base.err" ||
      { echo "round $r, $l lanes failed (see $base.err)" >&2; exit 1; }
    read -r wall rss user sys < <(tail -n1 "$base.time")
    /usr/bin/python3 - "$r" "$l" "$base.out" "$wall" "$rss" "$user" "$sys" \
      >> "$results" <<'PY'
import json, sys
r, l, path, wall, rss, user, sys_s = sys.argv[1:]
j = json.loads(open(path).read().strip().splitlines()[-1])
print("\t".join([r, l, str(j["records"]), "%.3f" % j["seconds"], "%.0f" % j["rate"],
                 wall, rss, "%.2f" % (float(user) + float(sys_s))]))
PY
    tail -n1 "$results" >&2
  done
done

/usr/bin/python3 - "$results" "$events" "$rounds" "$work" <<'PY'
import statistics, sys
from collections import defaultdict
path, events, rounds, work = sys.argv[1:]
by = defaultdict(list)
for line in open(path):
    r, l, records, secs, rate, wall, rss, cpu = line.split("\t")
    assert int(records) == int(events), line
    by[int(l)].append((float(rate), float(wall), int(rss), float(cpu)))
med = lambda xs: statistics.median(xs)
base = med([x[0] for x in by[1]])
print(f"{events} events on 1 partition, stage work {work}, {rounds} rounds (medians)\n")
print("| lanes | msgs/s | speed-up | wall s | CPU s | peak RSS MB |")
print("|---|---|---|---|---|---|")
for l in sorted(by):
    xs = by[l]
    rate = med([x[0] for x in xs])
    print(f"| {l} | {rate:.0f} | {rate / base:.2f} | {med([x[1] for x in xs]):.1f} | "
          f"{med([x[3] for x in xs]):.1f} | {med([x[2] for x in xs]) / 1024:.0f} |")
PY
