"""Real Kafka: topics and partitions that appear while a continuous run goes on (the embedded
broker has no CreateTopics or CreatePartitions), record by record.

librdkafka notices new topics and partitions at its metadata refresh,
`topic.metadata.refresh.interval.ms` (5 minutes by default, as Java's metadata.max.age.ms);
the pipelines here set `kafka.topic.metadata.refresh.interval.ms` to 1000.

1. `subscribePattern` `pat-.*`, continuous: `pat-a` (2 partitions, 50 records each) exists at
   start. While it runs: `pat-b` is created (3 partitions) and written at once (before the
   run can know it), then more is written to it after it was picked up; `pat-a` gets 2 more
   partitions (CreatePartitions), written too; a topic that does not match (`other`) is
   written and must not be read.
2. `subscribe` `sub`, continuous: `sub` grows from 2 to 5 partitions while it runs.

Each run is stopped with SIGTERM once its progress counted every record; then: exit 0, every
source record (topic, partition, offset) in the outputs exactly once (the new topic's and
partitions' records from their earliest offset), nothing else, and the group's committed
offsets are the ends of every partition. Each record names the partition it was written to
(checked in the source by an independent client), and the run's progress
(`numInputRowsByPartition`, summed over its epochs) counts for every topic and partition
exactly the records written there: every record was read from its own partition.

Usage: scripts/kafka.sh python tests/kafka/pattern_test.py PATH/TO/sluice
"""
import json
import os
import signal
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kafka_support import (Abort, check, Cluster, committed, create_topics, end_offsets,  # noqa: E402
                           install_cleanup, MULT, NewPartitions, Producer, progress_lines,
                           read_topic, run_test, start_run, wait_for, write)

WORK = tempfile.mkdtemp(prefix="sluice-kafka-pattern-")
install_cleanup(WORK)


class Source:
    """Writes records {"t","p","n"} and remembers them."""

    def __init__(self, bootstrap):
        self.p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
        self.written = []  # (topic, partition, n)

    def write(self, topic, partitions, count):
        # The producer learns of added partitions from its metadata: ask for it.
        wait_for(lambda: len(self.p.list_topics(topic, timeout=10).topics[topic].partitions)
                 > max(partitions), 30)
        for p in partitions:
            for _ in range(count):
                n = len(self.written)
                self.p.produce(topic, json.dumps({"t": topic, "p": p, "n": n}).encode(),
                               partition=p)
                self.written.append((topic, p, n))
        assert self.p.flush(30) == 0


def pipeline(name, bootstrap, subscription):
    src = {"kafka.bootstrap.servers": bootstrap, "kafka.group.id": "kafka-" + name,
           "startingOffsets": "earliest", "kafka.topic.metadata.refresh.interval.ms": 1000}
    src.update(subscription)
    return json.dumps({
        "name": name, "source": src,
        "parse": {"format": "json", "required": ["t", "p", "n"]},
        "route": {"topic": "out-" + name},
        "sink": {"kafka.bootstrap.servers": bootstrap, "kafka.acks": "all"},
        "trigger": {"processingTime": "500 milliseconds"}}, indent=1)


def counted(lines):
    return sum(p.get("numInputRows", 0) for p in progress_lines("\n".join(lines.snapshot())))


def read_by_partition(lines):
    """{(topic, partition): records} summed over the run's progress lines
    (sources[].numInputRowsByPartition)."""
    out = {}
    for p in progress_lines("\n".join(lines.snapshot())):
        for source in p.get("sources", []):
            for t, parts in source.get("numInputRowsByPartition", {}).items():
                for part, n in parts.items():
                    out[(t, int(part))] = out.get((t, int(part)), 0) + n
    return out


def assigned(log, what):
    with open(log) as f:
        return what in f.read()


def stop_and_check(c, name, proc, lines, src, topics):
    b = c.bootstrap()
    total = len(src.written)
    ok = wait_for(lambda: counted(lines) >= total, 90)
    check("%s: progress counts all %d records" % (name, total), ok, counted(lines))
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=60 * MULT)
    except Exception:
        code = None
    check("%s: SIGTERM: exit 0" % name, code == 0, code)
    out = read_topic(b, "out-" + name)
    got = {}
    for r in out:
        v = json.loads(r.value)
        got[(v["t"], v["p"], v["n"])] = got.get((v["t"], v["p"], v["n"]), 0) + 1
    want = set(src.written)
    check("%s: every record of every topic and partition is in the outputs exactly once "
          "(%d)" % (name, len(want)),
          set(got) == want and all(n == 1 for n in got.values()),
          "missing %s, extra %s, repeated %d" % (
              sorted(want - set(got))[:5], sorted(set(got) - want)[:5],
              sum(1 for n in got.values() if n > 1)))
    for t in topics:
        ends = end_offsets(b, t)
        got_c = committed(b, "kafka-" + name, t, list(ends))
        check("%s: the group committed the end of every partition of %s %s" % (name, t, ends),
              got_c == ends, got_c)
    # Each record was read from the partition it was written to: the source holds record n
    # of (t, p) in partition p of t, and the run counted, per partition, exactly the
    # records written there.
    misplaced = []
    for t in topics:
        for r in read_topic(b, t):
            v = json.loads(r.value)
            if (v["t"], r.partition) != (t, v["p"]):
                misplaced.append((t, r.partition, r.offset, v))
    check("%s: the source holds every record in the partition its value names" % name,
          not misplaced, misplaced[:5])
    written = {}
    for t, p, _ in src.written:
        written[(t, p)] = written.get((t, p), 0) + 1
    lines.thread.join(timeout=10)  # the last progress lines, up to the exit
    read = read_by_partition(lines)
    check("%s: the run's progress counts per partition exactly the records written there "
          "(%d partitions)" % (name, len(written)),
          {k: n for k, n in read.items() if n} == written,
          "read %s, written %s" % (sorted(read.items()), sorted(written.items())))


def main():
    with Cluster(os.path.join(WORK, "cluster"), nodes=1) as c:
        b, admin = c.bootstrap(), c.admin()
        create_topics(admin, {"pat-a": 2, "other": 1, "out-pattern": 1, "out-subscribe": 1,
                              "sub": 2})

        # 1. A pattern subscription.
        src = Source(b)
        src.write("pat-a", [0, 1], 50)
        path = write(os.path.join(WORK, "pattern.json"),
                     pipeline("pattern", b, {"subscribePattern": "pat-.*"}))
        log = os.path.join(WORK, "pattern.log")
        proc, lines = start_run([path], log)
        if not check("pattern: the existing topic is read", wait_for(
                lambda: counted(lines) >= 100, 60), counted(lines)):
            raise Abort()
        create_topics(admin, {"pat-b": 3})
        src.write("pat-b", [0, 1, 2], 20)  # before the run can know the topic
        src.write("other", [0], 10)
        check("pattern: the new topic's records are read from its earliest offset",
              wait_for(lambda: counted(lines) >= 160, 60), counted(lines))
        src.write("pat-b", [0, 1, 2], 10)
        for f in admin.create_partitions([NewPartitions("pat-a", 4)]).values():
            f.result()
        src.write("pat-a", [0, 1, 2, 3], 15)
        written = [w for w in src.written if w[0] != "other"]
        src.written = written
        stop_and_check(c, "pattern", proc, lines, src, ["pat-a", "pat-b"])
        check("pattern: the partitions that appeared started at earliest (logged)",
              assigned(log, "appeared while running starts at earliest"))

        # 2. A plain subscription whose topic grows.
        src = Source(b)
        src.write("sub", [0, 1], 30)
        path = write(os.path.join(WORK, "subscribe.json"),
                     pipeline("subscribe", b, {"subscribe": "sub"}))
        proc, lines = start_run([path], os.path.join(WORK, "subscribe.log"))
        if not check("subscribe: the topic is read", wait_for(
                lambda: counted(lines) >= 60, 60), counted(lines)):
            raise Abort()
        for f in admin.create_partitions([NewPartitions("sub", 5)]).values():
            f.result()
        src.write("sub", [0, 1, 2, 3, 4], 25)
        stop_and_check(c, "subscribe", proc, lines, src, ["sub"])


run_test(main)
