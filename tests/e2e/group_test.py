#!/usr/bin/python3
"""End-to-end: several `sluice run` processes in one consumer group, against
`sluice broker`, checked by an independent client (python3-confluent-kafka).

More instances than partitions join one group (so some idle), one instance that
holds a partition is killed with SIGKILL while records flow, the survivors take
its partition over, then every survivor is stopped with SIGTERM. Checks: every
survivor (the idle ones too) rejoins the group and exits 0 within a bound; every
valid event is in its output topic and every malformed one in the DLQ, at least
once, and nothing else (duplicates are allowed after a SIGKILL and reported);
the group's committed offsets equal the end offsets of the source.

Usage: group_test.py PATH/TO/sluice
With SLUICE_TEST_BOOTSTRAP set, runs against that cluster instead of starting
`sluice broker` (tests/kafka/group_test.py: real Kafka, topics made beforehand).
Prints one line per check and closes with 'N passed, N failed'.
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback

from confluent_kafka import Consumer, TopicPartition

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_support import (MULT, SCHEMA_WITH_PRODUCT, Abort, check, finish, install_cleanup,
                         is_valid_order, procs, read_all, reap, start, start_broker,
                         start_run, stop_broker, topic_partitions, wait_for, write_pipeline)

WORK = tempfile.mkdtemp(prefix="sluice-e2e-group-")
# A cluster given from outside (the real-Kafka tier) instead of `sluice broker`.
EXTERNAL = os.environ.get("SLUICE_TEST_BOOTSTRAP")
install_cleanup(WORK, broker_first=not EXTERNAL)
# SLUICE_TEST_ASSIGNOR: the group's partition.assignment.strategy (librdkafka's default
# when unset: eager range,roundrobin).
ASSIGNOR = ('"kafka.partition.assignment.strategy": "%s", ' % os.environ["SLUICE_TEST_ASSIGNOR"]
            if os.environ.get("SLUICE_TEST_ASSIGNOR") else "")

PARTITIONS = 4
# Two more instances than partitions: one still idles after one holder is killed,
# so an idle instance lives through both the rebalance and the final SIGTERM.
INSTANCES = PARTITIONS + 2
COUNT = 60000
RATE = 3000            # records/s: producing lasts ~20 s, well past the kill
SEED = 7
GROUP = "e2e-group-test"
OUTPUTS = ["orders-high", "orders-medium", "orders-low"]
DLQ = "orders-dlq"
STOP_BOUND = 20.0      # seconds (x multiplier) for each instance to exit on SIGTERM


def sequence_of(m):
    """Sequence number of an event, from its correlation-id header (None without one)."""
    cid = dict(m.headers() or []).get("correlation-id")
    if cid is None:
        return None
    return int(cid.decode().rsplit("-", 1)[1])


class Seen:
    """Reads the outputs and the DLQ as they grow; the sequence numbers seen so far."""

    def __init__(self, bootstrap):
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": "e2e-watcher",
                           "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        self.c.assign([TopicPartition(t, p, 0) for t in OUTPUTS + [DLQ]
                       for p in topic_partitions(self.c, t)])
        self.seqs = set()

    def poll(self):
        for m in self.c.consume(5000, 0.2):
            if not m.error():
                s = sequence_of(m)
                if s is not None:
                    self.seqs.add(s)
        return self.seqs

    def close(self):
        self.c.close()


# -- logs of one `sluice run` ---------------------------------------------------------
ASSIGNED = re.compile(r" assigned: (.*)$")
REVOKED = re.compile(r" revoked (\d+) partition\(s\)")
HOLDING = re.compile(r" holding: (.*)$")  # after each assignment or revocation


def partitions_in(text):
    """{partition} of a log list such as 'orders/0@12, orders/3@0', 'orders/1' or '(none)'."""
    if text == "(none)":
        return set()
    return {int(x.split("@")[0].split("/")[1]) for x in text.split(", ")}


class Instance:
    def __init__(self, name, pipeline):
        self.name = name
        self.log = os.path.join(WORK, name + ".log")
        self.proc, self.progress = start_run([pipeline], self.log)
        self.mark = 0            # events before this index happened before the kill
        self.exit_seconds = None

    def log_lines(self):
        with open(self.log, errors="replace") as f:
            return f.read().splitlines()

    def events(self):
        """('assigned', {added}), ('revoked', n) and ('holding', {held}) in log order.
        With the cooperative protocol an assignment only adds and a revocation only
        removes: what the member holds is the last 'holding' line."""
        out = []
        for line in self.log_lines():
            a = ASSIGNED.search(line)
            if a:
                out.append(("assigned", partitions_in(a.group(1))))
            r = REVOKED.search(line)
            if r:
                out.append(("revoked", int(r.group(1))))
            h = HOLDING.search(line)
            if h:
                out.append(("holding", partitions_in(h.group(1))))
        return out

    def assignment(self):
        """Partitions held now, or None while not in the group (no assignment since the
        last revocation, or none since the mark)."""
        ev = self.events()[self.mark:]
        kinds = [k for k, _ in ev]
        if "assigned" not in kinds:
            return None
        last_assigned = len(kinds) - 1 - kinds[::-1].index("assigned")
        if "revoked" in kinds[last_assigned:]:
            return None
        held = [p for k, p in ev[last_assigned:] if k == "holding"]
        return held[-1] if held else None

    def processed(self):
        total = 0
        for line in self.progress.snapshot():
            try:
                p = json.loads(line)
                total += p["sink"]["numOutputRows"] + p["numDlqRows"]
            except (ValueError, KeyError, TypeError):
                pass
        return total

    def role(self):
        a = self.assignment()
        if a is None:
            return "not in the group"
        return "idle" if not a else "holds " + ",".join("orders/%d" % p for p in sorted(a))


def group_settled(members):
    """Every member has an assignment and together they hold each partition once."""
    got = [m.assignment() for m in members]
    if any(a is None for a in got):
        return False
    return (sorted(p for a in got for p in a) == list(range(PARTITIONS)))


def describe(members):
    return "; ".join("%s %s" % (m.name, m.role()) for m in members)


try:
    # -- the broker --------------------------------------------------------------------
    bootstrap_file = os.path.join(WORK, "bootstrap")
    if EXTERNAL:
        bootstrap = EXTERNAL
    else:
        broker, bootstrap = start_broker(3, ["orders:%d" % PARTITIONS]
                                         + [t + ":4" for t in OUTPUTS] + [DLQ + ":2"],
                                         bootstrap_file)

    pipeline = write_pipeline(os.path.join(WORK, "pipeline.json"), "e2e-group", bootstrap,
                              GROUP, '"trigger": {"processingTime": "500 milliseconds"},',
                              schema=SCHEMA_WITH_PRODUCT, source_extra=ASSIGNOR)

    # -- the group forms ---------------------------------------------------------------
    members = [Instance("run%d" % (i + 1), pipeline) for i in range(INSTANCES)]
    # Members join one by one; each join costs the embedded broker a rebalance
    # (session.timeout.ms - 1 s), more under load.
    formed = wait_for(lambda: group_settled(members), 60)
    check("%d instances form one group, each partition held once, %d idle" %
          (INSTANCES, INSTANCES - PARTITIONS), formed and
          sum(1 for m in members if m.assignment() == set()) == INSTANCES - PARTITIONS,
          describe(members))
    # Go on with whoever is in the group, so that a member stuck outside it is still
    # signalled (and its hang reported) at the end.
    if not formed and not group_settled([m for m in members if m.assignment() is not None]):
        raise Abort()

    # -- records flow; one holder is killed ------------------------------------------------
    producer = start(["produce", "--bootstrap", bootstrap, "--topic", "orders", "--count",
                      str(COUNT), "--rate", str(RATE), "--malformed-fraction", "0.02",
                      "--seed", str(SEED)],
                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    victim = next(m for m in members if m.assignment())
    flowing = wait_for(lambda: victim.processed() >= 500, 60)
    victim_parts = victim.assignment()
    for m in members:
        m.mark = len(m.events())
    victim.proc.kill()
    killed_at = time.time()
    victim.proc.wait(timeout=10 * MULT)
    survivors = [m for m in members if m is not victim]
    check("SIGKILL lands on %s (holding %s) while records flow (%d processed by it, "
          "producer still writing)" % (victim.name, sorted(victim_parts), victim.processed()),
          flowing and producer.poll() is None, "processed %d, producer exit %s" %
          (victim.processed(), producer.poll()))

    took_over = wait_for(lambda: group_settled([m for m in survivors if m.assignment()
                                                is not None]), 90)
    check("the survivors take over the killed instance's partition (%.1f s after the kill)"
          % (time.time() - killed_at), took_over, describe(survivors))
    rejoined = wait_for(lambda: group_settled(survivors), 15)
    check("every survivor, the idle ones too, is in the group after the rebalance", rejoined,
          "; ".join("%s %s, last log line: %s" % (m.name, m.role(), (m.log_lines() or [""])[-1])
                    for m in survivors if m.assignment() is None))

    out, _ = producer.communicate(timeout=120 * MULT)
    check("produce reports what it wrote", out.startswith("wrote %d records" % COUNT), out)
    malformed = int(out.split("(")[1].split()[0]) if "(" in out else -1

    # -- outputs + DLQ cover every event ---------------------------------------------------
    seen = Seen(bootstrap)
    every = set(range(COUNT))
    covered = wait_for(lambda: seen.poll() >= every, 90)
    seen.close()
    check("outputs + DLQ hold every produced event (%.1f s after the kill)"
          % (time.time() - killed_at), covered, "%d of %d" % (len(seen.seqs & every), COUNT))

    # -- SIGTERM every survivor ------------------------------------------------------------
    roles = {m.name: m.role() for m in survivors}
    signalled = time.time()
    for m in survivors:
        m.proc.send_signal(signal.SIGTERM)

    def all_exited():
        for m in survivors:
            if m.exit_seconds is None and m.proc.poll() is not None:
                m.exit_seconds = time.time() - signalled
        return all(m.exit_seconds is not None for m in survivors)

    wait_for(all_exited, STOP_BOUND)
    for m in survivors:
        if m.exit_seconds is None:
            check("%s (%s) exits on SIGTERM within %.0f s" % (m.name, roles[m.name],
                                                            STOP_BOUND * MULT), False,
                  "still running; last log lines: " + " | ".join(m.log_lines()[-3:]))
            m.proc.kill()
        else:
            check("%s (%s) exits 0 on SIGTERM in %.2f s" % (m.name, roles[m.name],
                                                           m.exit_seconds),
                  m.proc.returncode == 0,
                  "exit %s; last log lines: %s" % (m.proc.returncode,
                                                   " | ".join(m.log_lines()[-3:])))

    # -- what was written, read back by confluent-kafka ------------------------------------
    source = read_all(bootstrap, "orders")
    valid_seqs, malformed_seqs = set(), set()
    for m in source:
        (valid_seqs if is_valid_order(m.value()) else malformed_seqs).add(sequence_of(m))
    check("the source holds every event once; produce's malformed count matches",
          len(source) == COUNT and valid_seqs | malformed_seqs == set(range(COUNT))
          and len(malformed_seqs) == malformed,
          "%d records, %d malformed (produce said %d)" % (len(source), len(malformed_seqs),
                                                          malformed))

    outputs, stray = {}, []
    for topic in OUTPUTS:
        for m in read_all(bootstrap, topic):
            s = sequence_of(m)
            try:
                v = json.loads(m.value())
            except ValueError:
                v = {}
            if not isinstance(v, dict):
                v = {}
            if (s not in valid_seqs or topic != "orders-" + str(v.get("priority"))
                    or v.get("order_id") != "ord-%d-%d" % (SEED, s)
                    or (m.key() or b"").decode() != v.get("customer_id")):
                stray.append((topic, m.partition(), m.offset(), s))
            outputs[s] = outputs.get(s, 0) + 1
    dead, dead_stray = {}, []
    for m in read_all(bootstrap, DLQ):
        s = sequence_of(m)
        if s not in malformed_seqs or "sluice.error.type" not in dict(m.headers() or []):
            dead_stray.append((m.partition(), m.offset(), s))
        dead[s] = dead.get(s, 0) + 1
    dup_out = sum(n - 1 for n in outputs.values())
    dup_dlq = sum(n - 1 for n in dead.values())
    check("every valid event is in its priority topic, keyed, at least once (%d duplicates)"
          % dup_out, set(outputs) >= valid_seqs,
          "%d of %d valid events missing" % (len(valid_seqs - set(outputs)), len(valid_seqs)))
    check("every malformed event is in the DLQ with a reason, at least once (%d duplicates)"
          % dup_dlq, set(dead) >= malformed_seqs,
          "%d of %d malformed events missing" % (len(malformed_seqs - set(dead)),
                                                 len(malformed_seqs)))
    check("nothing else is in the outputs or the DLQ", not stray and not dead_stray,
          "outputs: %s; DLQ: %s" % (stray[:5], dead_stray[:5]))

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP,
                  "enable.auto.commit": False})
    tps = [TopicPartition("orders", p) for p in range(PARTITIONS)]
    committed = {tp.partition: tp.offset for tp in c.committed(tps, timeout=10)}
    ends = {p: c.get_watermark_offsets(TopicPartition("orders", p), timeout=10)[1]
            for p in range(PARTITIONS)}
    c.close()
    check("the group's committed offsets equal the end offsets of orders", committed == ends,
          "committed %s, end %s" % (committed, ends))
except Abort:
    pass
except Exception:
    check("the test ran to its end", False, traceback.format_exc().replace("\n", " | "))
finally:
    for p in (procs if EXTERNAL else procs[1:]):
        reap(p)
    if procs and not EXTERNAL:
        stop_broker(procs[0])

finish()
