"""Real Kafka: the by-timestamp start and end options with real ListOffsets lookups
(the embedded broker answers every timestamp lookup with -1), record by record.

Topic `ts`, 3 partitions, 10 records each, written with explicit CreateTime timestamps by an
independent client: partition p's record i (offset i) has timestamp T0 + i * 1000 * (p + 1),
so a timestamp maps to a different offset in each partition. Each case runs `sluice plan` and
`sluice run` (availableNow, a fresh group, an output topic of its own) and checks exactly
which source offsets came out: values carry their partition and index, and the source is
read back to confirm that index i is offset i.

Cases: startingTimestamp (exact and in-between timestamps), startingOffsetsByTimestamp,
endingTimestamp, endingOffsetsByTimestamp (one partition's timestamp past every record: it
ends at the latest offset), startingOffsetsByTimestampStrategy error (exit 1 naming the
partition) and latest (a timestamp past the last record of some partitions: those start at
their end), and startingTimestamp taking precedence over startingOffsets.

Usage: scripts/kafka.sh python tests/kafka/timestamps_test.py PATH/TO/sluice
"""
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kafka_support import (Abort, check, Cluster, committed, create_topics,  # noqa: E402
                           install_cleanup, Producer, progress_lines, read_topic, run_test,
                           sluice, write)

WORK = tempfile.mkdtemp(prefix="sluice-kafka-timestamps-")
install_cleanup(WORK)
TOPIC = "ts"
PARTITIONS = 3
PER_PARTITION = 10
# A day ago: Kafka 4 refuses CreateTime more than an hour ahead of its clock, not behind.
T0 = (int(time.time()) - 86400) * 1000


def ts(p, i):
    return T0 + i * 1000 * (p + 1)


def first_at_or_after(p, t):
    """The offset a ListOffsets lookup must give: the first record with timestamp >= t."""
    for i in range(PER_PARTITION):
        if ts(p, i) >= t:
            return i
    return None


def pipeline(name, bootstrap, source):
    src = {"kafka.bootstrap.servers": bootstrap, "subscribe": TOPIC,
           "kafka.group.id": "kafka-ts-" + name}
    src.update(source)
    return json.dumps({
        "name": "ts-" + name, "source": src,
        "parse": {"format": "json", "required": ["p", "i"]},
        "route": {"topic": "out-" + name},
        "sink": {"kafka.bootstrap.servers": bootstrap, "kafka.acks": "all"},
        "trigger": {"availableNow": True}}, indent=1)


def run_case(c, name, source, want_start, want_end):
    """want_start/want_end: {partition: offset}. Runs plan and run; checks outputs exactly."""
    b = c.bootstrap()
    create_topics(c.admin(), {"out-" + name: 1})
    path = write(os.path.join(WORK, name + ".json"), pipeline(name, b, source))
    plan = sluice(["plan", path])
    ok = check("%s: sluice plan exits 0" % name, plan.returncode == 0, plan.stderr[-1500:])
    if ok:
        parts = {p["partition"]: p for p in json.loads(plan.stdout)["partitions"]}
        got = {p: (parts[p]["startOffset"], parts[p]["endOffset"]) for p in sorted(parts)}
        want = {p: (want_start[p], want_end[p]) for p in range(PARTITIONS)}
        check("%s: plan starts and ends %s" % (name, want), got == want, got)
    r = sluice(["run", path])
    check("%s: sluice run exits 0" % name, r.returncode == 0, r.stderr[-1500:])
    out = read_topic(b, "out-" + name)
    got = sorted((json.loads(o.value)["p"], json.loads(o.value)["i"]) for o in out)
    want = sorted((p, i) for p in range(PARTITIONS)
                  for i in range(want_start[p], want_end[p]))
    check("%s: exactly offsets %s of each partition came out (%d records)" %
          (name, {p: "[%d,%d)" % (want_start[p], want_end[p]) for p in range(PARTITIONS)},
           len(want)), got == want,
          "missing %s, extra %s" % (sorted(set(want) - set(got))[:10],
                                    sorted(set(got) - set(want))[:10]))
    stamps_ok = all(o.timestamp == ts(json.loads(o.value)["p"], json.loads(o.value)["i"])
                    for o in out)
    check("%s: outputs keep the source timestamps" % name, stamps_ok)
    rows = sum(p["numInputRows"] for p in progress_lines(r.stdout))
    check("%s: progress counts %d input rows" % (name, len(want)), rows == len(want), rows)
    got_commit = committed(b, "kafka-ts-" + name, TOPIC, list(range(PARTITIONS)))
    want_commit = {p: want_end[p] for p in range(PARTITIONS)
                   if want_end[p] > want_start[p]}
    check("%s: the group committed each partition's end %s" % (name, want_commit),
          all(got_commit[p] == o for p, o in want_commit.items()), got_commit)


def produce_source(bootstrap):
    prod = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for p in range(PARTITIONS):
        for i in range(PER_PARTITION):
            prod.produce(TOPIC, json.dumps({"p": p, "i": i}).encode(),
                         key=b"k%d" % i, partition=p, timestamp=ts(p, i))
    return prod.flush(30) == 0


def main():
    with Cluster(os.path.join(WORK, "cluster"), nodes=1) as c:
        b = c.bootstrap()
        create_topics(c.admin(), {TOPIC: PARTITIONS})
        check("the source is written", produce_source(b))
        src = read_topic(b, TOPIC)
        layout_ok = len(src) == PARTITIONS * PER_PARTITION and all(
            json.loads(s.value) == {"p": s.partition, "i": s.offset}
            and s.timestamp == ts(s.partition, s.offset) for s in src)
        if not check("source record i of each partition is offset i, with its CreateTime",
                     layout_ok, [(s.partition, s.offset, s.timestamp) for s in src[:5]]):
            raise Abort()
        all_start = {p: 0 for p in range(PARTITIONS)}
        all_end = {p: PER_PARTITION for p in range(PARTITIONS)}

        # startingTimestamp: T0+6000 is record 6 of p0, 3 of p1 and 2 of p2 exactly;
        # T0+4500 falls between records in every partition.
        for name, t in [("start-exact", T0 + 6000), ("start-between", T0 + 4500)]:
            run_case(c, name, {"startingTimestamp": t},
                     {p: first_at_or_after(p, t) for p in range(PARTITIONS)}, all_end)
        # startingOffsetsByTimestamp, per partition.
        per = {0: T0 + 2500, 1: T0 + 1, 2: T0 + 27000}
        run_case(c, "start-by-partition",
                 {"startingOffsetsByTimestamp": {TOPIC: {str(p): t for p, t in per.items()}}},
                 {p: first_at_or_after(p, t) for p, t in per.items()}, all_end)
        # startingTimestamp comes before startingOffsets (Spark's precedence).
        run_case(c, "start-precedence",
                 {"startingTimestamp": T0 + 6000, "startingOffsets": "earliest"},
                 {p: first_at_or_after(p, T0 + 6000) for p in range(PARTITIONS)}, all_end)
        # endingTimestamp: each partition stops before its first record at or after it.
        run_case(c, "end-time", {"startingOffsets": "earliest", "endingTimestamp": T0 + 5000},
                 all_start, {p: first_at_or_after(p, T0 + 5000) for p in range(PARTITIONS)})
        # endingOffsetsByTimestamp: p2's timestamp is past every record: its latest offset.
        ends = {0: T0 + 3000, 1: T0 + 17000, 2: T0 + 10 ** 7}
        run_case(c, "end-by-partition",
                 {"startingOffsets": "earliest",
                  "endingOffsetsByTimestamp": {TOPIC: {str(p): t for p, t in ends.items()}}},
                 all_start, {0: 3, 1: 9, 2: PER_PARTITION})
        # Both ends of the range by time.
        run_case(c, "start-and-end", {"startingTimestamp": T0 + 2000,
                                      "endingTimestamp": T0 + 8000},
                 {p: first_at_or_after(p, T0 + 2000) for p in range(PARTITIONS)},
                 {p: first_at_or_after(p, T0 + 8000) for p in range(PARTITIONS)})

        # The strategy: T0+20000 is past every record of p0 (9000) and p1 (18000), and is
        # record 7 of p2 (21000 is the first at or after it).
        late = T0 + 20000
        create_topics(c.admin(), {"out-strategy-error": 1})
        path = write(os.path.join(WORK, "strategy-error.json"),
                     pipeline("strategy-error", b, {"startingTimestamp": late}))
        for cmd in ["plan", "run"]:
            r = sluice([cmd, path])
            check("strategy error (default): sluice %s exits 1 naming the partition without "
                  "a record that recent" % cmd,
                  r.returncode == 1 and "no record at or after startingTimestamp %d" % late
                  in r.stderr and ("%s/0" % TOPIC in r.stderr or "%s/1" % TOPIC in r.stderr),
                  (r.returncode, r.stderr[-800:]))
        out = read_topic(b, "out-strategy-error")
        check("strategy error: nothing was written", not out, len(out))
        got = committed(b, "kafka-ts-strategy-error", TOPIC, list(range(PARTITIONS)))
        check("strategy error: nothing was committed", all(o < 0 for o in got.values()), got)
        run_case(c, "strategy-latest",
                 {"startingTimestamp": late, "startingOffsetsByTimestampStrategy": "latest"},
                 {0: PER_PARTITION, 1: PER_PARTITION, 2: 7}, all_end)
        # Every partition past its last record: latest everywhere, nothing read, exit 0.
        run_case(c, "strategy-latest-all",
                 {"startingTimestamp": T0 + 10 ** 7,
                  "startingOffsetsByTimestampStrategy": "latest"}, all_end, all_end)


run_test(main)
