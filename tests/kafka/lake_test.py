"""Real Kafka: `sluice lake` (Kafka -> files) on a real broker, killed and run again.

1. Kill -9 mid-run: `sluice produce` writes 30,000 order events (2% malformed) to
   orders (4 partitions) at 5,000 a second while a continuous `sluice lake` writes them
   by their order_time; once 5,000 lines are published it is killed with SIGKILL, and a
   second run with --available-now finishes. Read back with confluent-kafka: every record
   with an event date is a line, byte-equal, in exactly one file under its date, each
   file starting with the record its name gives, no file half written or hidden; the
   refused records are in the DLQ; the group committed the end offsets.
2. By Kafka timestamp: records produced with CreateTime timestamps on three days (the
   first and last millisecond of a day among them) land in dt= directories of their UTC
   dates.

Usage: scripts/kafka.sh python tests/kafka/lake_test.py PATH/TO/sluice
"""
import json
import os
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kafka_support import (Abort, MULT, check, Cluster, committed, create_topics,  # noqa: E402
                           end_offsets, install_cleanup, read_topic, run_test, sluice, start,
                           wait_for)
from confluent_kafka import Producer  # noqa: E402
import lake_files  # noqa: E402  (tests/e2e, on the path through kafka_support)

WORK = tempfile.mkdtemp(prefix="sluice-kafka-lake-")
install_cleanup(WORK)
COUNT = 30000
PARTITIONS = 4


def lake(bootstrap, directory, group, topic, log, *extra):
    return start(["lake", "--bootstrap", bootstrap, "--topic", topic, "--dir", directory,
                  "--group", group, "--dlq", "lake-dlq", "--file-records", "1000",
                  "--file-interval", "500ms", "--kafka", "session.timeout.ms=6000"]
                 + list(extra), stdout=subprocess.DEVNULL,
                 stderr=open(os.path.join(WORK, log), "w"))


def finished(p, log):
    try:
        code = p.wait(timeout=180 * MULT)
    except subprocess.TimeoutExpired:
        code = None
    with open(os.path.join(WORK, log)) as f:
        return code, f.read()


def killed_mid_run(c):
    bootstrap = c.bootstrap()
    directory = os.path.join(WORK, "by-event-time")
    producer = start(["produce", "--bootstrap", bootstrap, "--topic", "orders", "--count",
                      str(COUNT), "--rate", "5000", "--malformed-fraction", "0.02"],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    extra = ["--date-field", "order_time"]
    first = lake(bootstrap, directory, "kafka-lake", "orders", "lake-1.log", *extra)

    def lines():
        published, _ = lake_files.scan(os.path.join(directory, "orders"))
        return sum(len(x) for x in published.values())

    mid_run = wait_for(lambda: lines() >= 5000, 120)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    check("the first run published 5,000 lines and was killed with SIGKILL (%d)" % lines(),
          mid_run)
    published, hidden = lake_files.scan(os.path.join(directory, "orders"))
    check("after the kill every visible file is whole lines of JSON (%d files, %d hidden)"
          % (len(published), len(hidden)), not lake_files.half_files(published))
    check("sluice produce wrote %d events" % COUNT, producer.wait(timeout=120 * MULT) == 0)

    second = lake(bootstrap, directory, "kafka-lake", "orders", "lake-2.log",
                  "--available-now", *extra)
    code, log = finished(second, "lake-2.log")
    check("the second run (--available-now) exits 0", code == 0, log[-1500:])
    source = [(r.partition, r.offset, r.value) for r in read_topic(bootstrap, "orders")]
    check("orders holds %d records" % COUNT, len(source) == COUNT, len(source))
    found, n = lake_files.problems(os.path.join(directory, "orders"), source)
    check("every record with an event date is in exactly one whole file, byte-equal, "
          "under its date (%d lines)" % n, not found, found[:5])
    dead = {(int(d.header("sluice.source.partition")), int(d.header("sluice.source.offset")))
            for d in read_topic(bootstrap, "lake-dlq")}
    want = {(p, o) for p, o, v in source if lake_files.event_date(v) is None}
    check("each refused record is in lake-dlq, nothing else (%d)" % len(want),
          want and dead == want, "%d in the DLQ" % len(dead))
    ends = end_offsets(bootstrap, "orders")
    got = committed(bootstrap, "kafka-lake", "orders", list(ends))
    check("the group committed the end offsets", got == ends, (got, ends))


def by_kafka_timestamp(c):
    bootstrap = c.bootstrap()
    directory = os.path.join(WORK, "by-kafka-time")
    day = 86400000
    # The first and the last millisecond of a day, and one between; in the past (a
    # broker refuses timestamps over an hour ahead: log.message.timestamp.after.max.ms).
    start_of_day = 1796256000000 - 7 * day  # 2026-11-26
    stamps = {"2026-11-26": start_of_day, "2026-11-27": start_of_day + day + day // 2,
              "2026-11-28": start_of_day + 3 * day - 1}
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    want, failed = {}, []
    for i in range(300):
        date = sorted(stamps)[i % len(stamps)]
        value = json.dumps({"n": i}).encode()
        p.produce("stamped", value=value, partition=i % 2, timestamp=stamps[date],
                  on_delivery=lambda err, _: err and failed.append(err))
        want[value] = date
    if not check("300 records with CreateTime timestamps are written",
                 p.flush(30) == 0 and not failed, failed[:3]):
        raise Abort()
    r = sluice(["lake", "--bootstrap", bootstrap, "--topic", "stamped", "--dir", directory,
                "--group", "kafka-lake-stamped", "--available-now", "--file-interval",
                "200ms"])
    check("lake --available-now over CreateTime-stamped records exits 0", r.returncode == 0,
          r.stderr[-1500:])
    published, hidden = lake_files.scan(os.path.join(directory, "stamped"))
    placed = {}
    for rel, lines in published.items():
        for line in lines:
            placed.setdefault(line, []).append(rel.split(os.sep)[0][3:])
    check("each record is in the dt= directory of its Kafka timestamp's UTC date (%d)"
          % len(want), not hidden and {v: [d] for v, d in want.items()} == placed,
          "%d placed, e.g. %s; hidden %s; %s" % (len(placed), sorted(placed.items())[:3],
                                                 hidden[:3], r.stderr[-800:]))


def main():
    with Cluster(os.path.join(WORK, "cluster"), nodes=1) as c:
        create_topics(c.admin(), {"orders": PARTITIONS, "lake-dlq": 1, "stamped": 2})
        killed_mid_run(c)
        by_kafka_timestamp(c)


run_test(main)
