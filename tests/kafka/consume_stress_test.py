"""Real Kafka: reading partition queues while the group keeps changing (librdkafka 2.0.2's
batch consume hazard: records lost or returned wrongly when a seek, pause, resume or
rebalance runs in parallel with a batch read; README's limits), every offset checked.

`orders`, 8 partitions, 40,000 order events (5% malformed) written at 2,000/s by `sluice
produce` while up to four `sluice run` processes share one group (eager rebalances, so
every change revokes and re-assigns every partition; session.timeout.ms 6000) under a rate
limit (maxOffsetsPerTrigger, 300 ms epochs: reading stops and starts at each epoch's
limit). A seeded schedule of changes runs meanwhile: a member joins, one is stopped with
SIGTERM, one is killed with SIGKILL and started again. Then two members finish the backlog
(the group's committed offsets reach the ends: polled) and are SIGTERMed.

Checks: every stopped member exited 0; every source offset is in an output topic (valid
records, in their priority's topic) or in the DLQ (invalid ones, with their source
partition and offset), key, value and headers byte-equal to the source; nothing else was
written; the committed offsets are the ends. Duplicates (killed members repeat what they
had not committed) are counted and reported, not failed.

Usage: scripts/kafka.sh python tests/kafka/consume_stress_test.py PATH/TO/sluice
"""
import json
import os
import random
import signal
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kafka_support import (DLQ, MULT, OUTPUTS, Abort, Cluster, check,  # noqa: E402
                           committed, create_topics, end_offsets, finish, install_cleanup,
                           is_valid_order, pipeline_text, read_topic, start, start_run,
                           wait_for, write)

WORK = tempfile.mkdtemp(prefix="sluice-kafka-consume-stress-")
install_cleanup(WORK)
PARTITIONS = 8
COUNT = 40000
RATE = 2000
GROUP = "kafka-consume-stress"
SEED = int(os.environ.get("SLUICE_STRESS_SEED", "14"))


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
        members, n = {}, 0
        exits = []

        def launch():
            nonlocal n
            n += 1
            members[n] = start_run([path], os.path.join(WORK, "m%d.log" % n))[0]

        def stop(i, sig):
            p = members.pop(i)
            p.send_signal(sig)
            code = p.wait(timeout=60 * MULT)
            if sig == signal.SIGTERM:
                exits.append((i, code))

        launch()
        launch()
        changes = {"join": 0, "sigterm": 0, "sigkill+restart": 0}
        # Changes every 1-2 s while the producer writes (about 20 s).
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
                stop(rnd.choice(live), signal.SIGKILL)
                launch()
            changes[what] += 1
        check("the producer wrote %d events" % COUNT, producer.returncode == 0)
        print("group changes while writing: %s" % changes, flush=True)
        while len(members) < 2:
            launch()
        ends = end_offsets(b, "orders")
        done = wait_for(lambda: committed(b, GROUP, "orders", list(ends)) == ends, 180)
        check("the group's committed offsets reach the ends %s" % ends, done,
              committed(b, GROUP, "orders", list(ends)))
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
        print("duplicates: %d of %d (killed members repeat what they had not committed)"
              % (dups, COUNT), flush=True)


try:
    main()
except Abort:
    pass
except Exception:
    traceback.print_exc()
    check("no unexpected error", False)
finish()
