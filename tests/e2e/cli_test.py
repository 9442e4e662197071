#!/usr/bin/python3
"""End-to-end: the real `sluice` binary as processes, checked by independent
clients (kcat and python3-confluent-kafka), against `sluice broker`.

Usage: cli_test.py PATH/TO/sluice
Prints one line per check and closes with 'N passed, N failed'.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

from confluent_kafka import Consumer, TopicPartition

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_support import (MULT, SLUICE, check, finish, read_all, start_broker, start_run,
                         stop_broker, wait_for, write_pipeline)

WORK = tempfile.mkdtemp(prefix="sluice-e2e-")


def run(args, **kw):
    return subprocess.run([SLUICE] + args, capture_output=True, text=True,
                          timeout=300 * MULT, **kw)


# -- the broker -----------------------------------------------------------------
bootstrap_file = os.path.join(WORK, "bootstrap")
broker, bootstrap = start_broker(3, ["orders:4", "orders-high:4", "orders-medium:4",
                                     "orders-low:4", "orders-dlq:2"], bootstrap_file)
check("broker writes the bootstrap file",
      open(bootstrap_file).read().strip() == "bootstrap.servers=" + bootstrap)

try:
    listing = subprocess.run(["kcat", "-b", bootstrap, "-L"], capture_output=True, text=True,
                             timeout=30).stdout
    check("kcat lists the broker's topics",
          all(f'topic "{t}"' in listing for t in
              ["orders", "orders-high", "orders-medium", "orders-low", "orders-dlq"]), listing)
    subprocess.run(["kcat", "-b", bootstrap, "-P", "-t", "kcat-check", "-k", "k1"],
                   input="hello from kcat\n", text=True, timeout=30, check=True)
    got = subprocess.run(["kcat", "-b", bootstrap, "-C", "-t", "kcat-check", "-e", "-o",
                          "beginning", "-f", "%k=%s\\n"], capture_output=True, text=True,
                         timeout=30).stdout
    check("kcat produces to and consumes from the broker", "k1=hello from kcat" in got, got)

    # -- a pipeline run stopped by a signal midway, then resumed ------------------
    pipeline = write_pipeline(os.path.join(WORK, "pipeline.json"), "e2e", bootstrap, "e2e-group",
                              '"trigger": {"processingTime": "300 milliseconds"},',
                              comment="Priority routing, as in the demo; comments are allowed.")

    run1_log = os.path.join(WORK, "run1.log")
    first_run, progress = start_run([pipeline], run1_log)
    # Produce only once the run owns its partitions, so the signal lands midway
    # however long joining the group takes.
    check("the run joins the group",
          wait_for(lambda: "assigned: orders/" in open(run1_log).read(), 60))
    count = 30000
    producer = subprocess.Popen(
        [SLUICE, "produce", "--bootstrap", bootstrap, "--topic", "orders", "--count", str(count),
         "--rate", "6000", "--malformed-fraction", "0.05", "--seed", "9"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def processed():
        total = 0
        for line in progress.snapshot():
            p = json.loads(line)
            total += p["sink"]["numOutputRows"] + p["numDlqRows"]
        return total

    midway = wait_for(lambda: processed() >= 5000, 90)
    # Twice at once, as `timeout` does (to the process, then to its group): one
    # stop, not the "second signal: exit now" of a user who will not wait.
    first_run.send_signal(signal.SIGTERM)
    first_run.send_signal(signal.SIGTERM)
    code = first_run.wait(timeout=120 * MULT)
    progress.thread.join(timeout=10)
    check("the run had processed records when signalled", midway, processed())
    check("SIGTERM drains, commits and exits 0, even sent twice at once", code == 0
          and "second signal: exiting now" not in open(run1_log).read(), code)
    lines = progress.snapshot()
    reports = [json.loads(l) for l in lines]
    fields = ["id", "runId", "batchId", "timestamp", "numInputRows", "inputRowsPerSecond",
              "processedRowsPerSecond", "durationMs", "sources", "sink", "numDlqRows", "lag"]
    check("one JSON progress line per epoch with Spark's field names",
          bool(reports) and all(all(k in r for k in fields) for r in reports), lines[:1])
    check("batchIds count up from 0", [r["batchId"] for r in reports] == list(range(len(reports))))
    src = reports[-1]["sources"][0] if reports else {}
    check("sources[] carry per-partition offsets",
          all(k in src for k in ["startOffset", "endOffset", "latestOffset", "numInputRows"]) and
          set(src.get("endOffset", {}).get("orders", {}).keys()) == {"0", "1", "2", "3"}, src)

    out, _ = producer.communicate(timeout=120 * MULT)
    check("produce reports what it wrote", out.startswith("wrote %d records" % count), out)
    malformed = int(out.split("(")[1].split()[0])
    first_processed = processed()
    check("the signal landed midway", first_processed < count, first_processed)

    second = run(["run", pipeline, "--set", "trigger.availableNow=true"])
    check("the resumed availableNow run exits 0", second.returncode == 0, second.stderr[-2000:])

    # -- what was written, read back by confluent-kafka ---------------------------
    valid = count - malformed
    outputs = {}
    for topic in ["orders-high", "orders-medium", "orders-low"]:
        for m in read_all(bootstrap, topic):
            v = json.loads(m.value())
            ok = topic == "orders-" + v["priority"] and m.key().decode() == v["customer_id"]
            outputs.setdefault(v["order_id"], []).append(ok)
            headers = dict(m.headers() or [])
            if "correlation-id" not in headers:
                outputs[v["order_id"]].append(False)
    check("every valid event is in its priority topic, keyed, with its headers",
          len(outputs) == valid and all(all(v) for v in outputs.values()),
          "%d distinct of %d" % (len(outputs), valid))
    twice = [k for k, v in outputs.items() if len(v) > 1]
    check("a graceful stop and resume writes nothing twice", not twice, twice[:5])
    dead = read_all(bootstrap, "orders-dlq")
    coords = {(dict(m.headers())["sluice.source.partition"],
               dict(m.headers())["sluice.source.offset"]) for m in dead}
    check("every malformed event is in the DLQ once", len(dead) == malformed == len(coords),
          "%d records, %d distinct, %d malformed" % (len(dead), len(coords), malformed))

    kcat_dlq = subprocess.run(["kcat", "-b", bootstrap, "-C", "-t", "orders-dlq", "-e", "-o",
                               "beginning", "-f", "%h\\n"], capture_output=True, text=True,
                              timeout=60).stdout.splitlines()
    types = {h.split("sluice.error.type=")[1].split(",")[0] for h in kcat_dlq
             if "sluice.error.type=" in h}
    check("kcat reads the DLQ reasons",
          len(kcat_dlq) == malformed and types <= {"malformed_json", "wrong_type", "missing_field",
                                                   "empty_value"} and len(types) >= 3, types)

    # -- Spark's source options: assign, a start and an end per partition --------------
    subprocess.run([SLUICE, "produce", "--bootstrap", bootstrap, "--topic", "src7", "--count",
                    "400", "--seed", "7"], check=True, capture_output=True, timeout=120 * MULT)
    source = {(m.partition(), m.offset()): m.value() for m in read_all(bootstrap, "src7")}
    end1 = 1 + max(o for (p, o) in source if p == 1)
    ranged = os.path.join(WORK, "ranged.json")
    with open(ranged, "w") as f:
        json.dump({"name": "ranged",
                   "source": {"kafka.bootstrap.servers": bootstrap, "assign": {"src7": [0, 1]},
                              "kafka.group.id": "e2e-ranged",
                              "startingOffsets": {"src7": {"0": 2, "1": -2}},
                              "endingOffsets": json.dumps({"src7": {"0": 7, "1": -1}})},
                   "route": {"topic": "out7"},
                   "sink": {"kafka.bootstrap.servers": bootstrap},
                   "trigger": {"processingTime": "200 milliseconds"}}, f)
    r = run(["run", ranged])
    check("a run with an end per partition stops by itself and exits 0", r.returncode == 0,
          r.stderr[-800:])
    expected = sorted(v for (p, o), v in source.items() if (p == 0 and 2 <= o < 7) or p == 1)
    got = sorted(m.value() for m in read_all(bootstrap, "out7"))
    check("confluent-kafka reads exactly the named ranges, bytes unchanged", got == expected,
          (len(got), len(expected)))
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "e2e-ranged"})
    committed = {tp.partition: tp.offset for tp in c.committed(
        [TopicPartition("src7", 0), TopicPartition("src7", 1), TopicPartition("src7", 2)],
        timeout=10)}
    c.close()
    check("assign commits to the group: each partition at its end, none elsewhere",
          committed[0] == 7 and committed[1] == end1 and committed[2] < 0, committed)

    # `sluice plan`: where a run would start and stop, consuming and committing nothing.
    def plan(*sets):
        r = run(["plan", ranged] + [a for s in sets for a in ("--set", s)])
        return r.returncode, (json.loads(r.stdout) if r.returncode == 0 else r.stderr)
    code, after = plan()
    rows = {p["partition"]: p for p in after["partitions"]} if code == 0 else {}
    check("plan after a run: each partition starts at its commit, nothing left to read",
          code == 0 and rows[0]["committedOffset"] == 7 and rows[0]["startOffset"] == 7
          and rows[0]["endOffset"] == 7 and rows[0]["records"] == 0
          and rows[1]["committedOffset"] == end1 and rows[1]["records"] == 0
          and set(rows) == {0, 1}, after)
    code, fresh = plan("source.kafka.group.id=e2e-fresh")
    rows = {p["partition"]: p for p in fresh["partitions"]} if code == 0 else {}
    check("plan for a new group: the start options and the ends, with the record counts",
          code == 0 and rows[0]["committedOffset"] is None and rows[0]["startOffset"] == 2
          and rows[0]["endOffset"] == 7 and rows[0]["records"] == 5
          and rows[1]["startOffset"] == 0 and rows[1]["records"] == end1
          and rows[1]["logEndOffset"] == end1 and rows[0]["lostRecords"] == 0, fresh)
    code, unbounded = plan("source.kafka.group.id=e2e-fresh", 'source.endingOffsets=null')
    check("plan with a bad option exits 2 as run does", code == 2 and "endingOffsets" in unbounded,
          unbounded)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "e2e-fresh"})
    untouched = c.committed([TopicPartition("src7", 0)], timeout=10)[0].offset
    c.close()
    check("plan commits nothing", untouched < 0, untouched)

    # -- errors at start name the option --------------------------------------------
    bad = os.path.join(WORK, "bad.json")
    with open(bad, "w") as f:
        f.write(open(pipeline).read().replace('"earliest"', '"earlist"'))
    r = run(["run", bad])
    check("a bad option fails at start with exit 2, naming it",
          r.returncode == 2 and "option `source.startingOffsets`" in r.stderr
          and "earliest, latest or JSON" in r.stderr, r.stderr)
    r = run(["run", pipeline, "--set", "sink.kafka.sasl.password=hunter2",
             "--set", "sink.kafka.security.protocol=SASL_SSL", "--set", "sink.kafka.no.such=1"])
    check("an unknown librdkafka property fails at start, secrets unprinted",
          r.returncode == 2 and "`sink.kafka.no.such`" in r.stderr and "hunter2" not in r.stderr,
          r.stderr)
    # Client properties are checked before any client connects: a listener that
    # counts connections stands in for the cluster.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.setblocking(False)
    fake = "127.0.0.1:%d" % listener.getsockname()[1]

    def connections():
        n = 0
        while True:
            try:
                listener.accept()[0].close()
                n += 1
            except BlockingIOError:
                return n

    for prop, says in (("source.kafka.fetch.wait.max.ms=soon",
                        "option `source.kafka.fetch.wait.max.ms`: rejected by librdkafka"),
                       ("source.kafka.fetch.max.bytes=1000",
                        "`fetch.max.bytes` must be >= `message.max.bytes`")):
        r = run(["run", pipeline, "--set", "source.kafka.bootstrap.servers=" + fake,
                 "--set", "sink.kafka.bootstrap.servers=" + fake, "--set", prop])
        check("a bad source property (%s) exits 2 before any client connects" % prop,
              r.returncode == 2 and says in r.stderr and connections() == 0,
              (r.returncode, r.stderr[-300:]))
    # The same run with good properties does connect: the check above can fail.
    r = run(["run", pipeline, "--set", "source.kafka.bootstrap.servers=" + fake,
             "--set", "sink.kafka.bootstrap.servers=" + fake,
             "--set", "runtime.brokerTimeout=1 second"])
    check("a good configuration does connect to that listener",
          r.returncode == 1 and connections() > 0, (r.returncode, r.stderr[-300:]))
    listener.close()

    # `plan` on a pattern, the cluster unreachable: within brokerTimeout, naming the cause.
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    refused = "127.0.0.1:%d" % closed.getsockname()[1]
    closed.close()  # nothing listens there now: connections are refused
    pattern = os.path.join(WORK, "pattern.json")
    with open(pattern, "w") as f:
        json.dump({"name": "pattern", "source": {"kafka.bootstrap.servers": refused,
                                                 "subscribePattern": "ord.*"},
                   "route": {"topic": "out"}, "sink": {"kafka.bootstrap.servers": refused},
                   "runtime": {"brokerTimeout": "2 seconds"}}, f)
    t0 = time.time()
    r = run(["plan", pattern])
    took = time.time() - t0
    check("plan on a pattern with the cluster unreachable exits 1 after brokerTimeout "
          "(%.1f s), naming the cause" % took,
          r.returncode == 1 and took < 2 + 5 * MULT
          and "cannot list the cluster's topics" in r.stderr
          and "Connection refused" in r.stderr, (r.returncode, r.stderr[-400:]))

    # -- messages that help ----------------------------------------------------------------
    r = run(["run", os.path.join(WORK, "missing.json")])
    check("a missing pipeline file exits 2 with the OS reason", r.returncode == 2
          and "missing.json`: No such file or directory" in r.stderr, r.stderr[-300:])
    broken = os.path.join(WORK, "broken.json")
    with open(broken, "w") as f:
        f.write('{\n  "name": "x",\n  "source": {"subscribe": "orders",, }\n}\n')
    r = run(["run", broken])
    check("a JSON syntax error exits 2 with line, column and the line itself",
          r.returncode == 2 and "not valid JSON (syntax error) at line 3, column 36" in r.stderr
          and '"source": {"subscribe": "orders",, }' in r.stderr, r.stderr[-400:])
    r = run(["run", pipeline, "--set", "source.groupIdPrefix=spark"])
    check("a Spark option not implemented yet says so", r.returncode == 2
          and "option `source.groupIdPrefix`: not supported yet" in r.stderr, r.stderr)
    r = run(["run", pipeline, "--set", "source.subscribePattern=ord.*"])
    check("two subscription options fail at start, naming them", r.returncode == 2
          and "choose one of subscribe, subscribePattern and assign" in r.stderr, r.stderr)
    r = run(["run", pipeline, "--set", "runtime.maxBatchRecords=1.5"])
    check("values are echoed as written", r.returncode == 2
          and "expected a positive integer, got 1.5\n" in r.stderr, r.stderr)
    r = run(["run", pipeline, "--set", "parse.schema.quantity=integer"])
    check("--set reaches schema fields", r.returncode == 2
          and "option `parse.schema.quantity`: expected one of string, int" in r.stderr,
          r.stderr)

    # -- a bounded run on a topic that never held a record -----------------------------------
    r = run(["run", pipeline, "--set", "source.subscribe=never-written",
             "--set", "trigger.availableNow=true", "--set", "source.kafka.group.id=g-empty"])
    check("availableNow on a topic that never held a record exits 0 with a warning",
          r.returncode == 0 and "topic `never-written` has never held a record" in r.stderr,
          (r.returncode, r.stderr[-500:]))

    r = run(["options"])
    check("`sluice options` prints the option table",
          r.returncode == 0 and "`maxInFlightPerPartition`" in r.stdout)

    # -- command-line conventions -----------------------------------------------------
    r = run(["--version"])
    check("`sluice --version` prints the version", r.returncode == 0
          and r.stdout.startswith("sluice "), r.stdout + r.stderr)
    r = run(["help"])
    check("`sluice help` prints the commands", r.returncode == 0 and "run" in r.stdout
          and "broker" in r.stdout, r.stdout + r.stderr)
    r = run(["run", "--help"])
    check("`sluice run --help` exits 0", r.returncode == 0 and "PIPELINE" in r.stdout)
    for args, says in ((["run"], "pipeline is required"),
                       (["nosuch"], "unknown command `nosuch`"),
                       (["demo", "--events", "-1"], "expected a whole number from 1"),
                       (["demo", "--events", "99999999999999999999"], "to 10^12"),
                       (["demo", "--malformed-fraction", "nan"], "from 0 to 1, got `nan`"),
                       (["produce", "--bootstrap", bootstrap, "--topic", "", "--count", "1"],
                        "must not be empty"),
                       (["produce", "--bootstrap", bootstrap, "--topic", "t", "--count", "0"],
                        "expected a whole number from 1"),
                       (["demo", "--malformed-fraction", "1.5"], "--malformed-fraction")):
        r = run(args)
        check("usage error exits 2: sluice " + " ".join(repr(a) for a in args),
              r.returncode == 2 and says in r.stderr, (r.returncode, r.stderr[-300:]))
    r = run(["broker", "--bootstrap-file", os.path.join(WORK, "no", "such", "dir", "f")])
    check("`sluice broker --bootstrap-file` it cannot write fails at once, with the reason",
          r.returncode == 2 and "No such file or directory" in r.stderr, r.stderr[-300:])
finally:
    stop_broker(broker)

finish()
