"""Real Kafka: `"guarantee": "exactly-once"` under kill -9, a broker kill, dedup and a zombie,
on a 3-node cluster (topics replicated 3 times, min.insync.replicas 2), checked by an
independent client (confluent-kafka) reading read_committed, with read_uncommitted as the
contrast that shows the checks can fail.

Every scenario writes order events from an independent idempotent producer on a thread at
a steady rate (300 records/s) into a 6-partition topic: the Kafka key is the business key
`order_id`, a header `eid` names each record, 2% are invalid (truncated JSON, or the
required `quantity` missing) so the DLQ takes part in the transactions. The pipeline checks
the fields (no schema: the outputs are the input bytes), writes every valid record to one
output topic and every invalid one to a DLQ topic, with 1 s epochs and the sources'
headers kept. Instances run continuously in one group (session.timeout.ms 6000). After the
writes end the instances are stopped with SIGTERM (exit 0) and a final `availableNow` run of
the same group finishes whatever is left. The brokers abort timed-out transactions every
second (transaction.abort.timed.out.transaction.cleanup.interval.ms 1000, instead of 10 s)
so that a killed instance's transaction is gone 10-11 s after it began. Writes begin once
every partition's leader answers (see topics_ready), and the expectations are built from the
input topic read back, checked against what the producer was told it wrote.

0. Config. exactly-once (`--set guarantee=exactly-once`) with
   `source.kafka.partition.assignment.strategy=cooperative-sticky` is refused at start,
   naming the option; so is an unknown guarantee.
1. Kills under exactly-once. 3 instances, each with its own
   `sink.kafka.transactional.id` (so a restarted instance fences its dead predecessor and
   aborts its open transaction at once); about 30,000 events. While they are written, a
   random instance that holds partitions is killed -9 five times and started again, each
   time once the group has settled (the restarted instance holds partitions and every
   partition's committed offset moved on since); after the second kill, the broker leading
   output partition 0 is killed -9 too, and started again once the group goes on without
   it. Then: read_committed, every valid event is in the output exactly once and every
   invalid one in the DLQ exactly once (nothing lost, nothing repeated, nothing else);
   the group's committed offsets are the input's end offsets; every progress line says
   `"guarantee": "exactly-once"` and counts transactions. read_uncommitted sees the
   records of the transactions the kills left open (aborted): more than read_committed.
2. The at-least-once contrast: the same with the default guarantee (3 instances, 2 kills,
   8,000 events): nothing lost; the duplicates a read_committed reader sees are printed.
3. Dedup under exactly-once: `dedup` on order_id within 1 hour, a state directory per
   instance and the changelog (made beforehand, compacted) in the transactions; random
   transactional ids (the pipeline gives none: a killed instance's transaction is aborted
   by the broker's timeout). 8,000 events, each written again 400 records later (a
   retrying producer: same key, value and partition; its own `eid`), 3 kills. Exactly one
   output per business key, and it is the first copy; both copies of each invalid event
   are in the DLQ once each.
4. Zombie. 2 instances (guarantee given as `--set guarantee=exactly-once`, the file says
   nothing), `sink.kafka.transaction.timeout.ms` 30000 so that the broker cannot abort the
   zombie's open transaction while it sleeps: only group fencing can stop it. One holder
   is SIGSTOPped for 15 s (2.5 session timeouts) while events arrive; the other comes to
   hold all 6 partitions; then SIGCONT. The zombie either rejoins and goes on, or exits 1
   with the reason (fenced, generation, member...) on stderr: either is accepted and
   printed. The group goes on, and the outputs are exactly once.
5. Stalled: the zombie again with the default transaction timeout (10 s), which the 15 s
   stop outlasts: the broker aborts its transaction and fences its producer (as a broker
   down for longer than the timeout does). On SIGCONT it must renew its producer, rejoin
   and go on committing; the outputs are exactly once. Again with a transactional id per
   instance set by the user (the fence comes after the timeout: renewed too).

Runs about 9 minutes on 2 cores (SLUICE_TEST_TIMEOUT_MULTIPLIER scales the waits).

Usage: scripts/kafka.sh python tests/kafka/exactly_once_test.py PATH/TO/sluice
"""
import collections
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kafka_support import (MULT, Abort, Cluster, Consumer, KafkaException,  # noqa: E402
                           Producer, TopicPartition, check, create_topics, end_offsets,
                           install_cleanup, progress_lines, read_topic, reap, run_test,
                           sluice, start_run, wait_for, write)
from offsets import committed_now, wait_committed  # noqa: E402

WORK = tempfile.mkdtemp(prefix="sluice-kafka-exactly-once-")
install_cleanup(WORK)
PARTITIONS = 6
RATE = 300                  # records/s written while instances run
SESSION_MS = 6000
TOPIC_CONFIG = {"min.insync.replicas": "2"}
BROKER_CONFIG = {"transaction.abort.timed.out.transaction.cleanup.interval.ms": 1000}
FENCING = re.compile(r"fenc|generation|member|epoch|zombie", re.I)


def names(tag):
    return {"in": tag + "-in", "out": tag + "-out", "dlq": tag + "-dlq",
            "group": "kafka-" + tag, "name": tag}


def pipeline(c, tag, guarantee="exactly-once", dedup=False, sink=None):
    """The pipeline file of a scenario (guarantee None: the file says nothing)."""
    n = names(tag)
    p = {"name": n["name"],
         "source": {"kafka.bootstrap.servers": c.bootstrap(), "subscribe": n["in"],
                    "startingOffsets": "earliest", "includeHeaders": True,
                    "kafka.group.id": n["group"], "kafka.session.timeout.ms": SESSION_MS,
                    "kafka.fetch.wait.max.ms": 50},
         "parse": {"format": "json", "required": ["id", "order_id", "quantity"]},
         "route": {"topic": n["out"]},
         "sink": dict({"kafka.bootstrap.servers": c.bootstrap(), "kafka.acks": "all"},
                      **(sink or {})),
         "dlq": {"topic": n["dlq"]},
         "trigger": {"processingTime": "1 second"}}
    if guarantee:
        p["guarantee"] = guarantee
    if dedup:
        p["dedup"] = {"key": ["order_id"], "within": "1 hour",
                      "changelog": tag + "-changelog"}
    return write(os.path.join(WORK, tag + ".json"), json.dumps(p, indent=1))


def make_topics(c, tag, dedup=False):
    n = names(tag)
    topics = {n["in"]: PARTITIONS, n["out"]: PARTITIONS, n["dlq"]: 2}
    create_topics(c.admin(), topics, replication=3, config=TOPIC_CONFIG)
    if dedup:
        topics[tag + "-changelog"] = PARTITIONS
        create_topics(c.admin(), {tag + "-changelog": PARTITIONS}, replication=3,
                      config=dict(TOPIC_CONFIG, **{"cleanup.policy": "compact"}))
    topics_ready(c, tag, topics)


def topics_ready(c, tag, topics):
    """Waits until every partition of `topics` ({name: partitions}) has a leader that
    answers ListOffsets. CreateTopics answers once the controller has the topic, before
    each leader has made its partition: an idempotent producer (confluent-kafka 2.16.1)
    writing at once was seen to have its first two records of a partition acknowledged
    and yet absent (the log began at sequence 2)."""
    consumer = Consumer({"bootstrap.servers": c.bootstrap(), "group.id": "kafka-eo-ready"})
    pending = {(t, p) for t, n in topics.items() for p in range(n)}

    def answered():
        md = consumer.list_topics(timeout=10)
        for t, p in sorted(pending):
            tm = md.topics.get(t)
            if tm is None or tm.error is not None or p not in tm.partitions \
                    or tm.partitions[p].leader < 0:
                continue
            try:
                consumer.get_watermark_offsets(TopicPartition(t, p), timeout=5)
                pending.discard((t, p))
            except KafkaException:
                pass
        return not pending

    try:
        ok = wait_for(answered, 60)
    finally:
        consumer.close()
    check("%s: every partition of %s has a leader that answers" % (tag, sorted(topics)), ok,
          sorted(pending)[:5])
    if not ok:
        raise Abort()


# -- the input ----------------------------------------------------------------------------
class Writer(threading.Thread):
    """An independent idempotent producer writing order events at `rate` records/s on a
    thread, until stop() once at least `at_least` events are written (at most 3 times
    that). With copy_distance, each event is written again that many records later (a
    retrying producer: same key, value and partition, its own eid `<eid>~copy`).
    kind[eid]: valid, invalid, copy-valid, copy-invalid; delivered: the eids the broker
    acknowledged."""

    def __init__(self, bootstrap, tag, rate, at_least, copy_distance=0):
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.tag = bootstrap, names(tag)["in"], tag
        self.rate, self.at_least, self.copy_distance = rate, at_least, copy_distance
        self.kind, self.delivered, self.failed = {}, set(), []
        self.events = 0
        self.undelivered = None
        self.error = None
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def stop(self):
        self.stopping.set()

    def event(self, i):
        eid = "%s-%06d" % (self.tag, i)
        key = "%s-o%06d" % (self.tag, i)
        if i % 100 == 17:  # truncated JSON
            text = '{"id": "%s", "order_id": "%s", "quantity": ' % (eid, key)
            return eid, key, text.encode(), False
        if i % 100 == 67:  # the required quantity missing
            text = json.dumps({"id": eid, "order_id": key, "price": 9.5})
            return eid, key, text.encode(), False
        value = {"id": eid, "order_id": key, "customer_id": "c%d" % (i % 97),
                 "quantity": 1 + i % 9, "price": round(1 + (i % 1000) / 10.0, 2),
                 "priority": ("high", "medium", "low")[i % 3]}
        return eid, key, json.dumps(value).encode(), True

    def run(self):
        try:
            self._run()
        except Exception as e:  # reported by the scenario
            self.error = repr(e)

    def _run(self):
        p = Producer({"bootstrap.servers": self.bootstrap, "enable.idempotence": True,
                      "acks": "all", "linger.ms": 5})

        def put(eid, key, value, kind):
            def done(err, _msg, eid=eid):
                with self.lock:
                    if err is None:
                        self.delivered.add(eid)
                    else:
                        self.failed.append((eid, str(err)))
            self.kind[eid] = kind
            p.produce(self.topic, key=key.encode(), value=value,
                      headers=[("eid", eid.encode())], on_delivery=done)

        copies = collections.deque()
        began, sent = time.monotonic(), 0
        while not (self.stopping.is_set() and self.events >= self.at_least) \
                and self.events < 3 * self.at_least:
            due = int((time.monotonic() - began) * self.rate)
            while sent < due:
                eid, key, value, valid = self.event(self.events)
                put(eid, key, value, "valid" if valid else "invalid")
                self.events += 1
                sent += 1
                if self.copy_distance:
                    copies.append((eid, key, value, valid))
                    if len(copies) > self.copy_distance:
                        e, k, v, ok = copies.popleft()
                        put(e + "~copy", k, v, "copy-valid" if ok else "copy-invalid")
                        sent += 1
            p.poll(0)
            time.sleep(0.01)
        for e, k, v, ok in copies:
            put(e + "~copy", k, v, "copy-valid" if ok else "copy-invalid")
        self.undelivered = p.flush(60 * MULT)

    def finish(self, tag):
        """Stops the writes and checks that every record was acknowledged."""
        self.stop()
        self.join(timeout=(3 * self.at_least / self.rate + 120) * MULT)
        ok = not self.is_alive() and self.error is None and self.undelivered == 0 \
            and not self.failed and len(self.delivered) == len(self.kind)
        check("%s: the producer wrote %d records (%d events), every one acknowledged"
              % (tag, len(self.delivered), self.events), ok,
              (self.is_alive(), self.error, self.undelivered, self.failed[:3]))
        if not ok:
            raise Abort()


# -- the instances ------------------------------------------------------------------------
def partitions_in(text):
    """{partition} of a log list such as 'eo-in/0, eo-in/3' or '(none)'."""
    if text == "(none)":
        return set()
    return {int(x.rsplit("/", 1)[1].split("@")[0]) for x in text.split(", ")}


class Member:
    """One instance slot of the group: a `sluice run`, started again after each kill
    (each run its own log)."""

    def __init__(self, tag, slot, args):
        self.tag, self.slot, self.args = tag, slot, list(args)
        self.runs = []  # [(process, its stdout Lines, its log)]
        self.start()

    def start(self):
        self.log = os.path.join(WORK, "%s-%d.%d.log" % (self.tag, self.slot, len(self.runs) + 1))
        self.proc, self.lines = start_run(self.args, self.log)
        self.runs.append((self.proc, self.lines, self.log))

    def name(self):
        return "instance %d (run %d)" % (self.slot, len(self.runs))

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def holdings(self):
        """What this run held after each assignment or revocation, in order."""
        return [partitions_in(line.split(" holding: ", 1)[1].strip())
                for line in self.log_text().splitlines() if " holding: " in line]

    def holding(self):
        h = self.holdings()
        return h[-1] if h else set()

    def progress(self):
        """Progress lines of the current run."""
        return progress_lines("\n".join(self.lines.snapshot()))

    def all_progress(self):
        return sum((progress_lines("\n".join(lines.snapshot())) for _, lines, _ in self.runs),
                   [])

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=30)

    def reap(self):
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGCONT)
            except OSError:
                pass
        reap(self.proc)


def revive(tag, members, when):
    """An instance that exited without being killed is a failed check; it is started
    again so that the scenario can still judge the outputs."""
    for m in members:
        code = m.proc.poll()
        if code is not None:
            check("%s: %s still runs %s" % (tag, m.name(), when), False,
                  "exit %s: %s" % (code, m.log_text()[-1500:]))
            m.start()


def check_progress(tag, members, guarantee, extra=()):
    """Every progress line of every run says the guarantee and counts transactions."""
    lines = sum((m.all_progress() for m in members), []) + list(extra)
    bad = []
    txn = {"committed": 0, "aborted": 0}
    for p in lines:
        t = p.get("transactions")
        fine = p.get("guarantee") == guarantee and isinstance(t, dict) \
            and all(isinstance(t.get(k), int) for k in txn)
        if guarantee == "at-least-once" and "transactions" not in p:
            fine = p.get("guarantee") == guarantee  # no transactions to count
        if not fine:
            bad.append(p)
            continue
        for k in txn:
            txn[k] += (t or {}).get(k, 0)
    check("%s: every progress line (%d) says \"guarantee\": \"%s\" and counts transactions"
          % (tag, len(lines), guarantee), bool(lines) and not bad,
          json.dumps(bad[:1])[:600] if bad else "no progress line")
    print("%s: transactions in the progress lines: %d committed, %d aborted"
          % (tag, txn["committed"], txn["aborted"]), flush=True)
    if guarantee == "exactly-once":
        check("%s: the runs committed transactions (%d)" % (tag, txn["committed"]),
              txn["committed"] > 0)
    else:
        check("%s: at-least-once counts no transaction" % tag,
              txn == {"committed": 0, "aborted": 0}, txn)
    return txn


def all_partitions():
    return list(range(PARTITIONS))


def committed_moved(c, tag, since, timeout):
    """Waits until every partition's committed offset is past `since`."""
    return wait_committed(c.bootstrap(), names(tag)["group"], names(tag)["in"],
                          all_partitions(),
                          lambda got: all(got[p] > since.get(p, -1) for p in got), timeout)


def committed_of(c, tag):
    return committed_now(c.bootstrap(), names(tag)["group"], names(tag)["in"],
                         all_partitions())


def flowing(c, tag, members, timeout=120):
    """Waits until every instance holds partitions and every partition has a committed
    offset: the group formed and transactions (or commits) go through."""
    ok = wait_for(lambda: all(m.holding() for m in members), timeout)
    if ok:
        ok, got = committed_moved(c, tag, {}, timeout)
    check("%s: the %d instances share the %d partitions (%s) and commit"
          % (tag, len(members), PARTITIONS, " / ".join(str(sorted(m.holding()))
                                                      for m in members)), ok,
          [m.log_text()[-800:] for m in members])
    if not ok:
        raise Abort()


def caught_up_and_stopped(c, tag, members):
    """Waits until the group's committed offsets reach the input's end, then SIGTERMs every
    running instance: each exits 0."""
    ends = end_offsets(c.bootstrap(), names(tag)["in"])
    t0 = time.time()
    ok, got = wait_committed(c.bootstrap(), names(tag)["group"], names(tag)["in"],
                             all_partitions(), ends, 120)
    check("%s: the running instances catch up: committed offsets reach the input's end "
          "%s (%.1f s)" % (tag, ends, time.time() - t0), ok, got)
    live = [m for m in members if m.proc.poll() is None]
    for m in live:
        m.proc.send_signal(signal.SIGTERM)
    for m in live:
        t0 = time.time()
        try:
            code = m.proc.wait(timeout=60 * MULT)
        except Exception:
            code = None
        check("%s: %s exits 0 on SIGTERM (%.1f s)" % (tag, m.name(), time.time() - t0),
              code == 0, "exit %s: %s" % (code, m.log_text()[-1500:]))


def run_to_end(args, timeout):
    """`sluice ARGS...` to its end: (exit code, or None when it outlived timeout (times
    MULT) s and was killed; stdout; stderr)."""
    try:
        r = sluice(args, timeout=timeout)
        return r.returncode, r.stdout, r.stderr
    except subprocess.TimeoutExpired as e:
        text = lambda b: (b.decode(errors="replace") if isinstance(b, bytes) else b) or ""
        return None, text(e.stdout), text(e.stderr)


def final_run(c, tag, path, extra=()):
    """A final availableNow run of the same group: exit 0; its progress lines."""
    t0 = time.time()
    code, out, err = run_to_end(["run", path, "--set", "trigger.availableNow=true"]
                                + list(extra), 240)
    lines = progress_lines(out)
    rows = sum(p.get("numInputRows", 0) for p in lines)
    check("%s: a final availableNow run of the group exits 0 (%.1f s, %d rows left)"
          % (tag, time.time() - t0, rows), code == 0, "exit %s: %s" % (code, err[-1500:]))
    ends = end_offsets(c.bootstrap(), names(tag)["in"])
    got = committed_of(c, tag)
    check("%s: the group's committed offsets are the input's end offsets %s" % (tag, ends),
          got == ends, got)
    return lines


# -- reading back -------------------------------------------------------------------------
def copies(c, topic, isolation):
    """({eid: copies}, [records without an eid]) of a topic."""
    seen, stray = collections.Counter(), []
    for r in read_topic(c.bootstrap(), topic, isolation=isolation, timeout=120):
        eid = r.header("eid")
        if eid is None:
            stray.append((r.partition, r.offset))
        else:
            seen[eid.decode()] += 1
    return seen, stray


def input_read_back(c, tag, writer):
    """The eids the input topic holds (read back with an independent reader), checked
    against what the producer was told it wrote: the expectations are built from what the
    input really holds, so a loss on the way in is not blamed on Sluice."""
    held = collections.Counter()
    for r in read_topic(c.bootstrap(), names(tag)["in"], timeout=120):
        eid = r.header("eid")
        held[eid.decode() if eid else None] += 1
    ok = set(held) == writer.delivered and all(v == 1 for v in held.values())
    check("%s: the input topic holds every record the producer wrote, once (%d)"
          % (tag, len(writer.delivered)), ok,
          "absent %s, unexpected %s" % (sorted(writer.delivered - set(held))[:5],
                                        sorted(str(e) for e in set(held) - writer.delivered)[:5]))
    return lambda *kinds: {e for e in held if e in writer.kind and writer.kind[e] in kinds}


def judge(c, tag, want_out, want_dlq, exactly):
    """Reads output and DLQ read_committed: every wanted eid in its topic (exactly once
    when `exactly`), nothing else. Then read_uncommitted: the extra copies the
    aborted transactions left. Returns (duplicates, extra copies read_uncommitted)."""
    n = names(tag)
    out, stray_out = copies(c, n["out"], "read_committed")
    dlq, stray_dlq = copies(c, n["dlq"], "read_committed")
    dup_out = sum(k - 1 for k in out.values())
    dup_dlq = sum(k - 1 for k in dlq.values())
    lost_out, lost_dlq = want_out - set(out), want_dlq - set(dlq)
    other = sorted((set(out) - want_out) | (set(dlq) - want_dlq))
    what = "exactly once" if exactly else "at least once"
    check("%s: read_committed, every valid event is in %s %s (%d of %d; %d lost, %d "
          "duplicates)" % (tag, n["out"], what, len(set(out) & want_out), len(want_out),
                           len(lost_out), dup_out),
          not lost_out and (dup_out == 0 or not exactly),
          "lost %s; repeated %s" % (sorted(lost_out)[:5],
                                    sorted(e for e, k in out.items() if k > 1)[:5]))
    check("%s: read_committed, every invalid event is in %s %s (%d of %d; %d lost, %d "
          "duplicates)" % (tag, n["dlq"], what, len(set(dlq) & want_dlq), len(want_dlq),
                           len(lost_dlq), dup_dlq),
          not lost_dlq and (dup_dlq == 0 or not exactly),
          "lost %s; repeated %s" % (sorted(lost_dlq)[:5],
                                    sorted(e for e, k in dlq.items() if k > 1)[:5]))
    check("%s: nothing else is in the output or the DLQ" % tag,
          not other and not stray_out and not stray_dlq,
          (other[:5], stray_out[:3], stray_dlq[:3]))
    if not exactly:
        print("%s: read_committed duplicates under at-least-once: %d in the output, %d in "
              "the DLQ (of %d events)" % (tag, dup_out, dup_dlq, len(want_out) + len(want_dlq)),
              flush=True)
    u_out, _ = copies(c, n["out"], "read_uncommitted")
    u_dlq, _ = copies(c, n["dlq"], "read_uncommitted")
    extra = sum(u_out.values()) + sum(u_dlq.values()) - sum(out.values()) - sum(dlq.values())
    print("%s: read_uncommitted sees %d records more than read_committed (records of "
          "aborted transactions; %d distinct events among them)"
          % (tag, extra, sum(1 for e in set(u_out) | set(u_dlq)
                             if u_out[e] + u_dlq[e] > out[e] + dlq[e])), flush=True)
    return dup_out + dup_dlq, extra


# -- scenarios ----------------------------------------------------------------------------
def config_checks(c):
    """0: exactly-once refuses the cooperative assignor at start, and an unknown guarantee."""
    tag = "eo-config"
    path = pipeline(c, tag, guarantee=None)
    t0 = time.time()
    code, out, err = run_to_end(["run", path, "--set", "guarantee=exactly-once", "--set",
                                 "source.kafka.partition.assignment.strategy=cooperative-sticky"],
                                60)
    print("config: cooperative-sticky with exactly-once: exit %s in %.1f s: %s"
          % (code, time.time() - t0, err.strip().splitlines()[-1:]), flush=True)
    check("config: exactly-once with source.kafka.partition.assignment.strategy="
          "cooperative-sticky fails at start (exit %s; 2 expected for a bad option), "
          "naming the option" % code,
          code not in (0, None) and "partition.assignment.strategy" in err
          and not progress_lines(out), err[-800:])
    code, out, err = run_to_end(["run", path, "--set", "guarantee=exactly-twice"], 60)
    check("config: an unknown guarantee (exactly-twice) fails at start with exit 2, naming "
          "`guarantee`", code == 2 and "guarantee" in err, (code, err[-800:]))


def kills(c, tag, guarantee, at_least, n_kills, dedup=False, fixed_ids=False,
          broker_kill=False, seed=1):
    """1, 2 and 3: three instances, kill -9 of a random holder n_kills times while events
    arrive (and of an output partition's leader broker once, after the second)."""
    began = time.time()
    exactly = guarantee == "exactly-once"
    make_topics(c, tag, dedup)
    # The at-least-once contrast leaves the guarantee to the default.
    path = pipeline(c, tag, guarantee=guarantee if exactly else None, dedup=dedup)

    def args(slot):
        a = [path]
        if fixed_ids:
            a += ["--set", "sink.kafka.transactional.id=%s-%d" % (tag, slot)]
        if dedup:
            a += ["--set", "dedup.stateDir=" + os.path.join(WORK, "%s-state-%d" % (tag, slot))]
        return a

    writer = Writer(c.bootstrap(), tag, RATE, at_least, copy_distance=400 if dedup else 0)
    writer.start()
    members = [Member(tag, slot, args(slot)) for slot in range(3)]
    rng = random.Random(seed)
    try:
        flowing(c, tag, members)
        for k in range(1, n_kills + 1):
            revive(tag, members, "before kill %d" % k)
            time.sleep(rng.uniform(1.0, 3.0))  # pacing: the victim is mid-epoch
            holders = [m for m in members if m.holding()] or members
            victim = rng.choice(holders)
            held = sorted(victim.holding())
            handled = len(victim.progress())
            victim.kill()
            killed = time.time()
            print("%s: kill %d: kill -9 %s, holding partitions %s after %d epochs, while "
                  "the producer writes (%d events so far)"
                  % (tag, k, victim.name(), held, handled, writer.events), flush=True)
            victim.start()
            ok = wait_for(lambda: victim.holding() or victim.proc.poll() is not None, 90)
            since = committed_of(c, tag)
            ok = ok and bool(victim.holding()) and committed_moved(c, tag, since, 90)[0]
            check("%s: kill %d: the group settles (the restarted %s holds %s) and every "
                  "partition's committed offset moves on (%.1f s after the kill)"
                  % (tag, k, victim.name(), sorted(victim.holding()), time.time() - killed),
                  ok, victim.log_text()[-1500:])
            if broker_kill and k == 2:
                kill_broker(c, tag, members)
        revive(tag, members, "after the kills")
        check("%s: the %d kills landed while the producer was writing" % (tag, n_kills),
              writer.is_alive(), writer.events)
        writer.finish(tag)
        caught_up_and_stopped(c, tag, members)
        last = final_run(c, tag, path,
                         ["--set", "dedup.stateDir=" + os.path.join(WORK, tag + "-state-final")]
                         if dedup else [])
        check_progress(tag, members, guarantee, last)
        of_kind = input_read_back(c, tag, writer)
        want_dlq = of_kind("invalid", "copy-invalid")
        want_out = of_kind("valid")
        dups, extra = judge(c, tag, want_out, want_dlq, exactly)
        if dedup:
            out = read_topic(c.bootstrap(), names(tag)["out"], timeout=120)
            per_key = collections.Counter(json.loads(r.value)["order_id"] for r in out)
            keys = {"%s-o%s" % (tag, e.rsplit("-", 1)[1]) for e in want_out}
            check("%s: exactly one output per business key (%d keys, each written twice; "
                  "%d outputs)" % (tag, len(keys), len(out)),
                  set(per_key) == keys and all(v == 1 for v in per_key.values()),
                  "missing %d, repeated %s" % (
                      len(keys - set(per_key)),
                      sorted(k for k, v in per_key.items() if v > 1)[:5]))
            dropped = sum(op.get("customMetrics", {}).get("numDroppedDuplicateRows", 0)
                          for m in members for p in m.all_progress() + last
                          for op in p.get("stateOperators", []))
            print("%s: duplicates dropped in the progress lines: %d (of %d copies of valid "
                  "events; replays of aborted epochs count again)"
                  % (tag, dropped, len(of_kind("copy-valid"))), flush=True)
        if exactly and not dedup:
            check("%s: the contrast: read_uncommitted sees records of the transactions the "
                  "kills left open (%d more than read_committed)" % (tag, extra), extra > 0,
                  "0: no kill landed inside a transaction that had written records")
        print("%s: done in %.0f s" % (tag, time.time() - began), flush=True)
    finally:
        writer.stop()
        for m in members:
            m.reap()


def kill_broker(c, tag, members):
    """Kills -9 the broker leading output partition 0; the group goes on without it;
    started again, and in sync before the next kill."""
    out = names(tag)["out"]
    node = c.leader(out, 0)
    since = committed_of(c, tag)
    c.kill_node(node)
    killed = time.time()
    print("%s: kill -9 broker %d (leader of %s/0)" % (tag, node, out), flush=True)
    ok, got = committed_moved(c, tag, since, 120)
    check("%s: with broker %d down, every partition's committed offset moves on (%.1f s)"
          % (tag, node, time.time() - killed), ok, got)
    c.start_node(node)
    c.wait_ready(timeout=120 * MULT)
    c.wait_in_sync(timeout=180 * MULT)
    print("%s: broker %d is back and in sync after %.1f s" % (tag, node, time.time() - killed),
          flush=True)
    revive(tag, members, "through the broker kill")


def zombie(c, tag="eo-zombie", stalled=False, fixed_ids=False):
    """4: a holder SIGSTOPped past the session timeout, its partitions moved, SIGCONT.
    `stalled`: past the default transaction timeout too (10 s), so that the broker aborts
    its transaction and fences its producer: it must renew the producer and rejoin.
    `fixed_ids`: each instance with a transactional id of its own, set by the user."""
    began = time.time()
    make_topics(c, tag)
    sink = None if stalled else {"kafka.transaction.timeout.ms": 30000}
    path = pipeline(c, tag, guarantee=None, sink=sink)
    args = [path, "--set", "guarantee=exactly-once"]
    writer = Writer(c.bootstrap(), tag, RATE, 6000)
    writer.start()
    members = [Member(tag, slot, args + (["--set", "sink.kafka.transactional.id=%s-%d"
                                           % (tag, slot)] if fixed_ids else []))
               for slot in range(2)]
    a, b = members
    try:
        flowing(c, tag, members)
        time.sleep(1.5)  # pacing: the zombie-to-be is mid-epoch, its transaction written to
        held = sorted(a.holding())
        since = committed_of(c, tag)
        a.proc.send_signal(signal.SIGSTOP)
        stopped = time.time()
        print("%s: SIGSTOP %s, holding %s" % (tag, a.name(), held), flush=True)
        ok = wait_for(lambda: b.holding() == set(all_partitions()), 90)
        check("%s: the other instance holds all %d partitions %.1f s after the stop (session "
              "timeout %d ms)" % (tag, PARTITIONS, time.time() - stopped, SESSION_MS), ok,
              b.log_text()[-1500:])
        if not ok:
            raise Abort()
        time.sleep(max(0.0, stopped + 2.5 * SESSION_MS / 1000.0 - time.time()))
        now = committed_of(c, tag)
        print("%s: while the zombie slept, the committed offsets of its partitions %s moved "
              "from %s to %s" % (tag, held, {p: since[p] for p in held},
                                 {p: now[p] for p in held}), flush=True)
        marks = (len(a.holdings()), len(a.progress()))
        a.proc.send_signal(signal.SIGCONT)
        resumed = time.time()
        print("%s: SIGCONT after %.1f s" % (tag, resumed - stopped), flush=True)

        def fate():
            if a.proc.poll() is not None:
                return "exited"
            after = a.holdings()[marks[0]:]
            went_on = any(p.get("transactions", {}).get("committed", 0) > 0
                          for p in a.progress()[marks[1]:])
            if after and after[-1] and went_on:
                return "rejoined"
            return None

        wait_for(lambda: fate() is not None, 90)
        how = fate()
        after = a.progress()[marks[1]:]
        if after:
            print("%s: the zombie's first progress line after SIGCONT: transactions %s, "
                  "message %r" % (tag, after[0].get("transactions"), after[0].get("message")),
                  flush=True)
        if stalled:
            text = a.log_text()
            fenced = "Kafka producer (sink): fenced (" in text
            if not fenced:
                # A stop between a commit and the next write leaves the broker no open
                # transaction to time out (a few ms of each epoch): said, not failed.
                print("%s: no fence: the stop landed between two transactions" % tag,
                      flush=True)
            check("%s: the fenced zombie renews its producer, rejoins and goes on committing "
                  "(%s)" % (tag, how), how == "rejoined" and (not fenced or
                                                            "renewed after a fence" in text),
                  text[-2500:])
        elif how == "exited":
            text = a.log_text()
            failed = [l for l in text.splitlines() if "run failed" in l] or text.splitlines()[-3:]
            print("%s: the zombie exited %s: %s" % (tag, a.proc.returncode, failed[-1:]),
                  flush=True)
            check("%s: the zombie exits 1 with the reason (fencing, generation, member) on "
                  "stderr" % tag, a.proc.returncode == 1 and bool(FENCING.search(text)),
                  (a.proc.returncode, text[-1500:]))
        else:
            print("%s: the zombie %s (%.1f s after SIGCONT): holds %s"
                  % (tag, how or "neither rejoined nor exited", time.time() - resumed,
                     sorted(a.holding())), flush=True)
            check("%s: the zombie either rejoins the group and goes on committing, or exits"
                  % tag, how == "rejoined", a.log_text()[-1500:])
        since = committed_of(c, tag)
        ok, got = committed_moved(c, tag, since, 90)
        check("%s: the group goes on after the zombie's return: every partition's committed "
              "offset moves" % tag, ok, got)
        if b.proc.poll() is not None:
            check("%s: the other instance still runs" % tag, False, b.log_text()[-1500:])
        writer.finish(tag)
        caught_up_and_stopped(c, tag, members)
        last = final_run(c, tag, path, ["--set", "guarantee=exactly-once"])
        check_progress(tag, members, "exactly-once", last)
        of_kind = input_read_back(c, tag, writer)
        judge(c, tag, of_kind("valid"), of_kind("invalid"), True)
        print("%s: done in %.0f s" % (tag, time.time() - began), flush=True)
    finally:
        writer.stop()
        for m in members:
            m.reap()


def scenario(fn, *args, **kw):
    """Runs one scenario: an Abort ends it (the failed check before it says why), any
    other exception is a failed check with its trace; the next scenario runs either way."""
    try:
        fn(*args, **kw)
    except Abort:
        pass
    except Exception:
        traceback.print_exc()
        check("%s %s: no unexpected error" % (fn.__name__, args[1] if len(args) > 1 else ""),
              False)


def main():
    t0 = time.time()
    with Cluster(os.path.join(WORK, "cluster"), nodes=3, broker_config=BROKER_CONFIG) as c:
        print("3-node cluster ready in %.1f s" % (time.time() - t0), flush=True)
        scenario(config_checks, c)
        scenario(kills, c, "eo-kills", "exactly-once", 30000, 5, fixed_ids=True,
                 broker_kill=True, seed=11)
        scenario(kills, c, "eo-alo", "at-least-once", 8000, 2, seed=12)
        scenario(kills, c, "eo-dedup", "exactly-once", 8000, 3, dedup=True, seed=13)
        scenario(zombie, c)
        scenario(zombie, c, "eo-stalled", stalled=True)
        scenario(zombie, c, "eo-stalled-fixed", stalled=True, fixed_ids=True)
    print("exactly-once test: %.0f s" % (time.time() - t0), flush=True)


run_test(main)
