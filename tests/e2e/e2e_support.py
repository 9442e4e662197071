"""Helpers shared by the end-to-end scripts (cli_test.py, group_test.py, fault_test.py).

Each script imports this module from its own directory. The path of the `sluice`
binary is the script's first argument; SLUICE_TEST_TIMEOUT_MULTIPLIER scales the
timeouts. Checks are recorded in `results`; finish() prints 'N passed, N failed'
and exits with 0 only when nothing failed.
"""
import atexit
import base64
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback

from confluent_kafka import Consumer, TopicPartition

SLUICE = os.path.abspath(sys.argv[1])
MULT = float(os.environ.get("SLUICE_TEST_TIMEOUT_MULTIPLIER", "1"))
results = []
procs = []  # every process started with start(), stopped by the cleanup


class Abort(Exception):
    """A check failed that the rest of the test depends on."""


def check(name, ok, detail=""):
    results.append(ok)
    print(("PASS " if ok else "FAIL ") + name + ("" if ok or not detail else ": " + str(detail)),
          flush=True)
    return ok


def finish():
    """Prints 'N passed, N failed' and exits, with 1 when a check failed."""
    passed = sum(1 for r in results if r)
    failed = len(results) - passed
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(0 if failed == 0 else 1)


def wait_for(cond, timeout):
    deadline = time.time() + timeout * MULT
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


class Lines:
    """Collects a process's stdout lines on a thread."""

    def __init__(self, proc):
        self.lines = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self.thread.start()

    def _read(self, proc):
        for line in proc.stdout:
            with self.lock:
                self.lines.append(line.rstrip("\n"))

    def snapshot(self):
        with self.lock:
            return list(self.lines)


# -- processes --------------------------------------------------------------------------
# Looked up here, not in the child: between fork and exec nothing may take a lock
# (an import would, and the tests run threads).
_prctl = __import__("ctypes").CDLL("libc.so.6", use_errno=True).prctl


def die_with_parent():
    """In a child, before exec: SIGKILL when the test that started it dies, even by
    SIGKILL (a CTest timeout), so that no run or broker outlives its test."""
    _prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def start(args, **kw):
    """Starts `sluice ARGS...`, remembered in procs; it dies with the test."""
    kw.setdefault("preexec_fn", die_with_parent)
    p = subprocess.Popen([SLUICE] + args, **kw)
    procs.append(p)
    return p


def start_run(args, log):
    """Starts `sluice run ARGS...` with stderr in the file log: (process, its Lines)."""
    proc = start(["run"] + args, stdout=subprocess.PIPE, stderr=open(log, "w"), text=True)
    return proc, Lines(proc)


def reap(p):
    """Kills p if it still runs and waits up to 10 s for it."""
    if p.poll() is None:
        p.kill()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def install_cleanup(work, broker_first=False):
    """At exit, kills whatever is still running (the last started first) and removes the
    directory work (kept when SLUICE_TEST_KEEP_WORK is set, to read logs). With broker_first, procs[0] is the broker: it gets SIGINT and 10 s to
    stop cleanly before it is killed. SIGTERM exits with 143, so `finally` and this run."""

    def cleanup():
        for p in reversed(procs):
            if p.poll() is None:
                if broker_first and p is procs[0]:
                    p.send_signal(signal.SIGINT)
                    try:
                        p.wait(timeout=10)
                        continue
                    except subprocess.TimeoutExpired:
                        pass
                reap(p)
        if os.environ.get("SLUICE_TEST_KEEP_WORK"):
            print("kept %s (SLUICE_TEST_KEEP_WORK)" % work, flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)

    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


# -- the broker -------------------------------------------------------------------------
def start_broker(brokers, topics, bootstrap_file):
    """Starts `sluice broker` with topics ("name:partitions") and checks that it prints
    bootstrap.servers first (raises Abort when not): (process, bootstrap servers)."""
    broker = start(["broker", "--brokers", str(brokers)]
                   + sum((["--topic", t] for t in topics), [])
                   + ["--bootstrap-file", bootstrap_file],
                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    ready, _, _ = select.select([broker.stdout], [], [], 30 * MULT)
    first = broker.stdout.readline().strip() if ready else ""
    if not check("broker prints bootstrap.servers first", first.startswith("bootstrap.servers="),
                 first):
        raise Abort()
    return broker, first.split("=", 1)[1]


def stop_broker(broker):
    """SIGINT, up to 30 s (x multiplier) to stop, then killed; checks that it exited 0."""
    broker.send_signal(signal.SIGINT)
    try:
        code = broker.wait(timeout=30 * MULT)
    except subprocess.TimeoutExpired:
        broker.kill()
        code = None
    check("the broker exits 0 on SIGINT", code == 0, code)


# -- reading back with confluent-kafka --------------------------------------------------
def topic_partitions(consumer, topic):
    md = consumer.list_topics(topic, timeout=10)
    return sorted(md.topics[topic].partitions.keys())


class Record:
    """A record read back by read_topic.py, with confluent-kafka Message's accessors."""

    def __init__(self, d):
        unb64 = lambda v: None if v is None else base64.b64decode(v)
        self._d = d
        self._key, self._value = unb64(d["key"]), unb64(d["value"])
        self._headers = [(k, unb64(v)) for k, v in d["headers"]] or None

    def topic(self): return self._d["topic"]
    def partition(self): return self._d["partition"]
    def offset(self): return self._d["offset"]
    def key(self): return self._key
    def value(self): return self._value
    def headers(self): return self._headers
    def error(self): return None


def read_all(bootstrap, topic):
    """Every record of a topic, read with confluent-kafka (not Sluice), in a process
    of its own: run again when librdkafka aborts it (see read_topic.py)."""
    reader = os.path.join(os.path.dirname(os.path.abspath(__file__)), "read_topic.py")
    for attempt in range(3):
        r = subprocess.run(["/usr/bin/python3", reader, bootstrap, topic, str(60 * MULT)],
                           capture_output=True, text=True, timeout=120 * MULT)
        if r.returncode == 0:
            return [Record(json.loads(l)) for l in r.stdout.splitlines()]
        if "Assertion" not in r.stderr:
            raise RuntimeError("reading %s failed: %s" % (topic, r.stderr[-500:]))
        print("read_topic.py aborted in librdkafka; reading %s again" % topic, flush=True)
    raise RuntimeError("reading %s aborted three times" % topic)


# -- judging records independently -------------------------------------------------------
def is_valid_order(value, typed=True):
    """The pipeline's parse section, judged independently: is this source value valid?
    typed: the pipeline has the order schema (without it, field types are not checked)."""
    if not value:
        return False
    try:
        v = json.loads(value.decode("utf-8"))
    except ValueError:
        return False
    if not isinstance(v, dict):
        return False
    if any(v.get(f) is None for f in ["order_id", "customer_id", "quantity", "price",
                                      "priority"]):
        return False
    types = {"order_id": str, "customer_id": str, "product_id": str, "order_time": str,
             "priority": str, "price": (int, float), "quantity": int}
    for f, t in types.items():
        if not typed:
            break
        if v.get(f) is not None and (not isinstance(v[f], t) or isinstance(v[f], bool)):
            return False
    return isinstance(v["priority"], str) and v["priority"] in ("high", "medium", "low")


# -- the pipeline -----------------------------------------------------------------------
SCHEMA = """{"order_id": "string", "customer_id": "string", "quantity": "int",
                       "price": "double", "order_time": "timestamp", "priority": "string"}"""
SCHEMA_WITH_PRODUCT = """{"order_id": "string", "customer_id": "string", "product_id": "string",
                       "quantity": "int", "price": "double", "order_time": "timestamp",
                       "priority": "string"}"""

def write_pipeline(path, name, bootstrap, group, trigger, schema=SCHEMA, comment=None,
                   source_extra=""):
    """Writes the demo's pipeline to path and returns path: orders from the earliest offset,
    with headers, in consumer group `group`; parsed as JSON with `schema`; routed by priority
    to orders-high, orders-medium and orders-low; malformed events to orders-dlq. trigger is
    the text of the "trigger" member (a trailing comma is allowed); comment, when given, is
    written as a // comment line first; source_extra, more source members (each with a
    trailing comma)."""
    with open(path, "w") as f:
        f.write("""{
%s  "name": "%s",
  "source": {%s"kafka.bootstrap.servers": "%s", "subscribe": "orders",
             "startingOffsets": "earliest", "includeHeaders": true,
             "kafka.group.id": "%s", "kafka.session.timeout.ms": 6000,
             "kafka.fetch.wait.max.ms": 50},
  "parse": {"format": "json",
            "schema": %s,
            "required": ["order_id", "customer_id", "quantity", "price", "priority"]},
  "route": {"field": "priority",
            "topics": {"high": "orders-high", "medium": "orders-medium", "low": "orders-low"}},
  "sink": {"kafka.bootstrap.servers": "%s", "kafka.acks": "all"},
  "dlq": {"topic": "orders-dlq"},
  %s
}""" % ("  // %s\n" % comment if comment else "", name, source_extra, bootstrap, group, schema,
        bootstrap, trigger))
    return path


def run_test(main):
    """Runs a test's main: an Abort ends it where it stands (the failed check before it
    says why), any other exception is a failed check with its trace; then closes with
    'N passed, N failed' and the exit code."""
    try:
        main()
    except Abort:
        pass
    except Exception:
        traceback.print_exc()
        check("no unexpected error", False)
    finish()
