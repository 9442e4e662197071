"""Real Kafka: bounded runs over a source written by transactional producers (the embedded
broker accepts transactions but writes no markers and aborts nothing), record by record.

Topic `tx`, 3 partitions. Two transactional producers (independent client) interleave their
transactions: in each round both begin, write alternately into every partition, then one
commits and the other aborts (which one alternates), so committed, aborted records and
their markers are mixed in every partition. Then a third producer opens a transaction on
partitions 0 and 1, writes into it and leaves it open; after it, a committed transaction
writes into every partition (above the open one's first offset: not stable yet).

Run 1, `availableNow`, while the transaction is open: Sluice reads with
isolation.level=read_committed, and its ends are the last stable offsets: it exits 0 without
waiting for the open transaction; its outputs are exactly the committed records below each
partition's last stable offset (no aborted one); the group's committed offsets are the last
stable offsets of partitions 0 and 1 and, for partition 2, the end of the log (past the
final marker). The same with maxOffsetsPerTrigger (several capped epochs). Then the open transaction commits. Run 2 reads exactly the committed records
above the first run's ends, and the group ends at the log's end (past the markers)
everywhere. The same source read with kafka.isolation.level=read_uncommitted would output
the aborted records: that run shows the property is what keeps them out.

Last, a continuous run in capped epochs (maxOffsetsPerTrigger) over a partition with an open
transaction: the epochs go on (each closes once the partition is handled up to its last
stable offset), records written to the other partition meanwhile are read and committed,
and once the transaction commits the partition is read to its end.

Usage: scripts/kafka.sh python tests/kafka/transactions_test.py PATH/TO/sluice
"""
import json
import os
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kafka_support import (check, Cluster, committed, Consumer, create_topics,  # noqa: E402
                           install_cleanup, MULT, Producer, progress_lines, read_topic,
                           run_test, sluice, start_run, TopicPartition, wait_for, write)
from offsets import wait_committed  # noqa: E402

WORK = tempfile.mkdtemp(prefix="sluice-kafka-transactions-")
install_cleanup(WORK)
TOPIC = "tx"
PARTITIONS = 3
ROUNDS = 6
PER_TXN = 4  # records per producer, partition and transaction


def txn_producer(bootstrap, tid):
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid,
                  "transaction.timeout.ms": 600000, "linger.ms": 0})
    p.init_transactions(30)
    return p


def pipeline(name, bootstrap, source=None):
    src = {"kafka.bootstrap.servers": bootstrap, "subscribe": TOPIC,
           "startingOffsets": "earliest", "kafka.group.id": "kafka-tx-" + name}
    src.update(source or {})
    return json.dumps({
        "name": "tx-" + name, "source": src,
        "parse": {"format": "json", "required": ["id"]},
        "route": {"topic": "out-" + name},
        "sink": {"kafka.bootstrap.servers": bootstrap, "kafka.acks": "all"},
        "trigger": {"availableNow": True}}, indent=1)


def lso(bootstrap, isolation="read_committed", topic=TOPIC, partitions=PARTITIONS):
    """Each partition's last stable offset: the end a read_committed consumer sees
    (ListOffsets latest under read_committed); with read_uncommitted, the log end."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "kafka-tx-lso",
                  "isolation.level": isolation})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in range(partitions)}
    finally:
        c.close()


def ids(records):
    return sorted(json.loads(r.value)["id"] for r in records)


def run(name, path):
    started = time.time()
    r = sluice(["run", path], timeout=120)
    return r, time.time() - started


def main():
    with Cluster(os.path.join(WORK, "cluster"), nodes=1) as c:
        b = c.bootstrap()
        create_topics(c.admin(), {TOPIC: PARTITIONS, "out-main": 1, "out-uncommitted": 1,
                                  "out-capped": 1})
        a, z = txn_producer(b, "kafka-tx-a"), txn_producer(b, "kafka-tx-z")
        committed_ids, aborted_ids = set(), set()
        for rnd in range(ROUNDS):
            a.begin_transaction()
            z.begin_transaction()
            for p in range(PARTITIONS):
                for k in range(PER_TXN):
                    for prod, who in [(a, "a"), (z, "z")]:
                        rid = "%s-r%d-p%d-%d" % (who, rnd, p, k)
                        prod.produce(TOPIC, json.dumps({"id": rid}).encode(), partition=p)
                        prod.flush(10)  # one record at a time: interleaved in the log
            keep, drop = (a, z) if rnd % 2 == 0 else (z, a)
            keep.commit_transaction(30)
            drop.abort_transaction(30)
            kw, dw = ("a", "z") if rnd % 2 == 0 else ("z", "a")
            for p in range(PARTITIONS):
                for k in range(PER_TXN):
                    committed_ids.add("%s-r%d-p%d-%d" % (kw, rnd, p, k))
                    aborted_ids.add("%s-r%d-p%d-%d" % (dw, rnd, p, k))
        # The open transaction on partitions 0 and 1, then a committed one after it.
        hang = txn_producer(b, "kafka-tx-open")
        hang.begin_transaction()
        open_ids = set()
        for p in (0, 1):
            for k in range(PER_TXN):
                rid = "open-p%d-%d" % (p, k)
                open_ids.add(rid)
                hang.produce(TOPIC, json.dumps({"id": rid}).encode(), partition=p)
        hang.flush(10)
        a.begin_transaction()
        late_ids = set()
        for p in range(PARTITIONS):
            for k in range(PER_TXN):
                rid = "late-p%d-%d" % (p, k)
                late_ids.add(rid)
                a.produce(TOPIC, json.dumps({"id": rid}).encode(), partition=p)
        a.commit_transaction(30)

        ends, stable = lso(b, "read_uncommitted"), lso(b)
        # Which committed records lie below the last stable offsets (read_uncommitted shows
        # every record with its offset; read_committed only the committed ones).
        everything = read_topic(b, TOPIC, isolation="read_uncommitted")
        where = {json.loads(r.value)["id"]: (r.partition, r.offset) for r in everything}
        check("the source holds every record written (%d committed, %d aborted, %d open, "
              "%d after the open one)" % (len(committed_ids), len(aborted_ids),
                                          len(open_ids), len(late_ids)),
              set(where) == committed_ids | aborted_ids | open_ids | late_ids, len(where))
        check("the open transaction holds partitions 0 and 1 below their log end "
              "(last stable %s, end %s)" % (stable, ends),
              stable[0] < ends[0] and stable[1] < ends[1] and stable[2] == ends[2])
        markers = {p: ends[p] - sum(1 for r in everything if r.partition == p)
                   for p in range(PARTITIONS)}
        check("every partition holds transaction markers (offsets without a record: %s)"
              % markers, all(m >= ROUNDS * 2 for m in markers.values()))
        below = {i for i in committed_ids | late_ids if where[i][1] < stable[where[i][0]]}
        above = (committed_ids | late_ids | open_ids) - below

        path = write(os.path.join(WORK, "main.json"), pipeline("main", b))
        r, took = run("main", path)
        check("run 1 (availableNow, a transaction open): exits 0 in %.1f s, without waiting "
              "for it" % took, r.returncode == 0, r.stderr[-1500:])
        out1 = ids(read_topic(b, "out-main"))
        check("run 1: outputs are exactly the %d committed records below the last stable "
              "offsets" % len(below), out1 == sorted(below),
              "aborted %d, missing %d, extra %d" % (
                  len(set(out1) & aborted_ids), len(below - set(out1)),
                  len(set(out1) - below)))
        check("run 1: no aborted record is in the outputs",
              not (set(out1) & aborted_ids))
        rows = sum(p["numInputRows"] for p in progress_lines(r.stdout))
        check("run 1: progress counts %d input rows" % len(below), rows == len(below), rows)
        got = committed(b, "kafka-tx-main", TOPIC, list(range(PARTITIONS)))
        check("run 1: committed offsets are the last stable offsets %s (partition 2: the "
              "log end, past its last marker)" % stable, got == stable, got)

        # The same in capped epochs (each admits up to its share of the ends).
        path_capped = write(os.path.join(WORK, "capped.json"),
                            pipeline("capped", b, {"maxOffsetsPerTrigger": 25}))
        r, took = run("capped", path_capped)
        capped = progress_lines(r.stdout)
        check("run 1 capped (maxOffsetsPerTrigger 25, availableNow): exits 0 in %.1f s after "
              "%d epochs" % (took, len(capped)), r.returncode == 0 and len(capped) > 3,
              r.stderr[-1500:])
        out_capped = ids(read_topic(b, "out-capped"))
        check("run 1 capped: outputs are exactly the committed records below the last "
              "stable offsets", out_capped == sorted(below), len(out_capped))
        got = committed(b, "kafka-tx-capped", TOPIC, list(range(PARTITIONS)))
        check("run 1 capped: committed offsets are the last stable offsets", got == stable, got)

        hang.commit_transaction(30)
        ends = lso(b, "read_uncommitted")
        r, took = run("main", path)
        check("run 2 (the transaction committed): exits 0", r.returncode == 0,
              r.stderr[-1500:])
        out2 = ids(read_topic(b, "out-main"))
        new = sorted(set(out2) - set(out1)) if len(out2) == len(set(out2)) else None
        check("run 2: adds exactly the %d committed records above run 1's ends, each once"
              % len(above), new == sorted(above) and len(out2) == len(out1) + len(above),
              (len(out2), len(out1), len(above)))
        got = committed(b, "kafka-tx-main", TOPIC, list(range(PARTITIONS)))
        check("run 2: committed offsets are the log ends %s, past the final markers" % ends,
              got == ends, got)
        again = sluice(["run", path])
        rows = sum(p["numInputRows"] for p in progress_lines(again.stdout))
        check("run 3: exits 0 and reads nothing", again.returncode == 0 and rows == 0,
              (again.returncode, rows))

        # The control: read_uncommitted (a user's override) outputs the aborted records too.
        path = write(os.path.join(WORK, "uncommitted.json"),
                     pipeline("uncommitted", b, {"kafka.isolation.level": "read_uncommitted"}))
        r, took = run("uncommitted", path)
        out = ids(read_topic(b, "out-uncommitted"))
        check("control: with kafka.isolation.level=read_uncommitted the %d aborted records "
              "are read too (exit 0)" % len(aborted_ids),
              r.returncode == 0 and aborted_ids <= set(out), (r.returncode, len(out)))

        continuous_capped(c)


def continuous_capped(c):
    """A continuous run in capped epochs is not held by a transaction open on one of its
    partitions: an epoch that admitted up to the high watermark closes once the partition
    is handled up to its last stable offset, and the other partitions go on."""
    b = c.bootstrap()
    topic, group = "tx-cont", "kafka-tx-cont"
    create_topics(c.admin(), {topic: 2, "out-cont": 1})
    plain = Producer({"bootstrap.servers": b, "enable.idempotence": True})
    n = [0]

    def put(p, count):
        for _ in range(count):
            plain.produce(topic, json.dumps({"id": "plain-%d" % n[0]}).encode(), partition=p)
            n[0] += 1
        plain.flush(10)

    put(0, 10)
    put(1, 10)
    hang = txn_producer(b, "kafka-tx-cont-open")
    hang.begin_transaction()
    hang.produce(topic, json.dumps({"id": "open-cont"}).encode(), partition=0)
    hang.flush(10)
    put(0, 5)  # above the open transaction: not stable yet
    text = json.loads(pipeline("cont", b, {"maxOffsetsPerTrigger": 5}))
    text["source"]["subscribe"] = topic
    text["source"]["kafka.group.id"] = group
    text["trigger"] = {"processingTime": "300 milliseconds"}
    path = write(os.path.join(WORK, "cont.json"), json.dumps(text))
    log = os.path.join(WORK, "cont.log")
    proc, lines = start_run([path], log)
    ends = lambda: lso(b, "read_uncommitted", topic, 2)
    at = lambda want: wait_committed(b, group, topic, [0, 1], want, 60)
    ok, got = at({0: 10, 1: 10})
    if not check("continuous capped: partition 0 is handled up to its last stable offset 10 "
                 "and partition 1 to its end, while the transaction is open", ok, got):
        print("the run's log so far:\n" + open(log, errors="replace").read()[-4000:],
              flush=True)
    put(1, 12)
    ok, got = at({0: 10, 1: 22})
    check("continuous capped: records written to partition 1 meanwhile are read and "
          "committed in later epochs (not held by the open transaction)", ok, got)
    hang.commit_transaction(30)
    # The coordinator writes the commit marker after it answers: the end is final once
    # nothing is open (the last stable offset is the log end again).
    wait_for(lambda: lso(b, "read_committed", topic, 2) == ends() and ends()[0] > 16, 30)
    end = ends()
    ok, got = at(end)
    check("continuous capped: once the transaction commits, partition 0 goes on to its end "
          "%d (past the marker)" % end[0], ok, (got, end))
    proc.send_signal(signal.SIGTERM)
    check("continuous capped: SIGTERM: exit 0", proc.wait(timeout=60 * MULT) == 0)
    out = ids(read_topic(b, "out-cont"))
    want = sorted(["plain-%d" % i for i in range(n[0])] + ["open-cont"])
    check("continuous capped: outputs are every committed record once (%d)" % len(want),
          out == want, (len(out), len(want)))


run_test(main)
