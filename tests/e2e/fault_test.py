#!/usr/bin/python3
"""End-to-end: `sluice run` when a Kafka cluster cannot be reached, or goes away.

1. availableNow against a port nothing listens on, runtime.brokerTimeout 3 s: the
   run fails with exit 1 (not an abort) within a bound, naming the problem.
2. The same run, signalled with SIGTERM while it is still trying: exits 0 promptly.
3. A continuous run against the same port: its progress lines say the cluster
   cannot be reached, then it fails with exit 1 within a bound.
4. A continuous run against `sluice broker` with a one-hour epoch, so that nothing
   is committed before the stop: once the records are processed (read back with
   python3-confluent-kafka), the broker is killed with SIGKILL and the run gets
   SIGTERM. Its final commit fails: exit 1, naming what will be read again.

Usage: fault_test.py PATH/TO/sluice
Prints one line per check and closes with 'N passed, N failed'.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback

from confluent_kafka import Consumer, TopicPartition

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_support import (MULT, Abort, check, finish, install_cleanup, procs, reap, start,
                         start_broker, start_run, wait_for, write_pipeline)

WORK = tempfile.mkdtemp(prefix="sluice-e2e-fault-")
install_cleanup(WORK)

UNREACHABLE = "127.0.0.1:1"  # nothing listens on port 1: connections are refused
BROKER_TIMEOUT = ["--set", 'runtime.brokerTimeout="3 seconds"']
OUTPUTS = ["orders-high", "orders-medium", "orders-low"]
DLQ = "orders-dlq"
COUNT = 2000


def pipeline(name, bootstrap, group, trigger):
    return write_pipeline(os.path.join(WORK, name + ".json"), name, bootstrap, group, trigger)


class Run:
    """One `sluice run`: stdout lines collected, stderr in a file, exit timed."""

    def __init__(self, name, args):
        self.log = os.path.join(WORK, name + ".log")
        self.started = time.time()
        self.since = self.started  # when the exit is timed from
        self.proc, self.progress = start_run(args, self.log)
        self.seconds = None

    def stderr(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def tail(self, n=5):
        # librdkafka's own log lines start with '%'; Sluice's say the same more plainly.
        lines = [l for l in self.stderr().splitlines() if not l.startswith("%")]
        return " | ".join(lines[-n:])

    def wait(self, timeout):
        """The exit code, or None when still running after timeout (x multiplier);
        self.seconds is the time from `since` (the start by default) to the exit."""
        try:
            code = self.proc.wait(timeout=timeout * MULT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            return None
        self.seconds = time.time() - self.since
        self.progress.thread.join(timeout=10)
        return code

    def messages(self):
        out = []
        for line in self.progress.snapshot():
            try:
                out.append(json.loads(line).get("message", ""))
            except (ValueError, AttributeError):
                out.append("<not a JSON object: %s>" % line)
        return out


def outcome(code, run):
    if code is None:
        return "still running at the bound, killed"
    return "exit %s after %.2f s" % (code, run.seconds)


def describe(code, run):
    return "%s; stderr: %s" % (outcome(code, run), run.tail())


try:
    # -- 1. availableNow, cluster unreachable -----------------------------------------
    available_now = pipeline("unreachable-now", UNREACHABLE, "e2e-fault-1",
                             '"trigger": {"availableNow": true}')
    r = Run("unreachable-now", [available_now] + BROKER_TIMEOUT)
    code = r.wait(15)
    err = r.stderr()
    check("availableNow, broker unreachable: exit 1 within 15 s (%s)" % outcome(code, r),
          code == 1 and r.seconds <= 15 * MULT, describe(code, r))
    check("availableNow, broker unreachable: stderr names the problem",
          "brokerTimeout" in err or "cannot reach" in err
          or "cannot read the end offsets" in err, r.tail())

    # -- 2. the same, stopped by SIGTERM while it is still trying -------------------------
    r = Run("unreachable-now-stopped", [available_now] + BROKER_TIMEOUT)
    trying = wait_for(lambda: "Connection refused" in r.stderr() or r.proc.poll() is not None,
                      10)
    # ~1 s after the start, well inside the 3 s brokerTimeout.
    time.sleep(max(0.0, r.started + 1.0 - time.time()))
    still_running = r.proc.poll() is None
    r.since = time.time()
    r.proc.send_signal(signal.SIGTERM)
    code = r.wait(5)
    check("availableNow, broker unreachable, SIGTERM after ~1 s while trying: exit 0 within "
          "5 s (%s)" % outcome(code, r),
          trying and still_running and code == 0,
          "connection attempt seen: %s, running when signalled: %s; %s"
          % (trying, still_running, describe(code, r)))

    # -- 3. continuous, cluster unreachable ---------------------------------------------
    continuous = pipeline("unreachable-continuous", UNREACHABLE, "e2e-fault-3",
                          '"trigger": {"processingTime": "500 milliseconds"}')
    r = Run("unreachable-continuous", [continuous] + BROKER_TIMEOUT)
    code = r.wait(20)
    check("continuous, broker unreachable: exit 1 within 20 s (%s)" % outcome(code, r),
          code == 1 and r.seconds <= 20 * MULT, describe(code, r))
    messages = r.messages()
    check("continuous, broker unreachable: a progress line says it cannot reach the cluster "
          "(%d lines)" % len(messages),
          any("cannot reach" in m for m in messages), "messages: %s" % messages[-3:])

    # -- 4. broker killed under a run with uncommitted work ---------------------------
    bootstrap_file = os.path.join(WORK, "bootstrap")
    broker, bootstrap = start_broker(1, ["orders:4"] + [t + ":4" for t in OUTPUTS] + [DLQ + ":2"],
                                     bootstrap_file)

    producer = start(["produce", "--bootstrap", bootstrap, "--topic", "orders", "--count",
                      str(COUNT), "--malformed-fraction", "0.05", "--seed", "11"],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, perr = producer.communicate(timeout=60 * MULT)
    if not check("produce writes %d records" % COUNT,
                 producer.returncode == 0 and out.startswith("wrote %d records" % COUNT),
                 "exit %s: %s %s" % (producer.returncode, out, perr[-500:])):
        raise Abort()

    live = pipeline("live", bootstrap, "e2e-fault-4",
                    '"trigger": {"processingTime": "500 milliseconds"}')
    # A one-hour epoch: no epoch commits before the stop, so every record processed
    # is uncommitted when the broker goes away.
    r = Run("live", [live, "--set", 'trigger.processingTime="1 hour"'])
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": "e2e-fault-reader",
                       "enable.auto.commit": False})
    reader.assign([TopicPartition(t, p, 0) for t in OUTPUTS for p in range(4)]
                  + [TopicPartition(DLQ, p, 0) for p in range(2)])
    seen = [0]

    def poll_outputs():
        for m in reader.consume(5000, 0.2):
            if not m.error():
                seen[0] += 1
        return seen[0] >= COUNT or r.proc.poll() is not None

    processed = wait_for(poll_outputs, 60) and r.proc.poll() is None
    reader.close()
    check("the run processes every record: outputs + DLQ hold %d of %d (%.1f s after start)"
          % (seen[0], COUNT, time.time() - r.started),
          processed and seen[0] == COUNT,
          "run exit %s; stderr: %s" % (r.proc.poll(), r.tail()))
    if not processed:
        raise Abort()
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "e2e-fault-4",
                  "enable.auto.commit": False})
    committed = {tp.partition: tp.offset for tp in
                 c.committed([TopicPartition("orders", p) for p in range(4)], timeout=10)}
    c.close()
    check("nothing is committed before the stop (one-hour epoch)",
          all(o < 0 for o in committed.values()), "committed: %s" % committed)

    broker.kill()
    broker.wait(timeout=10 * MULT)
    r.since = time.time()
    r.proc.send_signal(signal.SIGTERM)
    code = r.wait(30)
    err = r.stderr()
    check("broker killed, then SIGTERM with uncommitted work: exit 1 within 30 s (%s)"
          % outcome(code, r), code == 1, describe(code, r))
    check("stderr says the final offset commit failed and what will be read again",
          "final offset commit failed" in err and "will be read again" in err, r.tail())
except Abort:
    pass
except Exception:
    check("the test ran to its end", False, traceback.format_exc().replace("\n", " | "))
finally:
    for p in procs:
        reap(p)

finish()
