"""Real Kafka: the dedup changelog is created compacted, is really compacted by the log
cleaner, and a state restored from it after compaction gives the same verdicts; a changelog
that exists with another cleanup.policy is refused at start.

1. Run A (availableNow, dedup on order_id within 1 hour, partition 0 of `orders`) reads:
   k1..k500 at now-3h; k1..k250 again at now-1h (past the window: they pass and renew their
   sightings); k501..k1000 at now-10min (which moves the event-time progress so that
   k251..k500 expire: tombstones). The changelog that Sluice created has
   cleanup.policy=compact (DescribeConfigs); its superseded values and tombstones are then
   removed by the broker's log cleaner (small segments, min.cleanable.dirty.ratio 0.01,
   delete.retention.ms 0): the test waits for the changelog to hold only live keys.
2. Run B, with its state directory deleted (a new machine), restores from the compacted
   changelog and reads: k1..k250 at now-50min (duplicates: dropped), k251..k500 at now-5min
   (expired: pass), k501..k1000 at now-5min (duplicates: dropped), k1001..k1100 (new: pass).
   Outputs are exactly k251..k500 and k1001..k1100; 750 duplicates are counted.
3. A changelog topic with cleanup.policy=delete: the run fails at start (exit 1) naming
   dedup.changelog and the policy, and writes nothing.
4. Late duplicates (dedup.allowedLateness, dedup.lateRecords): k1..k100 at now-3h, then
   a1..a50 at now-90min (the event-time progress), then a copy of each k 10 minutes after
   its first sighting (80 minutes behind the progress: past `within`, inside the default
   allowedLateness of as long again), then o1..o20 at now-4h (new, 150 minutes behind:
   later than any kept sighting). With lateRecords dlq: the copies are dropped as
   duplicates, the o's reach the DLQ as `late`, the k's and a's are the outputs.

Usage: scripts/kafka.sh python tests/kafka/changelog_test.py PATH/TO/sluice
"""
import json
import os
import shutil
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kafka_support import (Abort, Cluster, ConfigResource, MULT, Producer,  # noqa: E402
                           check, create_topics, finish, install_cleanup, progress_lines,
                           read_topic, sluice, wait_for, write)

WORK = tempfile.mkdtemp(prefix="sluice-kafka-changelog-")
install_cleanup(WORK)
NAME = "dd"
CHANGELOG = NAME + "-dedup-changelog"
HOUR = 3600 * 1000


def pipeline(bootstrap, state_dir, changelog=None):
    dedup = {"key": ["order_id"], "within": "1 hour", "stateDir": state_dir}
    if changelog:
        dedup["changelog"] = changelog
    return json.dumps({
        "name": NAME,
        "source": {"kafka.bootstrap.servers": bootstrap, "subscribe": "orders",
                   "startingOffsets": "earliest", "kafka.group.id": "changelog-test"},
        "parse": {"format": "json", "schema": {"order_id": "string", "n": "int"},
                  "required": ["order_id"]},
        "route": {"topic": "deduped"},
        "sink": {"kafka.bootstrap.servers": bootstrap},
        "dlq": {"topic": "dlq"},
        "dedup": dedup,
        "trigger": {"availableNow": True}})


def produce(bootstrap, keys, ts, n):
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for k in keys:
        p.produce("orders", key=k.encode(), value=json.dumps({"order_id": k, "n": n}).encode(),
                  partition=0, timestamp=ts)
    if p.flush(30) != 0:
        raise Abort()


def keys(a, b):
    return ["k%d" % i for i in range(a, b + 1)]


def changelog_config(admin, topic):
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return {k: v.value for k, v in admin.describe_configs([res])[res].result().items()}


try:
    with Cluster(os.path.join(WORK, "cluster"), nodes=1,
                 broker_config={"log.cleaner.backoff.ms": 200}) as c:
        b, admin = c.bootstrap(), c.admin()
        create_topics(admin, {"orders": 1, "deduped": 1, "dlq": 1})
        now = int(time.time() * 1000)
        produce(b, keys(1, 500), now - 3 * HOUR, 1)
        produce(b, keys(1, 250), now - HOUR, 2)
        produce(b, keys(501, 1000), now - 10 * 60 * 1000, 3)
        state = os.path.join(WORK, "state")
        r = sluice(["run", write(os.path.join(WORK, "a.json"), pipeline(b, state))])
        if not check("run A exits 0", r.returncode == 0, r.stderr[-1500:]):
            raise Abort()
        out_a = read_topic(b, "deduped")
        check("run A passes all 1,250 records (renewals past the window pass)",
              len(out_a) == 1250, len(out_a))
        conf = changelog_config(admin, CHANGELOG)
        check("Sluice created the changelog with cleanup.policy=compact (CreateTopics)",
              conf.get("cleanup.policy") == "compact", conf.get("cleanup.policy"))

        before = read_topic(b, CHANGELOG, isolation="read_uncommitted")
        latest = {}
        for rec in before:
            latest[rec.key] = rec.value
        live = {k for k, v in latest.items() if v is not None}
        check("the changelog holds 1,250 sightings and 250 tombstones before compaction",
              sum(1 for r_ in before if r_.value is not None) == 1250
              and sum(1 for r_ in before if r_.value is None) == 250,
              "%d records" % len(before))
        # Let the cleaner work: small segments roll the log, everything is dirty.
        from confluent_kafka.admin import AlterConfigOpType, ConfigEntry
        res = ConfigResource(ConfigResource.Type.TOPIC, CHANGELOG, incremental_configs=[
            ConfigEntry("segment.ms", "100", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("min.cleanable.dirty.ratio", "0.01",
                        incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("delete.retention.ms", "0", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("min.compaction.lag.ms", "0",
                        incremental_operation=AlterConfigOpType.SET)])
        admin.incremental_alter_configs([res])[res].result()
        # A record after the roll so the segment holding the history is no longer active.
        p = Producer({"bootstrap.servers": b})

        def compacted():
            p.produce(CHANGELOG, key=b"__roll__", value=None, partition=0)
            p.flush(10)
            recs = read_topic(b, CHANGELOG, isolation="read_uncommitted")
            keys_seen = [r_.key for r_ in recs if r_.key != b"__roll__"]
            return len(keys_seen) == len(set(keys_seen)) and \
                all(r_.value is not None for r_ in recs if r_.key != b"__roll__")

        ok = wait_for(compacted, 120)
        after = [r_ for r_ in read_topic(b, CHANGELOG, isolation="read_uncommitted")
                 if r_.key != b"__roll__"]
        check("the log cleaner compacted the changelog: one record per live key, no "
              "tombstones (%d of %d records left)" % (len(after), len(before)),
              ok and {r_.key for r_ in after} == live and len(after) == len(live),
              "%d records, %d live keys" % (len(after), len(live)))

        # Run B: a new machine, restored from the compacted changelog.
        shutil.rmtree(state)
        now = int(time.time() * 1000)
        produce(b, keys(1, 250), now - 50 * 60 * 1000, 4)
        produce(b, keys(251, 500), now - 5 * 60 * 1000, 5)
        produce(b, keys(501, 1000), now - 5 * 60 * 1000, 6)
        produce(b, keys(1001, 1100), now - 5 * 60 * 1000, 7)
        r = sluice(["run", write(os.path.join(WORK, "b.json"), pipeline(b, state))])
        check("run B (state deleted) exits 0", r.returncode == 0, r.stderr[-1500:])
        out_b = read_topic(b, "deduped")[len(out_a):]
        got = sorted(json.loads(x.value)["order_id"] for x in out_b)
        want = sorted(keys(251, 500) + keys(1001, 1100))
        check("after the restore from the compacted changelog, exactly the expired and the "
              "new keys pass (%d outputs)" % len(got), got == want,
              "unexpected %s, missing %s" % (sorted(set(got) - set(want))[:5],
                                             sorted(set(want) - set(got))[:5]))
        dups = 0
        for p_ in progress_lines(r.stdout):
            for op in p_.get("stateOperators", []):
                dups += op.get("customMetrics", {}).get("numDroppedDuplicateRows", 0)
        check("750 duplicates are counted", dups == 750, dups)

        # A changelog that retention would eat.
        create_topics(admin, {"delete-changelog": 1}, config={"cleanup.policy": "delete"})
        r = sluice(["run", write(os.path.join(WORK, "c.json"),
                                 pipeline(b, os.path.join(WORK, "state-c"),
                                          changelog="delete-changelog"))])
        check("a changelog with cleanup.policy=delete is refused at start (exit 1, as what "
              "the cluster says), naming the option and the policy", r.returncode == 1
              and "0 in, 0 out" in r.stderr
              and "dedup.changelog" in r.stderr and "cleanup.policy=delete" in r.stderr,
              (r.returncode, r.stderr[-800:]))
        check("... and nothing is written", len(read_topic(b, "deduped")) == len(out_a)
              + len(out_b))

        # 4. Late duplicates, on the broker's own CreateTime timestamps.
        create_topics(admin, {"late-orders": 1, "late-out": 1, "late-dlq": 1})
        now = int(time.time() * 1000)

        def produce_to(topic, ks, ts, n):
            p = Producer({"bootstrap.servers": b, "enable.idempotence": True})
            for k in ks:
                p.produce(topic, key=k.encode(),
                          value=json.dumps({"order_id": k, "n": n}).encode(),
                          partition=0, timestamp=ts)
            if p.flush(30) != 0:
                raise Abort()

        produce_to("late-orders", keys(1, 100), now - 3 * HOUR, 1)
        produce_to("late-orders", ["a%d" % i for i in range(1, 51)], now - 90 * 60 * 1000, 2)
        produce_to("late-orders", keys(1, 100), now - 3 * HOUR + 10 * 60 * 1000, 3)
        produce_to("late-orders", ["o%d" % i for i in range(1, 21)], now - 4 * HOUR, 4)
        late = json.loads(pipeline(b, os.path.join(WORK, "state-late")))
        late["name"] = "dd-late"
        late["source"]["subscribe"] = "late-orders"
        late["source"]["kafka.group.id"] = "changelog-test-late"
        late["route"]["topic"] = "late-out"
        late["dlq"]["topic"] = "late-dlq"
        late["dedup"]["lateRecords"] = "dlq"
        r = sluice(["run", write(os.path.join(WORK, "d.json"), json.dumps(late))])
        check("run D (lateRecords dlq) exits 0", r.returncode == 0, r.stderr[-1500:])
        out = sorted(json.loads(x.value)["order_id"] for x in read_topic(b, "late-out"))
        want = sorted(keys(1, 100) + ["a%d" % i for i in range(1, 51)])
        check("the late copies are dropped as duplicates: the outputs are k1..k100 and "
              "a1..a50, once each (%d)" % len(out), out == want,
              "unexpected %s" % sorted(set(out) - set(want))[:5])
        dlq = read_topic(b, "late-dlq")
        types = {x.header("sluice.error.type") for x in dlq}
        check("the 20 records later than within + allowedLateness reach the DLQ as `late`",
              len(dlq) == 20 and types == {b"late"},
              (len(dlq), types))
        dups = late_rows = 0
        for p_ in progress_lines(r.stdout):
            for op in p_.get("stateOperators", []):
                dups += op.get("customMetrics", {}).get("numDroppedDuplicateRows", 0)
                late_rows += op.get("customMetrics", {}).get("numLateRows", 0)
        check("progress counts 100 duplicates and 20 late rows", (dups, late_rows) == (100, 20),
              (dups, late_rows))
except Abort:
    check("the test ran to its end", False)
except Exception:
    traceback.print_exc()
    check("no unexpected error", False)
finish()
