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

Then the same loss while a run goes on: a continuous run capped at 40 offsets per 500 ms
epoch, with a prefetch of a few records, reads a topic while 4000 records arrive at once
and retention deletes what it has not read yet; librdkafka's position jumps to the log
start (auto.offset.reset earliest), and the partition consumer sees the jump:

- failOnDataLoss true: the run exits 1 by itself, naming the offset it expected and the log
  start; the outputs are exactly the offsets before the gap, once each, and the group
  committed no further than the gap;
- failOnDataLoss false: the run goes on; once the group committed the end it is stopped
  (SIGTERM, exit 0): every offset is either in the outputs (once) or counted in
  numLostRows, and the lost ones are exactly those below the log start.

Usage: scripts/kafka.sh python tests/kafka/data_loss_test.py PATH/TO/sluice
"""
import json
import os
import re
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kafka_support import (Abort, check, Cluster, committed, Consumer, create_topics,  # noqa: E402
                           install_cleanup, MULT, Producer, progress_lines, read_topic,
                           run_test, sluice, start_run, TopicPartition, wait_for, write)
from offsets import wait_committed  # noqa: E402

WORK = tempfile.mkdtemp(prefix="sluice-kafka-data-loss-")
install_cleanup(WORK)
TOPIC = "loss"
FIRST = 100
MORE = 4000
MIB = 1024 * 1024
PAD = "x" * 1000


def pipeline(bootstrap, group, topic=TOPIC, out="out-loss", slow=False):
    source = {"kafka.bootstrap.servers": bootstrap, "subscribe": topic,
              "startingOffsets": "earliest", "kafka.group.id": group}
    trigger = {"availableNow": True}
    if slow:
        # A few records prefetched and 80 offsets a second: retention overtakes it.
        source.update({"maxOffsetsPerTrigger": 40, "kafka.queued.max.messages.kbytes": 8,
                       "kafka.queued.min.messages": 5, "kafka.fetch.message.max.bytes": 4096})
        trigger = {"processingTime": "500 milliseconds"}
    return json.dumps({
        "name": "loss", "source": source,
        "parse": {"format": "json", "required": ["i"]},
        "route": {"topic": out},
        "sink": {"kafka.bootstrap.servers": bootstrap, "kafka.acks": "all"},
        "trigger": trigger}, indent=1)


def produce(bootstrap, first, count, topic=TOPIC):
    # One record per batch: fetches of a few KiB return a few records.
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                  "compression.type": "none", "linger.ms": 0, "batch.num.messages": 1})
    for i in range(first, first + count):
        p.produce(topic, json.dumps({"i": i, "pad": PAD}).encode(), partition=0)
        if i % 500 == 0:
            p.poll(0)
    return p.flush(60) == 0


def log_range(consumer, topic=TOPIC):
    return consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)


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


def outputs(bootstrap, out="out-loss"):
    return sorted(json.loads(r.value)["i"] for r in read_topic(bootstrap, out))


def lost_while_running(c, fail):
    """A continuous capped run overtaken by retention; fail: failOnDataLoss."""
    b = c.bootstrap()
    name = "running-%s" % ("true" if fail else "false")
    topic, out, group = "loss-" + name, "out-" + name, "kafka-loss-" + name
    create_topics(c.admin(), {topic: 1}, config={"segment.bytes": str(MIB),
                                                 "retention.bytes": str(MIB)})
    create_topics(c.admin(), {out: 1})
    check("%s: the first %d records are written" % (name, FIRST), produce(b, 0, FIRST, topic))
    path = write(os.path.join(WORK, name + ".json"), pipeline(b, group, topic, out, slow=True))
    proc, lines = start_run([path, "--set", "source.failOnDataLoss=%s" % str(fail).lower()],
                            os.path.join(WORK, name + ".log"))
    read = lambda: sum(p.get("numInputRows", 0)
                       for p in progress_lines("\n".join(lines.snapshot())))
    if not check("%s: the run reads the first records" % name, wait_for(lambda: read() > 0, 60)):
        raise Abort()
    check("%s: %d more records are written at once" % (name, MORE), produce(b, FIRST, MORE, topic))
    if fail:
        try:
            code = proc.wait(timeout=120 * MULT)
        except Exception:
            code = None
        err = open(os.path.join(WORK, name + ".log")).read()
        m = re.search(r"%s/0: the next offset to read was (\d+) but the log now starts at "
                      r"(\d+): (\d+) record\(s\) were deleted" % re.escape(topic), err)
        check("%s: the run fails by itself (exit 1) naming the expected offset and the log "
              "start" % name, code == 1 and m is not None, (code, err[-800:]))
        if not m:
            return
        expected, start, gone = int(m.group(1)), int(m.group(2)), int(m.group(3))
        check("%s: expected %d, log start %d: %d records gone" % (name, expected, start, gone),
              gone == start - expected and expected < start)
        got = outputs(b, out)
        check("%s: the outputs are exactly offsets [0,%d), once each" % (name, expected),
              got == list(range(expected)), "%d outputs" % len(got))
        done = committed(b, group, topic, [0])[0]
        check("%s: the group committed no further than the gap (%d <= %d)" %
              (name, done, expected), 0 < done <= expected)
        return
    cons = Consumer({"bootstrap.servers": b, "group.id": "kafka-loss-probe"})
    end = FIRST + MORE
    ok, got = wait_committed(b, group, topic, [0], {0: end}, 180)
    check("%s: the run goes on to the end %d (committed)" % (name, end), ok, got)
    start = log_range(cons, topic)[0]
    cons.close()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=60 * MULT)
    except Exception:
        code = None
    check("%s: SIGTERM: exit 0" % name, code == 0, code)
    num_lost = sum(p.get("numLostRows", 0) for p in progress_lines("\n".join(lines.snapshot())))
    got = outputs(b, out)
    lost = sorted(set(range(end)) - set(got))
    check("%s: retention overtook the run: %d records lost, log start %d" %
          (name, len(lost), start), len(lost) > 0 and start > FIRST)
    check("%s: every offset is in the outputs once or counted lost (numLostRows %d = %d "
          "missing)" % (name, num_lost, len(lost)),
          len(got) == len(set(got)) and num_lost == len(lost), (len(got), num_lost, len(lost)))
    # Retention may delete in more than one pass while the run reads (a range
    # lost, some records read, another range lost): every lost offset lies below
    # the log start, and each gap is one the run reported.
    gaps = [i for i in range(1, len(lost)) if lost[i] != lost[i - 1] + 1]
    warned = len(re.findall(r"record\(s\) were deleted before they were read",
                            open(os.path.join(WORK, name + ".log")).read()))
    check("%s: the lost offsets lie below the log start, in %d range(s), each warned about"
          % (name, len(gaps) + 1),
          bool(lost) and lost[-1] < start and warned >= len(gaps) + 1,
          (lost[:1], lost[-1:], start, len(gaps) + 1, warned))


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

        lost_while_running(c, fail=True)
        lost_while_running(c, fail=False)


run_test(main)
