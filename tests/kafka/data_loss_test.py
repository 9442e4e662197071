"""Real Kafka: failOnDataLoss with real retention (the embedded broker drops old data by its
own rule, without a log start a client could compare against), record by record.

A broker whose retention check runs every 500 ms and deletes segments at once; topic `loss`
(1 partition) with segment.bytes and retention.bytes 1 MiB (Kafka 4's minimum segment).
A first run (availableNow) reads the first 100 records and commits offset 100. Then 4000
records of about 1 KB roll segments, and retention deletes the oldest: the test waits until
the log start offset is past 100 and no longer moves (polled, an event, not a sleep).

- failOnDataLoss true (the default): exit 1 naming the topic, partition, expected offset
  (100) and the log start; nothing written, nothing committed;
- `sluice plan` with failOnDataLoss false: startOffset = log start, lostRecords = log start
  - 100;
- failOnDataLoss false: exit 0, numLostRows (and numLostRowsByPartition) = log start - 100
  exactly, the outputs are exactly the records from the log start to the end, once each,
  and the group commits the end.

Usage: scripts/kafka.sh python tests/kafka/data_loss_test.py PATH/TO/sluice
"""
import json
import os
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kafka_support import (MULT, Abort, Cluster, Consumer, Producer,  # noqa: E402
                           TopicPartition, check, committed, create_topics, finish,
                           install_cleanup, progress_lines, read_topic, sluice, write)

WORK = tempfile.mkdtemp(prefix="sluice-kafka-data-loss-")
install_cleanup(WORK)
TOPIC = "loss"
FIRST = 100
MORE = 4000
MIB = 1024 * 1024
PAD = "x" * 1000


def pipeline(bootstrap, group):
    return json.dumps({
        "name": "loss", "source": {"kafka.bootstrap.servers": bootstrap, "subscribe": TOPIC,
                                   "startingOffsets": "earliest", "kafka.group.id": group},
        "parse": {"format": "json", "required": ["i"]},
        "route": {"topic": "out-loss"},
        "sink": {"kafka.bootstrap.servers": bootstrap, "kafka.acks": "all"},
        "trigger": {"availableNow": True}}, indent=1)


def produce(bootstrap, first, count):
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                  "compression.type": "none", "linger.ms": 5})
    for i in range(first, first + count):
        p.produce(TOPIC, json.dumps({"i": i, "pad": PAD}).encode(), partition=0)
        if i % 500 == 0:
            p.poll(0)
    return p.flush(60) == 0


def log_range(consumer):
    return consumer.get_watermark_offsets(TopicPartition(TOPIC, 0), timeout=10)


def settled_log_start(bootstrap, past, timeout=120):
    """Waits until the log start is past `past` and then stays put over 4 retention checks
    (2 s): retention has reached its fixed point. Returns (log start, log end)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "kafka-loss-probe"})
    try:
        deadline = time.time() + timeout * MULT
        last, since = None, None
        while time.time() < deadline:
            lo, hi = log_range(c)
            if lo > past:
                if lo != last:
                    last, since = lo, time.time()
                elif time.time() - since >= 2.0:
                    return lo, hi
            time.sleep(0.1)
        raise Abort()
    finally:
        c.close()


def outputs(bootstrap):
    return sorted(json.loads(r.value)["i"] for r in read_topic(bootstrap, "out-loss"))


def main():
    broker = {"log.retention.check.interval.ms": 500, "log.segment.delete.delay.ms": 0,
              "log.initial.task.delay.ms": 0}
    with Cluster(os.path.join(WORK, "cluster"), nodes=1, broker_config=broker) as c:
        b = c.bootstrap()
        create_topics(c.admin(), {TOPIC: 1}, config={"segment.bytes": str(MIB),
                                                     "retention.bytes": str(MIB)})
        create_topics(c.admin(), {"out-loss": 1})
        group = "kafka-loss"
        path = write(os.path.join(WORK, "loss.json"), pipeline(b, group))
        check("the first %d records are written" % FIRST, produce(b, 0, FIRST))
        r = sluice(["run", path])
        check("run 1 reads them and exits 0", r.returncode == 0, r.stderr[-1000:])
        if not check("run 1 commits offset %d" % FIRST,
                     committed(b, group, TOPIC, [0]) == {0: FIRST},
                     committed(b, group, TOPIC, [0])):
            raise Abort()
        check("%d more records are written" % MORE, produce(b, FIRST, MORE))
        try:
            start, end = settled_log_start(b, FIRST)
        except Abort:
            check("retention moves the log start past %d" % FIRST, False)
            raise
        lost = start - FIRST
        check("retention deleted segments: the log starts at %d (end %d), %d unread records "
              "gone" % (start, end, lost), start > FIRST and end == FIRST + MORE)

        r = sluice(["run", path])
        msg = "%s/0: the next offset to read is %d but the log starts at %d: %d record(s)" % (
            TOPIC, FIRST, start, lost)
        check("failOnDataLoss true: exit 1 naming topic, partition, expected offset and log "
              "start", r.returncode == 1 and msg in r.stderr, (r.returncode, r.stderr[-800:]))
        check("failOnDataLoss true: nothing more is written", outputs(b) == list(range(FIRST)))
        check("failOnDataLoss true: nothing more is committed",
              committed(b, group, TOPIC, [0]) == {0: FIRST})

        r = sluice(["plan", path, "--set", "source.failOnDataLoss=false"])
        plan = json.loads(r.stdout)["partitions"][0] if r.returncode == 0 else r.stderr
        check("plan (failOnDataLoss false): starts at the log start %d, %d lost records" %
              (start, lost),
              r.returncode == 0 and plan["startOffset"] == start and
              plan["logStartOffset"] == start and plan["lostRecords"] == lost and
              plan["committedOffset"] == FIRST and plan["endOffset"] == end, plan)

        r = sluice(["run", path, "--set", "source.failOnDataLoss=false"])
        check("failOnDataLoss false: exit 0", r.returncode == 0, r.stderr[-1000:])
        progress = progress_lines(r.stdout)
        num_lost = sum(p.get("numLostRows", 0) for p in progress)
        by_part = sum(int(s.get("numLostRowsByPartition", {}).get(TOPIC, {}).get("0", 0))
                      for p in progress for s in p.get("sources", []))
        check("failOnDataLoss false: numLostRows = log start - expected offset = %d" % lost,
              num_lost == lost and by_part == lost, (num_lost, by_part))
        check("failOnDataLoss false: the warning names the gap", msg in r.stderr,
              r.stderr[-800:])
        got = outputs(b)
        want = list(range(FIRST)) + list(range(start, end))
        check("failOnDataLoss false: outputs are exactly [0,%d) and [%d,%d), once each" %
              (FIRST, start, end), got == want,
              "%d outputs, want %d" % (len(got), len(want)))
        rows = sum(p["numInputRows"] for p in progress)
        check("failOnDataLoss false: %d input rows" % (end - start), rows == end - start, rows)
        check("failOnDataLoss false: the group commits the end %d" % end,
              committed(b, group, TOPIC, [0]) == {0: end})


try:
    main()
except Abort:
    pass
except Exception:
    traceback.print_exc()
    check("no unexpected error", False)
finish()
