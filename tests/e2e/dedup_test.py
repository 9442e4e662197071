#!/usr/bin/python3
"""End-to-end: the dedup stage survives a SIGKILL, checked by an independent client.

`sluice produce --duplicate-fraction` writes order events, a fifth of them re-sent
(same key and value, a later offset), while a continuous `sluice run` with dedup on
order_id processes them. Once it has read a good part, it is killed with SIGKILL: its
RocksDB memtables (the WAL is off) and its uncommitted work are lost. A second run
(availableNow, same group, same state directory) restores the state from the changelog
and finishes. Checks, with python3-confluent-kafka reading the topics: every event
(by correlation id) is in an output topic or the DLQ, nothing lost; re-sent events
were dropped (the outputs hold far fewer copies than were sent); the second run
restored state from the changelog and still dropped duplicates of events the first
run wrote; the group committed the end of the input. Then the state directory is
damaged (its CURRENT file emptied): without a changelog a run exits 1 at start saying
what is damaged and what to delete; with it, a run moves the directory aside, rebuilds
the state from the changelog, drops exactly the re-sends of stored keys among the 500
events written again (computed from the input and the outputs), and exits 0.

Usage: dedup_test.py PATH/TO/sluice
Prints one line per check and closes with 'N passed, N failed'.
"""
import collections
import glob
import json
import os
import re
import sys
import tempfile
import time

from confluent_kafka import Consumer, TopicPartition

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_support import (MULT, check, install_cleanup, procs, read_all, reap,
                         run_test, start, start_broker, start_run, stop_broker, wait_for,
                         write_pipeline)

WORK = tempfile.mkdtemp(prefix="sluice-e2e-dedup-")
install_cleanup(WORK, broker_first=True)

COUNT = 20000
RATE = 4000          # records/s: producing lasts ~5 s, past the kill
DUPLICATES = 0.2
GROUP = "e2e-dedup"
OUTPUTS = ["orders-high", "orders-medium", "orders-low"]
DLQ = "orders-dlq"


def correlation_id(m):
    return dict(m.headers() or []).get("correlation-id")


def order_id(m):
    """The record's order_id (dedup.key), None when its value has none."""
    try:
        v = json.loads(m.value())
    except (TypeError, ValueError):
        return None
    return v.get("order_id") if isinstance(v, dict) else None


def main():
    broker, bootstrap = start_broker(
        1, ["orders:4", "orders-high:2", "orders-medium:2", "orders-low:2", "orders-dlq:1"],
        os.path.join(WORK, "bootstrap"))
    state = os.path.join(WORK, "state")
    dedup = ('"dedup": {"key": ["order_id"], "within": "1 hour", "stateDir": "%s"},\n'
             % state)
    pipeline = write_pipeline(os.path.join(WORK, "p.json"), "e2e-dedup", bootstrap, GROUP,
                              dedup + '  "trigger": {"processingTime": "500 milliseconds"}')
    producer = start(["produce", "--bootstrap", bootstrap, "--topic", "orders", "--count",
                      str(COUNT), "--rate", str(RATE), "--malformed-fraction", "0.02",
                      "--duplicate-fraction", str(DUPLICATES), "--seed", "5"],
                     stdout=open(os.path.join(WORK, "produce.out"), "w"))

    # -- a continuous run, killed with SIGKILL midway --------------------------------------
    first, lines = start_run([pipeline], os.path.join(WORK, "first.log"))

    def read_so_far():
        n = 0
        for line in lines.snapshot():
            if line.startswith("{"):
                n += json.loads(line).get("numInputRows", 0)
        return n

    reached = wait_for(lambda: read_so_far() >= COUNT // 3, 60)
    first.kill()
    first.wait(timeout=10)
    check("the first run is killed with SIGKILL after reading %d records" % read_so_far(),
          reached and first.returncode == -9, first.returncode)
    check("sluice produce ends and reports the duplicates it sent",
          producer.wait(timeout=60 * MULT) == 0)
    produced = open(os.path.join(WORK, "produce.out")).read()
    sent = re.search(r"(\d+) duplicates", produced)
    check("sluice produce says how many events it re-sent", sent is not None, produced)

    # -- a second run resumes from the commits and the changelog ---------------------------
    second, second_lines = start_run(
        [pipeline, "--set", 'trigger={"availableNow": true}'],
        os.path.join(WORK, "second.log"))
    try:
        code = second.wait(timeout=120 * MULT)
    except Exception:
        reap(second)
        code = None
    log = open(os.path.join(WORK, "second.log")).read()
    check("the second run exits 0", code == 0, log[-2000:])
    restored = sum(int(n) for n in re.findall(r"(\d+) change\(s\) restored from", log))
    check("the second run restored dedup state from the changelog (%d changes)" % restored,
          restored > 0, log[-2000:])
    ended = re.search(r"dedup: (\d+) duplicate\(s\) dropped", log)
    check("the second run drops duplicates and says so",
          ended is not None and int(ended.group(1)) > 0, log[-1500:])

    # -- what an independent client reads ---------------------------------------------------
    inputs = read_all(bootstrap, "orders")
    check("the input holds every produced event", len(inputs) == COUNT, len(inputs))
    wanted = set(correlation_id(m) for m in inputs)
    resent = len(inputs) - len(wanted)
    outputs = [m for t in OUTPUTS for m in read_all(bootstrap, t)]
    dead = read_all(bootstrap, DLQ)
    got = set(correlation_id(m) for m in outputs) | set(correlation_id(m) for m in dead)
    missing = wanted - got
    check("every event is in an output topic or the DLQ: nothing lost",
          not missing, "%d missing, e.g. %s" % (len(missing), sorted(missing)[:5]))
    copies = collections.Counter(correlation_id(m) for m in outputs)
    extra = sum(n - 1 for n in copies.values())
    # At-least-once: what the killed run wrote but had not committed is written again
    # (at most what it had read). Without dedup, every re-sent event would be extra too.
    print("re-sent events: %d; output copies beyond the first: %d; DLQ records: %d"
          % (resent, extra, len(dead)), flush=True)
    check("re-sent events are dropped: extra output copies (%d) stay below the re-sent "
          "events (%d)" % (extra, resent), resent > 1000 and extra < resent // 2)

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP})
    committed = c.committed([TopicPartition("orders", p) for p in range(4)], timeout=10)
    ends = [c.get_watermark_offsets(TopicPartition("orders", p), timeout=10)[1]
            for p in range(4)]
    c.close()
    check("the group committed the end of the input",
          [tp.offset for tp in committed] == ends, (committed, ends))
    check("the state directory holds RocksDB files",
          os.path.exists(os.path.join(state, "CURRENT")))

    # -- a damaged state directory ----------------------------------------------------------
    open(os.path.join(state, "CURRENT"), "w").close()  # emptied: RocksDB finds it corrupt

    def run_to_end(extra, log_name):
        p, _ = start_run([pipeline, "--set", 'trigger={"availableNow": true}'] + extra,
                         os.path.join(WORK, log_name))
        try:
            code = p.wait(timeout=120 * MULT)
        except Exception:
            reap(p)
            code = None
        return code, open(os.path.join(WORK, log_name)).read()

    code, log = run_to_end(["--set", "dedup.changelog=false"], "damaged-local.log")
    check("without a changelog, a damaged state fails the run at start: exit 1, saying "
          "what is damaged and what to delete",
          code == 1 and ("`%s` is damaged" % state) in log and ("delete `%s`" % state) in log,
          (code, log[-1500:]))
    check("... and leaves the directory as it was", not glob.glob(state + ".damaged-*"))
    resend = start(["produce", "--bootstrap", bootstrap, "--topic", "orders", "--count", "500",
                    "--malformed-fraction", "0.02", "--seed", "5"],
                   stdout=open(os.path.join(WORK, "resend.out"), "w"))
    check("sluice produce writes the first 500 events again", resend.wait(timeout=60 * MULT) == 0)
    code, log = run_to_end([], "damaged.log")
    aside = glob.glob(state + ".damaged-*")
    check("with the changelog, a damaged state is moved aside with a warning, rebuilt, and "
          "the run exits 0",
          code == 0 and len(aside) == 1 and ("moved to `%s`" % aside[0]) in log,
          (code, aside, log[-1500:]))
    rebuilt = sum(int(n) for n in re.findall(r"(\d+) change\(s\) restored from", log))
    dropped = re.search(r"dedup: (\d+) duplicate\(s\) dropped", log)
    # Which re-sent records the rebuilt state must drop: those byte-equal to a valid
    # record (one in an output topic) that came before in the same input partition with
    # the same order_id. Dedup is per input partition; an order_id the first 500 slots
    # never carried (a slot that held a re-send then) is new and passes.
    old_positions = set((m.partition(), m.offset()) for m in inputs)
    resent_now = [m for m in read_all(bootstrap, "orders")
                  if (m.partition(), m.offset()) not in old_positions]
    valid_ids = set(correlation_id(m) for m in outputs)
    stored = {}
    for m in inputs:
        if correlation_id(m) in valid_ids:
            stored[(m.partition(), order_id(m))] = m.value()
    expected = sum(1 for m in resent_now
                   if stored.get((m.partition(), order_id(m))) == m.value())
    print("written again: %d events, %d of them valid re-sends of a stored key"
          % (len(resent_now), expected), flush=True)
    check("... 500 events were written again, %d of them valid re-sends of a key the "
          "state held" % expected, len(resent_now) == 500 and expected > 0,
          (len(resent_now), expected))
    check("... from the changelog (%d changes): exactly the %d valid re-sends of stored keys "
          "are dropped (%s)" % (rebuilt, expected, dropped and dropped.group(1)),
          rebuilt > 0 and dropped is not None and int(dropped.group(1)) == expected,
          log[-1500:])
    stop_broker(broker)


run_test(main)
