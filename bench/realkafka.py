"""What the real-Kafka benches share: their processes, the machine's CPU, the broker and its
topics, a latency reader (bench/anchors_bench.py, exactly_once_bench.py, scaling_bench.py,
latency_bench.py). Run with the real-Kafka tier's Python (`scripts/kafka.sh python ...`):
confluent-kafka and scripts/kafka/cluster.py."""
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "scripts", "kafka"))

from confluent_kafka import Consumer, KafkaException, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

# The order parse schema of src/testing/order_events.cpp (`sluice produce`'s events).
SCHEMA = {"order_id": "string", "customer_id": "string", "product_id": "string",
          "quantity": "int", "price": "double", "order_time": "timestamp",
          "priority": "string"}
REQUIRED = ["order_id", "customer_id", "quantity", "price", "priority"]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def log_time(text):
    """A Sluice log line's timestamp (local time, ms; colours stripped) as epoch seconds."""
    text = ANSI.sub("", text)
    return time.mktime(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")) + int(text[20:23]) / 1e3


def route_pipeline(name, bootstrap, source, topic_out, dlq):
    """run_bench.sh's pipeline: the order schema, a fixed route, a DLQ, headers kept,
    `fetch.wait.max.ms` 50 and `linger.ms` 5; `source` adds the subscription and bounds."""
    src = {"kafka.bootstrap.servers": bootstrap, "startingOffsets": "earliest",
           "includeHeaders": True, "kafka.fetch.wait.max.ms": 50}
    src.update(source)
    return {"name": name, "source": src,
            "parse": {"format": "json", "schema": SCHEMA, "required": REQUIRED},
            "route": {"topic": topic_out},
            "sink": {"kafka.bootstrap.servers": bootstrap, "kafka.linger.ms": 5},
            "dlq": {"topic": dlq}}

_prctl = __import__("ctypes").CDLL("libc.so.6", use_errno=True).prctl
started = []  # every process this script started (Popen), ended by the cleanup


def die_with_parent():
    _prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    os.setpgid(0, 0)           # its own group: /usr/bin/time and its sluice end together


def spawn(cmd, **kw):
    p = subprocess.Popen(cmd, preexec_fn=die_with_parent, **kw)
    started.append(p)
    return p


def end_process(p, sig=signal.SIGKILL):
    if p.poll() is None:
        try:
            os.killpg(p.pid, sig)
        except OSError:
            pass
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


HZ = os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pid):
    """User + system CPU seconds of a running process (all its threads), from /proc."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def cpu_snapshot(broker_pids):
    """(all CPUs' busy seconds, the broker JVMs' CPU seconds, this script's CPU seconds,
    the CPU seconds of its children that ended, grandchildren included)."""
    import resource
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    busy = (sum(v[:8]) - v[3] - v[4]) / HZ  # all but idle and iowait
    jvm = 0.0
    for pid in broker_pids:
        try:
            jvm += proc_cpu_seconds(pid)
        except (OSError, IndexError, ValueError):
            pass
    t = os.times()
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return busy, jvm, t.user + t.system, c.ru_utime + c.ru_stime


def others_cpu(args, before, after, r):
    """What the machine spent meanwhile besides the broker, this script and its children
    (Sluice, a producer): a build or a test run meanwhile shows here."""
    d = [a - b for a, b in zip(after, before)]
    r["busy_cpu"], r["broker_cpu"], r["self_cpu"], r["children_cpu"] = d
    r["other_cpu"] = d[0] - d[1] - d[2] - d[3]
    if not args.broker_pids:
        r["other_cpu"] += d[1]  # an outside cluster: the broker is in it
    r["disturbed"] = r["other_cpu"] > args.disturbed


def pct(values, q):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100.0 * (len(s) - 1))))]


class Stamped(threading.Thread):
    """Reads a process's stdout lines, each with the time it arrived; keeps a copy in a file."""

    def __init__(self, proc, path):
        super().__init__(daemon=True)
        self.proc, self.path, self.lines = proc, path, []
        self.start()

    def run(self):
        with open(self.path, "w") as f:
            for line in self.proc.stdout:
                self.lines.append((time.time(), line.rstrip("\n")))
                f.write(line)


class Reader(threading.Thread):
    """A read_committed consumer of topic from its beginning: per record, the time it
    arrived, its timestamp and its correlation id."""

    def __init__(self, kafka, topic, partitions):
        super().__init__(daemon=True)
        self.c = kafka.consumer("eob-latency-" + uuid.uuid4().hex[:8],
                                **{"isolation.level": "read_committed",
                                   "fetch.wait.max.ms": 20})
        self.c.assign([TopicPartition(topic, p, -2) for p in range(partitions)])
        self.got, self.stopping = [], threading.Event()
        self.start()

    def run(self):
        # poll, not consume(n, t): a batch call waits for n records or t, and its
        # records would all be stamped at its return.
        while not self.stopping.is_set():
            m = self.c.poll(0.05)
            if m is not None and not m.error():
                self.got.append((time.time(), m.timestamp()[1] / 1e3, correlation(m)))
        self.c.close()


# -- the cluster and its topics -------------------------------------------------------------
class Kafka:
    def __init__(self, bootstrap):
        self.bootstrap = bootstrap
        self.admin = AdminClient({"bootstrap.servers": bootstrap})

    def create(self, topics):
        """topics: {name: partitions}; waits until every partition's leader answers."""
        fs = self.admin.create_topics([NewTopic(t, n, 1) for t, n in topics.items()],
                                      operation_timeout=60)
        for t, f in fs.items():
            try:
                f.result()
            except KafkaException as e:
                if e.args[0].name() != "TOPIC_ALREADY_EXISTS":
                    raise
        c = self.consumer("eob-ready")
        try:
            for t, n in topics.items():
                deadline = time.time() + 60
                for p in range(n):
                    while True:
                        try:
                            c.get_watermark_offsets(TopicPartition(t, p), timeout=5)
                            break
                        except KafkaException:
                            if time.time() > deadline:
                                raise
                            time.sleep(0.2)
        finally:
            c.close()

    def delete(self, topics):
        """Deletes topics (a bench's outputs once checked: the broker stays lean)."""
        for f in self.admin.delete_topics(list(topics), operation_timeout=60).values():
            try:
                f.result()
            except KafkaException:
                pass

    def consumer(self, group, **conf):
        return Consumer(dict({"bootstrap.servers": self.bootstrap, "group.id": group,
                              "enable.auto.commit": False, "enable.partition.eof": False},
                             **conf))

    def ends(self, topic):
        c = self.consumer("eob-ends")
        try:
            md = c.list_topics(topic, timeout=10)
            return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                    for p in sorted(md.topics[topic].partitions)}
        finally:
            c.close()

    def committed(self, group, topic, partitions):
        c = self.consumer(group)
        try:
            for _ in range(60):
                try:
                    got = c.committed([TopicPartition(topic, p) for p in partitions],
                                      timeout=10)
                    return {tp.partition: tp.offset for tp in got}
                except KafkaException as e:
                    if not e.args[0].retriable():
                        raise
                    time.sleep(0.5)
            raise RuntimeError("no answer for the committed offsets of " + group)
        finally:
            c.close()

    def mean_value_bytes(self, topic, sample=1000):
        """The mean value size of the first `sample` records of partition 0."""
        c = self.consumer("bench-sample")
        try:
            c.assign([TopicPartition(topic, 0, 0)])
            sizes = []
            deadline = time.time() + 30
            while len(sizes) < sample and time.time() < deadline:
                sizes += [len(m.value() or b"") for m in c.consume(sample, 1.0)
                          if not m.error()]
            return sum(sizes) / len(sizes) if sizes else 0
        finally:
            c.close()

    def read(self, topic, each, timeout=300):
        """Calls each(message) for every record of topic up to its end as of now, read
        read_committed; the positions say when the end is reached (past the markers)."""
        c = self.consumer("eob-reader", **{"isolation.level": "read_committed",
                                           "fetch.max.bytes": 52428800})
        try:
            md = c.list_topics(topic, timeout=10)
            ends, assign = {}, []
            for p in sorted(md.topics[topic].partitions):
                lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                if hi > lo:
                    ends[p] = hi
                    assign.append(TopicPartition(topic, p, lo))
            if not assign:
                return True
            c.assign(assign)
            deadline = time.time() + timeout
            while ends and time.time() < deadline:
                for m in c.consume(10000, 0.5):
                    if not m.error():
                        each(m)
                for tp in c.position([TopicPartition(topic, p) for p in list(ends)]):
                    if tp.offset >= ends[tp.partition]:
                        ends.pop(tp.partition)
            return not ends
        finally:
            c.close()


def correlation(m):
    for k, v in m.headers() or ():
        if k == "correlation-id":
            return v
    return None


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def other_kafka():
    """Kafka broker JVMs running on this machine (pid, command line): one cluster at a time."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        if b"kafka.Kafka" in cmd:
            found.append((int(pid), b" ".join(cmd)[-120:].decode(errors="replace")))
    return found


def snapshot_binary(args):
    """Copies sluice and the shared libraries of its build tree (libsluice*.so, found
    through its RUNPATH) into OUT/bin and runs that copy (LD_LIBRARY_PATH, which a RUNPATH
    yields to): a rebuild while the bench runs cannot change what is measured. Returns a
    line naming the copy (mtime and sha256 of the binary and of each library)."""
    import hashlib
    bindir = os.path.join(args.out, "bin")
    os.makedirs(bindir, exist_ok=True)
    out = subprocess.run(["ldd", args.sluice], capture_output=True, text=True).stdout
    libs = [m.group(1) for m in re.finditer(r"=> (\S+) \(", out)
            if not m.group(1).startswith(("/lib", "/usr"))]
    names = []
    for path in [args.sluice] + libs:
        dest = os.path.join(bindir, os.path.basename(path))
        shutil.copy2(path, dest)
        with open(dest, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:12]
        names.append("%s (%s, sha256 %s)" % (os.path.basename(path), time.strftime(
            "%Y-%m-%d %H:%M:%S", time.gmtime(os.path.getmtime(path))), digest))
    os.environ["LD_LIBRARY_PATH"] = bindir + (
        ":" + os.environ["LD_LIBRARY_PATH"] if os.environ.get("LD_LIBRARY_PATH") else "")
    args.sluice = os.path.join(bindir, os.path.basename(args.sluice))
    return ", ".join(names)


def prepare_out(args, prefix):
    """args.out made (a new /tmp/PREFIX.* unless given), the binary snapshotted into it
    (args.built names the copy), and args.tag, this run's suffix for topic and group
    names."""
    import tempfile
    args.out = os.path.abspath(args.out or tempfile.mkdtemp(prefix=prefix + "."))
    os.makedirs(args.out, exist_ok=True)
    args.sluice = os.path.abspath(args.sluice)
    args.built = snapshot_binary(args)
    args.tag = uuid.uuid4().hex[:6]


def produce_and_wait(sluice, bootstrap, topic, count, rate, reader, proc, r,
                     written=None):
    """`sluice produce --rate` of `count` order events (seed 2) into `topic`; written()
    once it ended; then up to 60 s for `reader` to have them while `proc` runs, and 1 s
    more (duplicates would come then). A failed produce goes into r["why"]. Returns when
    the producer ended."""
    prod = subprocess.run([sluice, "produce", "--bootstrap", bootstrap, "--topic", topic,
                           "--count", str(count), "--rate", str(rate), "--seed", "2"],
                          capture_output=True, text=True, preexec_fn=die_with_parent)
    r["produce"] = (prod.stdout + prod.stderr).strip().splitlines()[:1]
    if prod.returncode != 0:
        r["why"].append("produce exit %d" % prod.returncode)
    done = time.time()
    if written:
        written()
    deadline = done + 60
    while len(reader.got) < count and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(1.0)
    return done


def common_arguments(ap, run_timeout, retries):
    """The options every real-Kafka bench takes: the binary, the input, the rounds, the
    cluster, time limits, the disturbed-run rule, where results go."""
    ap.add_argument("sluice")
    ap.add_argument("--events", type=int, default=1000000)
    ap.add_argument("--partitions", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bootstrap", help="use this running cluster (nothing is started)")
    ap.add_argument("--run-timeout", type=int, default=run_timeout)
    ap.add_argument("--disturbed", type=float, default=2.0,
                    help="others' CPU s above which a run is left out of the medians")
    ap.add_argument("--retries", type=int, default=retries,
                    help="a disturbed run is run again at most this many times")
    ap.add_argument("--out")


def fill_input(kafka, sluice, topic, partitions, events, value_bytes=0):
    """Creates `topic` and fills it, once, with `sluice produce --count events --seed 1`
    (order events, none malformed, each `--value-bytes` long when given; a reused cluster
    keeps it); returns its end offsets."""
    kafka.create({topic: partitions})
    ends = kafka.ends(topic)
    if sum(ends.values()) != events:
        t = time.time()
        fit = ["--value-bytes", str(value_bytes)] if value_bytes else []
        subprocess.run([sluice, "produce", "--bootstrap", kafka.bootstrap, "--topic", topic,
                        "--count", str(events), "--seed", "1"] + fit, check=True,
                       stdout=subprocess.DEVNULL, preexec_fn=die_with_parent)
        print("filled %s in %.1f s" % (topic, time.time() - t), flush=True)
        ends = kafka.ends(topic)
    if sum(ends.values()) != events:
        raise RuntimeError("%s holds %d records, not %d (a topic of another run? use a fresh "
                           "cluster)" % (topic, sum(ends.values()), events))
    return ends


def alternating_rounds(kinds, rounds, retries, run, show, pause=0.0):
    """Every kind once per round, the order rotated from round to round; a run marked
    disturbed (shared with other work) is run again, at most `retries` times.
    run(kind, round, attempt) -> result dict with "disturbed"; show(result) prints it."""
    results = []
    for rnd in range(rounds):
        order = kinds[rnd % len(kinds):] + kinds[:rnd % len(kinds)]
        for kind in order:
            for attempt in range(retries + 1):
                r = run(kind, rnd, attempt)
                results.append(r)
                show(r)
                time.sleep(pause)
                if not r["disturbed"]:
                    break
    return results


class Broker:
    """One Kafka node for a bench (scripts/kafka/cluster.py: KRaft, broker and controller in
    one JVM with a 1 GB heap on loopback), or a cluster that already runs (`bootstrap`:
    nothing is started or stopped then). Refuses to start while another broker runs on the
    machine: two would share the cores and skew every figure."""

    def __init__(self, out, bootstrap=None):
        self.cluster, self.out, self.pids = None, out, []
        if bootstrap:
            self.bootstrap, self.description = bootstrap, "a running cluster at " + bootstrap
            return
        running = other_kafka()
        if running:
            raise SystemExit("another Kafka cluster runs on this machine (%s): one at a "
                             "time; stop it, or use it with --bootstrap" % running)
        from cluster import Cluster
        self.cluster = Cluster(os.path.join(out, "kafka"), nodes=1, heap="1g")
        self.cluster.start()
        self.bootstrap = self.cluster.bootstrap()
        self.pids = [p.pid for p in self.cluster.procs.values()]
        self.description = ("Kafka %s, 1 node (KRaft, broker+controller, heap 1g) on loopback"
                            % self.cluster.version)

    def stop(self):
        """Ends every process the bench started, then the broker it started (its data goes)."""
        for p in list(started):
            end_process(p)
        if self.cluster is not None:
            import gc
            gc.collect()  # admin clients go before the broker (no reconnect noise)
            self.cluster.stop()
            shutil.rmtree(os.path.join(self.out, "kafka", "node-1", "data"), ignore_errors=True)


def run_bench(args, body):
    """A bench's life around its rounds: SIGTERM raised as an interrupt, the broker
    started (Broker: one node, or the cluster at args.bootstrap), args.broker_pids and
    args.load set, then body(kafka, broker) -> (report text, what results.json holds,
    whether every run passed); the report written to OUT/report.md and printed, the
    results to OUT/results.json; the broker stopped whatever happens. Returns the exit
    code: 1 when a run failed."""
    import json

    def on_signal(sig, _frame):
        raise KeyboardInterrupt("signal %d" % sig)
    signal.signal(signal.SIGTERM, on_signal)
    broker, began = None, time.time()
    try:
        broker = Broker(args.out, args.bootstrap)
        args.broker_pids = broker.pids
        print("bootstrap.servers=%s; results in %s" % (broker.bootstrap, args.out), flush=True)
        args.load = load_average()
        text, results, passed = body(Kafka(broker.bootstrap), broker)
        with open(os.path.join(args.out, "report.md"), "w") as f:
            f.write(text + "\n")
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump(results, f, indent=1, default=str)
        print()
        print(text)
        print("whole bench: %.0f s" % (time.time() - began))
        return 0 if passed else 1
    finally:
        if broker is not None:
            broker.stop()


def latency_figures(kafka, got, count, topic_in, tsv, t_start, r):
    """The checks and figures of a latency run from what a Reader got (time received,
    timestamp, correlation id), into r: `count` records, all distinct; each output's
    timestamp its input's (topic_in read back); every latency written to `tsv`;
    p50/p90/p99/max over all, and s_p50/s_p99/s_max from 2 s after t_start (steady)."""
    ids = {g[2] for g in got}
    r["received"], r["distinct"] = len(got), len(ids)
    if len(got) != count or len(ids) != count:
        r["why"].append("read_committed: %d records, %d distinct (want %d)"
                        % (len(got), len(ids), count))
    stamps = {}

    def each(m):
        stamps[correlation(m)] = m.timestamp()[1] / 1e3
    kafka.read(topic_in, each)
    differ = sum(1 for _, ts, cid in got if stamps.get(cid) != ts)
    r["timestamp_mismatch"] = differ
    if differ:
        r["why"].append("%d output(s) whose timestamp is not their input's" % differ)
    with open(tsv, "w") as f:
        f.write("received\ttimestamp\tlatency_ms\n")
        for now, ts, _ in got:
            f.write("%.3f\t%.3f\t%.1f\n" % (now, ts, (now - ts) * 1e3))
    lat = [(now - ts) * 1e3 for now, ts, _ in got]
    steady = [(now - ts) * 1e3 for now, ts, _ in got if ts >= t_start + 2]
    r.update(p50=pct(lat, 50), p90=pct(lat, 90), p99=pct(lat, 99),
             max=max(lat) if lat else float("nan"), s_p50=pct(steady, 50),
             s_p99=pct(steady, 99), s_max=max(steady) if steady else float("nan"))


def load_average():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]
