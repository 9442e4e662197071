#!/usr/bin/python3
"""Duplicates per rebalance of a plain python3-confluent-kafka consumer on the
embedded broker, in the scenario of tests/integration/rebalance_test.cpp: one
member copies `orders` to `copied` while 30,000 events arrive at 2,000/s; a
second member joins, takes partitions, and leaves again. Each member commits
every 500 ms and, as the client docs advise, synchronously in its on_revoke
callback. The figure to compare with Sluice's (README, Guarantees).

Usage: rebalance_duplicates.py PATH/TO/sluice [--strategy range|cooperative-sticky]
Prints one JSON line: events, copies, duplicates, missing, failed commits.
"""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

from confluent_kafka import Consumer, KafkaException, Producer

SLUICE = os.path.abspath(sys.argv[1])
STRATEGY = sys.argv[3] if len(sys.argv) > 3 and sys.argv[2] == "--strategy" else "range"
EVENTS, RATE = 30000, 2000

work = tempfile.mkdtemp(prefix="sluice-rebalance-")
bs_file = os.path.join(work, "bootstrap")
broker = subprocess.Popen([SLUICE, "broker", "--brokers", "3", "--topic", "orders:4",
                           "--topic", "copied:4", "--bootstrap-file", bs_file],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    deadline = time.time() + 30
    while not (os.path.exists(bs_file) and open(bs_file).read().strip()):
        if time.time() > deadline:
            sys.exit("broker did not start")
        time.sleep(0.05)
    bootstrap = open(bs_file).read().strip().split("=", 1)[1]
    writer = subprocess.Popen([SLUICE, "produce", "--bootstrap", bootstrap, "--topic", "orders",
                               "--count", str(EVENTS), "--rate", str(RATE)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    failed_commits = [0]

    def member(name, stop, holds):
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": "plain-" + STRATEGY,
                      "enable.auto.commit": False, "auto.offset.reset": "earliest",
                      "session.timeout.ms": 6000, "fetch.wait.max.ms": 50,
                      "partition.assignment.strategy": STRATEGY})
        p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})

        def commit():
            p.flush(10)  # outputs first: at-least-once
            try:
                c.commit(asynchronous=False)
            except KafkaException:
                failed_commits[0] += 1

        def on_assign(consumer, parts):
            if parts:
                holds.set()
            if STRATEGY == "cooperative-sticky":
                consumer.incremental_assign(parts)
            else:
                consumer.assign(parts)

        def on_revoke(consumer, parts):
            commit()
            if STRATEGY == "cooperative-sticky":
                consumer.incremental_unassign(parts)
            else:
                consumer.unassign()

        c.subscribe(["orders"], on_assign=on_assign, on_revoke=on_revoke)
        last = time.time()
        while not stop.is_set():
            for m in c.consume(500, 0.1):
                if m.error():
                    continue
                p.produce("copied", m.value(), m.key(), headers=m.headers())
            p.poll(0)
            if time.time() - last >= 0.5:
                commit()
                last = time.time()
        commit()
        c.close()

    stop_a, stop_b = threading.Event(), threading.Event()
    holds_a, holds_b = threading.Event(), threading.Event()
    a = threading.Thread(target=member, args=("a", stop_a, holds_a))
    a.start()
    holds_a.wait(60)
    time.sleep(2)  # a copies for a while alone
    b = threading.Thread(target=member, args=("b", stop_b, holds_b))
    b.start()
    holds_b.wait(60)
    stop_b.set()
    b.join()
    writer.wait()
    time.sleep(8)  # the leave's rebalance ends and a catches up
    stop_a.set()
    a.join()

    # Count copies per correlation id.
    r = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    r.subscribe(["copied"])
    seen, idle = {}, time.time()
    while time.time() - idle < 5:
        for m in r.consume(1000, 0.5):
            if m.error():
                continue
            idle = time.time()
            cid = dict(m.headers() or []).get("correlation-id")
            seen[cid] = seen.get(cid, 0) + 1
    r.close()
    copies = sum(seen.values())
    print(json.dumps({"strategy": STRATEGY, "events": EVENTS, "copies": copies,
                      "duplicates": copies - len(seen), "missing": EVENTS - len(seen),
                      "failed_commits": failed_commits[0]}))
finally:
    broker.terminate()
    broker.wait()
