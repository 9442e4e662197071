"""Real Kafka: routing and the DLQ end to end on a 3-node cluster (replication factor 3,
min.insync.replicas 2), read back by an independent client.

`sluice produce` writes order events (5% malformed) to orders; `sluice run` (availableNow,
no schema: values pass unchanged) routes them by priority. Checks, record by record: each
valid source record is in the output topic of its priority exactly once, with the source's
key, value and headers byte-equal; each invalid one is in the DLQ with its key, value and
headers byte-equal, its source topic/partition/offset and a reason; nothing else is
written; the group's committed offsets are the source's end offsets; a second run
reads nothing. The same checks once more with the order schema (typed values, rendered).

Usage: scripts/kafka.sh python tests/kafka/routing_test.py PATH/TO/sluice
"""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kafka_support import (Abort, check, Cluster, committed, create_topics, DLQ,  # noqa: E402
                           end_offsets, install_cleanup, is_valid_order, outputs_named,
                           pipeline_text, progress_lines, read_topic, run_test, sluice,
                           write)

WORK = tempfile.mkdtemp(prefix="sluice-kafka-routing-")
install_cleanup(WORK)
COUNT = 20000
PARTITIONS = 6


def check_run(c, name, group, schema):
    """One pipeline, writing to topics of its own (orders-high-NAME, ..., orders-dlq-NAME)."""
    bootstrap = c.bootstrap()
    outputs, dlq_topic = outputs_named("-" + name), DLQ + "-" + name
    create_topics(c.admin(), {t: 4 for t in outputs.values()}, replication=3,
                  config={"min.insync.replicas": "2"})
    create_topics(c.admin(), {dlq_topic: 2}, replication=3, config={"min.insync.replicas": "2"})
    pipeline = write(os.path.join(WORK, name + ".json"),
                     pipeline_text(name, bootstrap, group, schema=schema, outputs=outputs,
                                   dlq=dlq_topic))
    r = sluice(["run", pipeline])
    check("%s: sluice run (availableNow) exits 0" % name, r.returncode == 0,
          r.stderr[-2000:])
    progress = progress_lines(r.stdout)
    out_rows = sum(p["sink"]["numOutputRows"] for p in progress)
    dlq_rows = sum(p["numDlqRows"] for p in progress)

    source = read_topic(bootstrap, "orders")
    written = {t: read_topic(bootstrap, t) for t in outputs.values()}
    dlq = read_topic(bootstrap, dlq_topic)
    check("%s: source holds %d records" % (name, COUNT), len(source) == COUNT, len(source))

    # Expected placement of each source record, by its (partition, offset).
    want_out, want_dlq = {}, {}
    for s in source:
        if is_valid_order(s.value, typed=schema):
            want_out[(s.partition, s.offset)] = s
        else:
            want_dlq[(s.partition, s.offset)] = s
    by_cid = {s.header("correlation-id"): (s.partition, s.offset) for s in source}

    misplaced, changed, seen = [], [], {}
    for topic, recs in written.items():
        for r_ in recs:
            where = by_cid.get(r_.header("correlation-id"))
            s = want_out.get(where)
            if s is None or outputs[json.loads(s.value)["priority"]] != topic:
                misplaced.append((topic, r_.partition, r_.offset))
                continue
            seen[where] = seen.get(where, 0) + 1
            value_ok = (r_.value == s.value if not schema else
                        json.loads(r_.value) == json.loads(s.value))
            if r_.key != s.key or r_.headers != s.headers or not value_ok \
                    or r_.timestamp != s.timestamp:
                changed.append(where)
    check("%s: every output record is a valid source record in its priority's topic"
          % name, not misplaced, misplaced[:5])
    check("%s: each valid record is written exactly once (%d)" % (name, len(want_out)),
          len(seen) == len(want_out) and all(n == 1 for n in seen.values()),
          "%d of %d, %d repeated" % (len(seen), len(want_out),
                                     sum(1 for n in seen.values() if n > 1)))
    check("%s: outputs keep the source key, value%s, headers and timestamp" %
          (name, " (typed fields)" if schema else " bytes"), not changed, changed[:5])

    dlq_seen, dlq_bad = {}, []
    for d in dlq:
        where = (int(d.header("sluice.source.partition")), int(d.header("sluice.source.offset")))
        s = want_dlq.get(where)
        own = tuple(h for h in d.headers if not h[0].startswith("sluice."))
        if (s is None or d.header("sluice.source.topic") != b"orders" or d.key != s.key
                or d.value != s.value or own != s.headers or not d.header("sluice.error.type")):
            dlq_bad.append(where)
        dlq_seen[where] = dlq_seen.get(where, 0) + 1
    check("%s: each invalid record is in the DLQ once, bytes and headers unchanged, with "
          "its source and reason (%d)" % (name, len(want_dlq)),
          not dlq_bad and len(dlq_seen) == len(want_dlq)
          and all(n == 1 for n in dlq_seen.values()),
          "bad %s, %d of %d" % (dlq_bad[:5], len(dlq_seen), len(want_dlq)))
    check("%s: progress counts match (%d outputs, %d DLQ)" % (name, out_rows, dlq_rows),
          out_rows == len(want_out) and dlq_rows == len(want_dlq))
    ends = end_offsets(bootstrap, "orders")
    got = committed(bootstrap, group, "orders", list(ends))
    check("%s: the group committed the end offsets" % name, got == ends, (got, ends))

    again = sluice(["run", pipeline])
    again_rows = sum(p["numInputRows"] for p in progress_lines(again.stdout))
    check("%s: a second run exits 0 and reads nothing" % name,
          again.returncode == 0 and again_rows == 0, (again.returncode, again_rows))


def main():
    with Cluster(os.path.join(WORK, "cluster"), nodes=3) as c:
        admin = c.admin()
        create_topics(admin, {"orders": PARTITIONS}, replication=3,
                      config={"min.insync.replicas": "2"})
        r = sluice(["produce", "--bootstrap", c.bootstrap(), "--topic", "orders", "--count",
                    str(COUNT), "--malformed-fraction", "0.05", "--seed", "11"])
        if not check("sluice produce writes %d events to a real cluster" % COUNT,
                     r.returncode == 0, r.stderr[-1000:]):
            raise Abort()
        check_run(c, "raw", "kafka-routing-raw", schema=False)
        check_run(c, "typed", "kafka-routing-typed", schema=True)


run_test(main)
