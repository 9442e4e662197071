"""Real Kafka: reading partition queues while the group keeps changing (librdkafka 2.0.2's
batch consume hazard: records lost or returned wrongly when a seek, pause, resume or
rebalance runs in parallel with a batch read; README's limits), every offset checked.

`orders`, 8 partitions, 40,000 order events (5% malformed) written at 1,000/s by `sluice
produce` while up to four `sluice run` processes share one group (eager rebalances, so
every change revokes and re-assigns every partition; session.timeout.ms 6000) under a rate
limit (maxOffsetsPerTrigger, 300 ms epochs: reading stops and starts at each epoch's
limit). A seeded schedule of changes runs meanwhile: a member joins, one is stopped with
SIGTERM, one is killed with SIGKILL and started again. A kill goes to a member that is
working: its last `holding:` line names partitions and it handled records since (its
progress lines); while no member is (a rebalance in progress: after a kill it waits for the
dead member's session to expire), the kill waits for one, up to 10 s. Then two members
finish the backlog (the group's committed offsets reach the ends: polled) and are
SIGTERMed.

Checks: at least 3 kills hit a working member and at least 6 rebalances completed (an
assignment in the members' logs; assignments within 1 s of each other count as one);
every stopped member exited 0; every source offset is in an output topic (valid records,
in their priority's topic) or in the DLQ (invalid ones, with their source partition and
offset), key, value and headers byte-equal to the source; nothing else was written; the
committed offsets are the ends. Duplicates (killed members repeat what they had not
committed) are counted and reported, not checked: at-least-once allows them.

Usage: scripts/kafka.sh python tests/kafka/consume_stress_test.py PATH/TO/sluice
"""
import datetime
import json
import os
import random
import re
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kafka_support import (Abort, check, Cluster, create_topics, DLQ, end_offsets,  # noqa: E402
                           install_cleanup, is_valid_order, MULT, OUTPUTS, pipeline_text,
                           progress_lines, read_topic, run_test, start, start_run, write)
from offsets import wait_committed  # noqa: E402

WORK = tempfile.mkdtemp(prefix="sluice-kafka-consume-stress-")
install_cleanup(WORK)
PARTITIONS = 8
COUNT = 40000
RATE = 1000  # 40 s of changes: a kill after a kill waits for the rebalance (6 s session)
GROUP = "kafka-consume-stress"
SEED = int(os.environ.get("SLUICE_STRESS_SEED", "14"))
MIN_LOADED_KILLS = 3   # kills of a member holding partitions and handling records
MIN_REBALANCES = 6     # completed rebalances (assignments) while the producer writes
KILL_WAIT = 10         # seconds a kill waits for a working member
# The members log in UTC, as their progress lines are: the two can be compared.
os.environ["TZ"] = "UTC"
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}) \S+ (holding|assigned): (.*)$")


def when(text):
    """Seconds since the epoch of a log line's or progress line's UTC time."""
    t = datetime.datetime.strptime(text.rstrip("Z")[:23], "%Y-%m-%dT%H:%M:%S.%f")
    return t.replace(tzinfo=datetime.timezone.utc).timestamp()


def log_events(log, what):
    """[(time, partitions)] of a member's `holding:` or `assigned:` lines (partitions
    empty for `(none)`)."""
    out = []
    with open(log, errors="replace") as f:
        for line in f:
            m = LOG_LINE.match(line.rstrip("\n"))
            if m and m.group(2) == what:
                held = [] if m.group(3) == "(none)" else m.group(3).split(", ")
                out.append((when(m.group(1)), held))
    return out


def rebalances(logs):
    """Completed rebalances: non-empty assignments in the members' logs, those within 1 s
    of the one before counted as one (every member of a generation is told at once)."""
    times = sorted(t for log in logs for t, held in log_events(log, "assigned") if held)
    return sum(1 for i, t in enumerate(times) if i == 0 or t - times[i - 1] > 1.0)


def main():
    rnd = random.Random(SEED)
    with Cluster(os.path.join(WORK, "cluster"), nodes=1) as c:
        b = c.bootstrap()
        create_topics(c.admin(), {"orders": PARTITIONS})
        create_topics(c.admin(), {t: 4 for t in OUTPUTS.values()})
        create_topics(c.admin(), {DLQ: 2})
        path = write(os.path.join(WORK, "stress.json"), pipeline_text(
            "stress", b, GROUP, trigger='"trigger": {"processingTime": "300 milliseconds"}',
            source_extra='"kafka.session.timeout.ms": 6000, "maxOffsetsPerTrigger": 1500,',
            schema=False))
        producer = start(["produce", "--bootstrap", b, "--topic", "orders", "--count",
                          str(COUNT), "--rate", str(RATE), "--malformed-fraction", "0.05",
                          "--seed", str(SEED)])
        members, n = {}, 0  # number: (process, its stdout Lines, its log)
        exits, logs = [], []

        def launch():
            nonlocal n
            n += 1
            log = os.path.join(WORK, "m%d.log" % n)
            members[n] = start_run([path], log) + (log,)
            logs.append(log)

        def stop(i, sig):
            p, _, log = members.pop(i)
            p.send_signal(sig)
            code = p.wait(timeout=60 * MULT)
            if sig == signal.SIGTERM:
                exits.append((i, code))
                if code != 0:  # why, for the report
                    with open(log, errors="replace") as f:
                        tail = [l for l in f.read().splitlines()
                                if "rdkafka" not in l and "Kafka consumer:" not in l][-6:]
                    print("m%d exited %s on SIGTERM: %s" % (i, code, " | ".join(tail)),
                          flush=True)

        def working(i):
            """(partitions, records handled since) when member i's last `holding:` line
            names partitions and its progress counted records in epochs since; else None."""
            _, lines, log = members[i]
            held = log_events(log, "holding")
            if not held or not held[-1][1]:
                return None
            since, parts = held[-1]
            handled = sum(p.get("numInputRows", 0)
                          for p in progress_lines("\n".join(lines.snapshot()))
                          if when(p["timestamp"]) >= since)
            return (parts, handled) if handled > 0 else None

        launch()
        launch()
        victims = random.Random(SEED + 1)  # whom to kill: apart from the schedule's draws
        changes = {"join": 0, "sigterm": 0, "sigkill+restart": 0}
        kills = []  # (member, partitions it held, records handled since) or (member, None)
        # Changes every 1-2 s while the producer writes (about 40 s).
        while producer.poll() is None:
            time.sleep(rnd.uniform(1.0, 2.0))
            live = sorted(members)
            what = rnd.choice(["join", "sigterm", "sigkill+restart"])
            if what == "join" and len(live) < 4 or len(live) < 2:
                launch()
                what = "join"
            elif what == "sigterm":
                stop(rnd.choice(live), signal.SIGTERM)
            else:
                what = "sigkill+restart"  # also a join drawn at four members
                deadline = time.monotonic() + KILL_WAIT * MULT
                while True:
                    busy = {i: w for i in live for w in [working(i)] if w}
                    if busy or time.monotonic() > deadline or producer.poll() is not None:
                        break
                    time.sleep(0.1)
                victim = victims.choice(sorted(busy) or live)
                kills.append((victim,) + (busy[victim] if busy else (None, 0)))
                stop(victim, signal.SIGKILL)
                launch()
            changes[what] += 1
        check("the producer wrote %d events" % COUNT, producer.returncode == 0)
        print("group changes while writing: %s" % changes, flush=True)
        for i, parts, handled in kills:
            print("SIGKILL m%d: %s" % (i, "holding %s, %d records handled since" % (
                ", ".join(parts), handled) if parts else "not working (waited %d s)"
                % KILL_WAIT), flush=True)
        loaded = sum(1 for _, parts, _ in kills if parts)
        check("at least %d SIGKILLs hit a member holding partitions that had handled records "
              "since (%d of %d)" % (MIN_LOADED_KILLS, loaded, len(kills)),
              loaded >= MIN_LOADED_KILLS, kills)
        done_rebalances = rebalances(logs)
        check("at least %d rebalances completed while the producer wrote (%d)"
              % (MIN_REBALANCES, done_rebalances), done_rebalances >= MIN_REBALANCES)
        while len(members) < 2:
            launch()
        ends = end_offsets(b, "orders")
        done, got = wait_committed(b, GROUP, "orders", list(ends), ends, 180)
        check("the group's committed offsets reach the ends %s" % ends, done, got)
        for i in sorted(members):
            stop(i, signal.SIGTERM)
        check("every member stopped with SIGTERM exited 0 (%d stops)" % len(exits),
              all(code == 0 for _, code in exits), exits)

        source = read_topic(b, "orders")
        if not check("the source holds %d events" % COUNT, len(source) == COUNT, len(source)):
            raise Abort()
        by_cid = {s.header("correlation-id"): s for s in source}
        by_pos = {(s.partition, s.offset): s for s in source}
        seen, bad = {}, []
        for topic in OUTPUTS.values():
            for r in read_topic(b, topic):
                s = by_cid.get(r.header("correlation-id"))
                if (s is None or not is_valid_order(s.value, typed=False)
                        or OUTPUTS[json.loads(s.value)["priority"]] != topic
                        or (r.key, r.value, r.headers) != (s.key, s.value, s.headers)):
                    bad.append((topic, r.partition, r.offset))
                    continue
                where = (s.partition, s.offset)
                seen[where] = seen.get(where, 0) + 1
        for d in read_topic(b, DLQ):
            where = (int(d.header("sluice.source.partition")),
                     int(d.header("sluice.source.offset")))
            s = by_pos.get(where)
            own = tuple(h for h in d.headers if not h[0].startswith("sluice."))
            if s is None or is_valid_order(s.value, typed=False) or \
                    (d.key, d.value, own) != (s.key, s.value, s.headers):
                bad.append((DLQ, d.partition, d.offset))
                continue
            seen[where] = seen.get(where, 0) + 1
        missing = [(s.partition, s.offset) for s in source
                   if (s.partition, s.offset) not in seen]
        check("nothing corrupted: every output and DLQ record is its source record, byte for "
              "byte, in its place", not bad, bad[:5])
        check("nothing lost: every one of the %d source offsets is in an output or the DLQ"
              % COUNT, not missing, "%d missing, e.g. %s" % (len(missing), missing[:5]))
        dups = sum(n_ - 1 for n_ in seen.values())
        print("duplicates: %d source offsets written more than once, %d extra copies, of %d "
              "(reported, not checked: a killed member repeats what it had not committed)"
              % (sum(1 for n_ in seen.values() if n_ > 1), dups, COUNT), flush=True)


run_test(main)
