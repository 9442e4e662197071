"""Real Kafka: `sluice enrich` with its table on a compacted topic of a real broker.

customers (compacted, 3 partitions) holds a row per customer, then deletes (tombstones) of
every 10th and new rows for every 7th; orders (4 partitions) 5,000 orders by
`sluice produce`. Checks, read back with confluent-kafka:
1. enrich --available-now: each valid order whose customer has a row is in the output
   once with the latest row's fields; orders of deleted customers and malformed ones are
   in the DLQ; the group committed the ends.
2. The state directory lost: the next run restores the whole table from the topic (as
   many records as the topic holds) and joins the same way; also with the group of a run
   that read the table to its end (the store decides, not the group's commits).

Usage: scripts/kafka.sh python tests/kafka/enrich_test.py PATH/TO/sluice
"""
import json
import os
import re
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kafka_support import (check, Cluster, committed, create_topics,  # noqa: E402
                           end_offsets, install_cleanup, read_topic, run_test, sluice)
from confluent_kafka import Producer  # noqa: E402

WORK = tempfile.mkdtemp(prefix="sluice-kafka-enrich-")
install_cleanup(WORK)


def table_rows():
    """What the test writes, in order, and the latest row of each key (None: deleted)."""
    writes, latest = [], {}
    for i in range(4000):
        row = {"name": "N%d" % i, "tier": "gold" if i % 2 else "silver"}
        writes.append(("cust-%d" % i, row))
    for i in range(0, 4000, 10):
        writes.append(("cust-%d" % i, None))
    for i in range(0, 4000, 7):
        writes.append(("cust-%d" % i, {"name": "New%d" % i, "tier": "platinum"}))
    for k, row in writes:
        latest[k] = row
    return writes, latest


def identity(v):
    return json.dumps({k: x for k, x in v.items() if k not in ("name", "tier")},
                      sort_keys=True)


def check_run(c, name, state, latest):
    bootstrap = c.bootstrap()
    out = "enriched-" + name
    create_topics(c.admin(), {out: 4})
    r = sluice(["enrich", "--bootstrap", bootstrap, "--topic", "orders", "--table",
                "customers", "--key-field", "customer_id", "--to", out, "--dlq",
                "dlq-" + name, "--group", "kafka-enrich-" + name, "--state-dir", state,
                "--available-now"])
    check("%s: enrich --available-now exits 0" % name, r.returncode == 0, r.stderr[-1500:])
    want, want_dead = {}, set()
    for o in read_topic(bootstrap, "orders"):
        try:
            v = json.loads(o.value.decode())
            assert isinstance(v, dict)
        except Exception:
            want_dead.add((o.partition, o.offset))
            continue
        row = latest.get(v.get("customer_id"))
        if row is None:
            want_dead.add((o.partition, o.offset))
        else:
            want[identity(v)] = dict(v, **{k: x for k, x in row.items() if k not in v})
    got, wrong = {}, []
    for x in read_topic(bootstrap, out):
        v = json.loads(x.value)
        if want.get(identity(v)) != v:
            wrong.append(v)
        got[identity(v)] = got.get(identity(v), 0) + 1
    check("%s: each order with a row is joined once with its latest row (%d)"
          % (name, len(want)), not wrong and set(got) == set(want)
          and all(n == 1 for n in got.values()), (wrong[:2], len(got), len(want)))
    dead = {(int(d.header("sluice.source.partition")), int(d.header("sluice.source.offset")))
            for d in read_topic(bootstrap, "dlq-" + name)}
    check("%s: orders of deleted customers and malformed ones are in the DLQ (%d)"
          % (name, len(want_dead)), want_dead and dead == want_dead,
          (len(dead), len(want_dead)))
    ends = end_offsets(bootstrap, "orders")
    got_committed = committed(bootstrap, "kafka-enrich-" + name, "orders", list(ends))
    check("%s: the group committed the ends" % name, got_committed == ends,
          (got_committed, ends))
    restored = re.search(r"restored: (\d+) record\(s\) read", r.stderr)
    return int(restored.group(1)) if restored else -1


def main():
    with Cluster(os.path.join(WORK, "cluster"), nodes=1) as c:
        bootstrap = c.bootstrap()
        create_topics(c.admin(), {"orders": 4})
        create_topics(c.admin(), {"customers": 3}, config={"cleanup.policy": "compact"})
        create_topics(c.admin(), {"dlq-first": 1, "dlq-lost": 1})
        writes, latest = table_rows()
        p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
        for key, row in writes:
            p.produce("customers", key=key.encode(),
                      value=None if row is None else json.dumps(row).encode())
        p.flush(30)
        r = sluice(["produce", "--bootstrap", bootstrap, "--topic", "orders", "--count",
                    "5000", "--malformed-fraction", "0.02"])
        check("sluice produce writes 5,000 orders", r.returncode == 0, r.stderr[-500:])
        state = os.path.join(WORK, "state")
        first = check_run(c, "first", state, latest)
        held = sum(end_offsets(bootstrap, "customers").values())
        check("the first run restores the table from the topic (%d records)" % held,
              first == held, first)
        shutil.rmtree(state)
        lost = check_run(c, "lost", state, latest)
        check("with the state lost, the table is restored from the topic again (%d)" % held,
              lost == held, lost)
        # The same group as the first run, whose table group committed the table's end:
        # the store, not those commits, says where the table starts.
        shutil.rmtree(state)
        r = sluice(["enrich", "--bootstrap", bootstrap, "--topic", "orders", "--table",
                    "customers", "--key-field", "customer_id", "--to", "enriched-first",
                    "--dlq", "dlq-first", "--group", "kafka-enrich-first", "--state-dir",
                    state, "--available-now"])
        again = re.search(r"restored: (\d+) record\(s\) read", r.stderr)
        check("the state lost, with the group of a run that read the table: restored from "
              "the topic's start, not from the group's commits (%d)" % held,
              r.returncode == 0 and again and int(again.group(1)) == held,
              r.stderr[-800:])


run_test(main)
