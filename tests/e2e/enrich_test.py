#!/usr/bin/python3
"""End-to-end: `sluice enrich` (a stream joined with a table from a compacted topic).

`sluice broker` hosts orders (3 partitions), customers (2), enriched (3) and en-dlq. The
table: a row per customer cust-0..cust-4999, then a tombstone for cust-3 and a new row
for cust-4 (written with confluent-kafka). The stream: 3,000 orders from `sluice produce`
(2% malformed). Checks, read back with confluent-kafka:
1. --available-now, --missing dlq: every valid order whose customer has a row is in
   enriched once, its value the order's fields plus the row's (cust-4's newest row);
   cust-3's orders (deleted) and the malformed ones are in en-dlq with their reasons.
2. Run again on the same --state-dir: the table is not read again (0 records restored).
3. --missing null --table-fields name,tier: cust-3's orders pass with name and tier null.
4. Live: a continuous enrich; a row for cust-7 changes, and once the table's group has
   read the change, an order of cust-7 is written: it is joined with the new row.

Usage: enrich_test.py PATH/TO/sluice
"""
import json
import os
import re
import subprocess
import sys
import tempfile

from confluent_kafka import Consumer, Producer, TopicPartition

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_support import (MULT, SLUICE, check, install_cleanup,  # noqa: E402
                         read_all, start, start_broker, stop_broker, wait_for, run_test)

WORK = tempfile.mkdtemp(prefix="sluice-e2e-enrich-")
install_cleanup(WORK, broker_first=True)


def enrich(bootstrap, group, state, *extra, out="enriched"):
    return subprocess.run([SLUICE, "enrich", "--bootstrap", bootstrap, "--topic", "orders",
                           "--table", "customers", "--key-field", "customer_id", "--to", out,
                           "--dlq", "en-dlq", "--group", group, "--state-dir",
                           os.path.join(WORK, state), "--kafka", "session.timeout.ms=6000"]
                          + list(extra), capture_output=True, text=True, timeout=120 * MULT)


def identity(v):
    """An order, told apart from the others by its own fields (some have no order_id)."""
    return json.dumps({k: x for k, x in v.items() if k not in ("name", "tier")},
                      sort_keys=True)


def first_rows():
    return {"cust-%d" % i: {"name": "N%d" % i, "tier": "gold" if i % 2 else "silver"}
            for i in range(5000)}


def rows():
    """The table as the test wrote it: the latest row of each key (None: deleted)."""
    table = first_rows()
    table["cust-3"] = None
    table["cust-4"] = {"name": "New4", "tier": "platinum"}
    return table


def main():
    broker, bootstrap = start_broker(3, ["orders:3", "customers:2", "enriched:3", "en-dlq:1",
                                         "nulls:3", "live:3"],
                                     os.path.join(WORK, "bootstrap"))
    p = Producer({"bootstrap.servers": bootstrap})
    for key, row in first_rows().items():
        p.produce("customers", key=key.encode(), value=json.dumps(row).encode())
    p.produce("customers", key=b"cust-3", value=None)  # delete
    p.produce("customers", key=b"cust-4", value=json.dumps(rows()["cust-4"]).encode())
    p.flush(30)
    r = subprocess.run([SLUICE, "produce", "--bootstrap", bootstrap, "--topic", "orders",
                        "--count", "3000", "--malformed-fraction", "0.02"],
                       capture_output=True, timeout=60 * MULT)
    check("3,000 orders produced", r.returncode == 0, r.stderr[-500:])
    # Every 50th order is for cust-3, whose row is deleted.
    for i in range(60):
        p.produce("orders", key=b"cust-3",
                  value=json.dumps({"order_id": "del-%d" % i, "customer_id": "cust-3"}).encode())
    p.flush(30)

    table = rows()
    orders = read_all(bootstrap, "orders")
    want, want_dead = {}, set()
    for o in orders:
        try:
            v = json.loads(o.value().decode())
            assert isinstance(v, dict)
        except Exception:
            want_dead.add((o.partition(), o.offset()))
            continue
        row = table.get(v.get("customer_id"))
        if row is None:
            want_dead.add((o.partition(), o.offset()))
        else:
            want[identity(v)] = dict(v, **{k: x for k, x in row.items() if k not in v})

    r = enrich(bootstrap, "e2e-enrich", "state", "--available-now")
    check("enrich --available-now exits 0", r.returncode == 0, r.stderr[-1500:])
    got, wrong = {}, []
    for x in read_all(bootstrap, "enriched"):
        v = json.loads(x.value())
        if want.get(identity(v)) != v:
            wrong.append(v)
        got[identity(v)] = got.get(identity(v), 0) + 1
    check("each order with a row is in enriched once with the row's fields (%d)" % len(want),
          not wrong and set(got) == set(want) and all(n == 1 for n in got.values()),
          (wrong[:2], len(got), len(want)))
    dlq = [dict(x.headers()) for x in read_all(bootstrap, "en-dlq")]
    strays = [h for h in dlq if h["sluice.source.topic"] != b"orders"]
    check("nothing of the table is in en-dlq", not strays, strays[:3])
    dead = {(int(h["sluice.source.partition"]), int(h["sluice.source.offset"])) for h in dlq
            if h["sluice.source.topic"] == b"orders"}
    check("deleted rows' orders and malformed ones are in en-dlq (%d)" % len(want_dead),
          dead == want_dead, (sorted(dead - want_dead)[:5], sorted(want_dead - dead)[:5]))

    r = enrich(bootstrap, "e2e-enrich-2", "state", "--available-now", out="enriched")
    restored = re.search(r"restored: (\d+) record\(s\) read", r.stderr)
    check("run again on the same state: the table is not read again",
          r.returncode == 0 and restored and restored.group(1) == "0", r.stderr[-800:])

    r = enrich(bootstrap, "e2e-enrich-nulls", "state-nulls", "--available-now", "--missing",
               "null", "--table-fields", "name,tier", out="nulls")
    passed = [json.loads(x.value()) for x in read_all(bootstrap, "nulls")]
    deleted = [v for v in passed if v.get("customer_id") == "cust-3"]
    check("--missing null: the deleted customer's orders pass with name and tier null",
          r.returncode == 0 and len(deleted) >= 60
          and all(v["name"] is None and v["tier"] is None for v in deleted), r.stderr[-800:])

    live = start(["enrich", "--bootstrap", bootstrap, "--topic", "orders", "--table",
                  "customers", "--key-field", "customer_id", "--to", "live", "--dlq",
                  "en-dlq", "--group", "e2e-enrich-live", "--state-dir",
                  os.path.join(WORK, "state"), "--starting-offsets", "latest", "--kafka",
                  "session.timeout.ms=6000"],
                 stdout=subprocess.DEVNULL, stderr=open(os.path.join(WORK, "live.log"), "w"))
    # The live table has its partitions once its group committed where it starts.
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "e2e-enrich-live-table",
                  "enable.auto.commit": False})
    tps = [TopicPartition("customers", q) for q in range(2)]
    ends = [c.get_watermark_offsets(tp, timeout=10)[1] for tp in tps]
    committed_at = lambda: [tp.offset for tp in c.committed(tps, timeout=10)]
    ready = wait_for(lambda: committed_at() == ends, 60)
    p.produce("customers", key=b"cust-7", value=json.dumps({"name": "Live7", "tier": "x"}).encode())
    p.flush(30)
    after = [c.get_watermark_offsets(tp, timeout=10)[1] for tp in tps]
    applied = wait_for(lambda: committed_at() == after, 60)
    # The stream reads too once its group committed where it starts (it starts at the
    # end, --starting-offsets latest): an order written after that is joined.
    s = Consumer({"bootstrap.servers": bootstrap, "group.id": "e2e-enrich-live",
                  "enable.auto.commit": False})
    stream_ready = wait_for(lambda: all(
        tp.offset >= 0 for tp in s.committed([TopicPartition("orders", q) for q in range(3)],
                                             timeout=10)), 60)
    s.close()
    p.produce("orders", key=b"cust-7",
              value=json.dumps({"order_id": "live-1", "customer_id": "cust-7"}).encode())
    p.flush(30)
    joined = []
    wait_for(lambda: joined.extend(json.loads(x.value()) for x in read_all(bootstrap, "live"))
             or joined, 60)
    c.close()
    check("live: a row changed while running is what the next order is joined with",
          ready and applied and stream_ready
          and joined == [{"order_id": "live-1", "customer_id": "cust-7", "name": "Live7",
                          "tier": "x"}], (ready, applied, joined))
    live.terminate()
    check("the live enrich exits 0 on SIGTERM", live.wait(timeout=60 * MULT) == 0)
    stop_broker(broker)


run_test(main)
