#!/usr/bin/env python3
"""The cost of `"guarantee": "exactly-once"` against at-least-once, on a real Kafka broker.

    scripts/kafka.sh python bench/exactly_once_bench.py build/apps/sluice \
        [--events 1000000] [--partitions 64] [--rounds 3] [--out DIR] \
        [--latency-rate 5000] [--latency-seconds 25] [--contestants a,b,...] \
        [--latency-contestants a,b,...] [--subscribe] [--skip-throughput] \
        [--skip-trace] [--skip-latency] [--disturbed 2.0] [--retries 2] [--bootstrap B]

Starts one Kafka node (scripts/kafka/cluster.py: Kafka 4.1.1, KRaft, broker and controller
in one JVM with a 1 GB heap on loopback, on the same cores as everything else) and stops
it at the end, also on failure (the JVM dies with this script too); it refuses to start
while another Kafka broker runs on the machine. `--bootstrap B` uses a cluster that
already runs instead (for debugging; nothing is stopped then). The sluice binary and the
libraries of its build tree are copied into OUT/bin first and that copy runs
(LD_LIBRARY_PATH), so a rebuild meanwhile does not change what is measured; the report
names their mtimes and sha256. A first small run of each guarantee (not timed) has the
broker create its internal topics (__consumer_offsets, __transaction_state).

Other work on the machine. For every run the script takes the machine's busy CPU time
(/proc/stat) and subtracts the broker JVM's, its own and its children's (Sluice, the
producer): "others' CPU s". A run where that exceeds `--disturbed` (2 s) was shared with
something else (a build, a test): it is kept in the tables, marked, left out of the
medians, and run again (at most `--retries` times).

Throughput. `bench-in-N` (P partitions) is filled once with `sluice produce --count N
--seed 1` (order events, none malformed). Each round runs every contestant once, as a
fresh process under `/usr/bin/time -f '%e %M %U %S'` (wall s, peak RSS KB, user and
system CPU s), with a fresh consumer group and an output topic of its own (P partitions),
the order rotated from round to round. Every contestant is a *bounded continuous* run:
`"endingOffsets": "latest"` (the end offsets at start, as `availableNow` snapshots them)
with the contestant's trigger, so that the epoch length is the contestant's and the
process exits by itself once every partition reached its end (commit, exit 0): the
whole process is timed, with no outside poll deciding when it is done. (`availableNow`
cannot be combined with `processingTime`; without a rate limit it closes an epoch every
second too, so at 1 s it is the same run.) The pipeline is run_bench.sh's: the order
parse schema, a fixed route, DLQ `bench-dlq`, `includeHeaders`,
`kafka.fetch.wait.max.ms` 50, `kafka.linger.ms` 5, `assign` of every partition (no
group join; `--subscribe` subscribes instead). A run counts when it exited 0, its group's
committed offsets are the input's end offsets, and its output read back read_committed
(an independent client, confluent-kafka) holds N records with N distinct correlation
ids; otherwise it is marked failed and left out of the medians.

Contestants (`--contestants` picks some): alo-1s (at-least-once, the default 1 s
interval), eos-1s (exactly-once, the default 1 s), eos-100ms (exactly-once,
`trigger.processingTime` "100 ms"), alo-100ms (at-least-once at 100 ms: what the short
epoch costs without transactions).

Epochs. Sluice runs with `--log-level debug` (a few lines per epoch): under
exactly-once, `epoch K: hold answered` says when every chain stood still with nothing in
flight; the epoch's progress line is printed once its transaction committed (this
script stamps each stdout line as it arrives): "held for the commit" = the time between
the two (the transaction's commit; the chains go on after it). When the hold was asked
(the epoch's tick) is not logged, so the time the chains spend draining what is in flight
before they stand still is not in it; "epoch ms" = the time between progress lines.

Trace (after the rounds, not timed; `--skip-trace`): one more run per contestant while a
thread asks the output topic's end offsets every 50 ms (one ListOffsets request; with
transactions the end offset counts written, not yet committed records): the stretches in
which the output did not grow are the pauses of the writes.

Latency. Per contestant a fresh input and output topic (P partitions) and a continuous
run (no end) of the same pipeline; a read_committed reader (confluent-kafka,
`fetch.wait.max.ms` 20) of the output starts first; once Sluice has its partitions, an
independent `sluice produce --rate R --count R*S --seed 2` writes at a steady rate. The
latency of a record = the time the reader got it - the record's timestamp (the producer's
CreateTime: Sluice keeps the input's timestamp on its output, checked here against the
input record of the same correlation id). It includes the producer's linger (20 ms in
`sluice produce`). Sluice is stopped with SIGTERM once the reader has every record.

Results go to OUT (default a new /tmp/sluice-eos-bench.*): per run the pipeline, the
log (stderr), the progress lines (stdout) and GNU time's line; trace-*.tsv (the sampled
output end offsets), lat-*.tsv (every record's latency), results.json, and report.md
(the tables, also printed). Exit 1 when a run failed its checks.
"""
import argparse
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from confluent_kafka import KafkaException, TopicPartition
from realkafka import (Broker, Kafka, Reader, Stamped, alternating_rounds, common_arguments,
                       correlation, cpu_snapshot, die_with_parent, end_process, fill_input,
                       latency_figures, load_average, log_time, med, others_cpu,
                       produce_and_wait, route_pipeline, snapshot_binary, spawn, started)

CONTESTANTS = {
    # name: (guarantee, processingTime or None for the default trigger, interval s)
    "alo-1s": ("at-least-once", None, 1.0),
    "eos-1s": ("exactly-once", None, 1.0),
    "eos-100ms": ("exactly-once", "100 ms", 0.1),
    "alo-100ms": ("at-least-once", "100 ms", 0.1),
}
BASELINE = "alo-1s"
DLQ = "bench-dlq"
LOG_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}) (\w+) (.*)$")

def iso_time(text):
    """A progress line's UTC timestamp as epoch seconds."""
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


# -- the pipeline ---------------------------------------------------------------------------
def pipeline(args, bootstrap, topic_in, topic_out, kind, bounded):
    guarantee, processing_time, _ = CONTESTANTS[kind]
    source = {"kafka.session.timeout.ms": 6000}
    if args.subscribe:
        source["subscribe"] = topic_in
    else:
        source["assign"] = {topic_in: list(range(args.partitions))}
    if bounded:
        source["endingOffsets"] = "latest"
    p = route_pipeline("bench", bootstrap, source, topic_out, DLQ)
    if processing_time:
        p["trigger"] = {"processingTime": processing_time}
    # The default trigger (no section): continuous, an epoch every second.
    path = os.path.join(args.out, "pipeline-%s-%s.json" % (kind, topic_out))
    with open(path, "w") as f:
        json.dump(p, f, indent=1)
    return path, guarantee


def sluice_args(args, pipe, guarantee, group):
    return [args.sluice, "--log-level", "debug", "run", pipe,
            "--set", "guarantee=" + guarantee, "--set", "source.kafka.group.id=" + group]


def epochs_of(stamped, log_lines):
    """Under exactly-once, per epoch the ms from `epoch K: hold answered` (debug log: every
    chain stands still, nothing in flight) to the arrival of epoch K's progress line
    (printed once its transaction committed): how long the chains stand still for the
    commit. Also the progress lines, with their arrival times."""
    progress = []
    for t, line in stamped:
        try:
            progress.append((t, json.loads(line)))
        except ValueError:
            pass
    arrived = {p["batchId"]: t for t, p in progress}
    held = {}  # the last hold of epoch K (an idle epoch, nothing to commit, keeps its K)
    for line in log_lines:
        m = LOG_TS.match(line)
        if m and "hold answered 0 " in m.group(3):
            held[int(re.search(r"epoch (\d+):", m.group(3)).group(1))] = log_time(m.group(1))
    out = [(arrived[k] - t) * 1e3 for k, t in sorted(held.items())
           if k in arrived and arrived[k] >= t]
    return out, progress


def cycles(progress):
    """ms between successive progress lines (an epoch as it ran: its interval, or longer
    while a commit was out)."""
    t = [a for a, _ in progress]
    return [(b - a) * 1e3 for a, b in zip(t, t[1:])]


# -- throughput -----------------------------------------------------------------------------
def throughput_run(args, kafka, kind, rnd, ends, attempt=0):
    tag = "%s-r%d" % (kind, rnd) + ("-again%d" % attempt if attempt else "")
    out_topic = "eob-out-%s-%s" % (tag, args.run_tag)
    group = "eob-%s-%s" % (tag, uuid.uuid4().hex[:8])
    kafka.create({out_topic: args.partitions})
    pipe, guarantee = pipeline(args, kafka.bootstrap, args.input, out_topic, kind, True)
    tfile = os.path.join(args.out, tag + ".time")
    errfile = os.path.join(args.out, tag + ".log")
    cmd = ["/usr/bin/time", "-f", "%e %M %U %S", "-o", tfile] + \
        sluice_args(args, pipe, guarantee, group)
    before = cpu_snapshot(args.broker_pids)
    with open(errfile, "w") as err:
        p = spawn(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        lines = Stamped(p, os.path.join(args.out, tag + ".progress"))
        try:
            p.wait(timeout=args.run_timeout)
        except subprocess.TimeoutExpired:
            end_process(p)
        lines.join(timeout=10)
    after = cpu_snapshot(args.broker_pids)
    started.remove(p)
    r = {"round": rnd, "kind": kind, "group": group, "output": out_topic, "ok": True,
         "why": [], "rc": p.returncode}
    others_cpu(args, before, after, r)
    with open(tfile) as f:
        last = f.read().strip().splitlines()
    try:
        wall, rss, user, system = last[-1].split()
        r.update(wall=float(wall), rss_mb=int(rss) / 1024.0, cpu=float(user) + float(system))
    except (ValueError, IndexError):
        r.update(wall=float("nan"), rss_mb=float("nan"), cpu=float("nan"))
        r["why"].append("no time line: %s" % last)
    if p.returncode != 0:
        r["why"].append("exit %s" % p.returncode)
    with open(errfile) as f:
        log = f.read().splitlines()
    r["warnings"] = [l for l in log if " warning " in l or " error " in l]
    ended = [l for l in log if " run ended: " in l]
    r["summary"] = ended[-1].split(" info ", 1)[-1] if ended else "(no run ended line)"
    m = re.search(r"run ended: (\d+) in, (\d+) out, (\d+) to the DLQ", r["summary"])
    if not m or int(m.group(1)) != args.events or int(m.group(2)) != args.events:
        r["why"].append("summary: " + r["summary"])
    tx = [l for l in log if "transaction(s) committed" in l]
    m = re.search(r"(\d+) transaction\(s\) committed, (\d+) aborted", tx[-1]) if tx else None
    r["transactions"] = (int(m.group(1)), int(m.group(2))) if m else None
    commits, progress = epochs_of(lines.lines, log)
    r["epochs"] = len(progress)
    r["commit_ms"] = commits
    r["cycle_ms"] = cycles(progress)
    r["progress_out"] = sum(pl["sink"]["numOutputRows"] for _, pl in progress)
    r["progress_in"] = sum(pl["numInputRows"] for _, pl in progress)
    # What the group holds, and what a read_committed reader sees.
    got = kafka.committed(group, args.input, sorted(ends))
    if got != ends:
        short = {p: (got.get(p), e) for p, e in ends.items() if got.get(p) != e}
        r["why"].append("committed offsets != end offsets at %d partition(s), e.g. %s"
                        % (len(short), list(short.items())[:3]))
    ids = set()
    count = [0]

    def each(msg):
        count[0] += 1
        ids.add(correlation(msg))
    t = time.time()
    if not kafka.read(out_topic, each):
        r["why"].append("the output could not be read to its end")
    r["read_s"] = time.time() - t
    r["output_records"], r["distinct"] = count[0], len(ids)
    if count[0] != args.events or len(ids) != args.events:
        r["why"].append("output read_committed: %d records, %d distinct (want %d)"
                        % (count[0], len(ids), args.events))
    r["ok"] = not r["why"]
    r["msgs_s"] = args.events / r["wall"] if r["wall"] == r["wall"] and r["wall"] > 0 else 0
    return r


def warm_up(args, kafka):
    """A small run of each guarantee before anything is timed: the first exactly-once run
    on a cluster creates __transaction_state (the first group commit, __consumer_offsets)
    and waits for them."""
    warm_in, warm_out = "eob-warm-in-" + args.run_tag, "eob-warm-out-" + args.run_tag
    kafka.create({warm_in: args.partitions, warm_out: args.partitions})
    subprocess.run([args.sluice, "produce", "--bootstrap", kafka.bootstrap, "--topic",
                    warm_in, "--count", "5000", "--seed", "3"], check=True,
                   stdout=subprocess.DEVNULL)
    for kind in ("alo-1s", "eos-1s"):
        pipe, guarantee = pipeline(args, kafka.bootstrap, warm_in, warm_out, kind, True)
        t = time.time()
        p = subprocess.run(sluice_args(args, pipe, guarantee,
                                       "eob-warm-%s-%s" % (kind, args.run_tag)),
                           capture_output=True, text=True, timeout=300,
                           preexec_fn=die_with_parent)
        print("warm-up %s: exit %d in %.2f s" % (kind, p.returncode, time.time() - t),
              flush=True)
        if p.returncode != 0:
            raise RuntimeError("warm-up %s failed: %s" % (kind, p.stderr[-2000:]))


# -- trace: where the writes stand still ----------------------------------------------------
class Sampler(threading.Thread):
    """Asks the output topic's end offsets (all partitions, one ListOffsets request) every
    `every` s: the sum grows while Sluice writes (uncommitted transactional records count:
    the end offset is the high watermark, not the last stable offset)."""

    def __init__(self, kafka, topic, partitions, every=0.05):
        super().__init__(daemon=True)
        from confluent_kafka.admin import OffsetSpec
        self.admin, self.every = kafka.admin, every
        self.ask = {TopicPartition(topic, p): OffsetSpec.latest() for p in range(partitions)}
        self.samples, self.stopping = [], threading.Event()
        self.start()

    def run(self):
        while not self.stopping.is_set():
            t = time.time()
            try:
                fs = self.admin.list_offsets(self.ask, request_timeout=5)
                total = sum(f.result().offset for f in fs.values())
                self.samples.append(((t + time.time()) / 2, total))
            except KafkaException:
                pass
            time.sleep(max(0.0, self.every - (time.time() - t)))


def stalls(samples, final):
    """From the first growth to the final count: (seconds, longest stall ms, stalls of
    100 ms or more, seconds without growth) where a stall is a run of samples without
    growth."""
    grow = [i for i in range(1, len(samples)) if samples[i][1] > samples[i - 1][1]]
    if not grow:
        return None
    first = grow[0] - 1
    last = next((i for i, (_, v) in enumerate(samples) if v >= final), len(samples) - 1)
    runs, still = [], None
    for i in range(first + 1, last + 1):
        if samples[i][1] == samples[i - 1][1]:
            still = samples[i - 1][0] if still is None else still
        elif still is not None:
            runs.append(samples[i - 1][0] - still)
            still = None
    span = samples[last][0] - samples[first][0]
    long_runs = [r for r in runs if r >= 0.1]
    most = next((t for t, v in samples if v >= 0.99 * final), samples[last][0])
    return {"span_s": span, "longest_ms": max(runs) * 1e3 if runs else 0.0,
            "stalls_100ms": len(long_runs), "stalled_s": sum(long_runs),
            "last_1pct_s": samples[last][0] - most}


def trace_run(args, kafka, kind, attempt=0):
    """One more run of a contestant, not timed: the output's growth sampled every 50 ms."""
    tag = "trace-" + kind + ("-again%d" % attempt if attempt else "")
    out_topic = "eob-out-%s-%s" % (tag, args.run_tag)
    group = "eob-%s-%s" % (tag, uuid.uuid4().hex[:8])
    kafka.create({out_topic: args.partitions})
    pipe, guarantee = pipeline(args, kafka.bootstrap, args.input, out_topic, kind, True)
    sampler = Sampler(kafka, out_topic, args.partitions)
    time.sleep(0.3)
    before = cpu_snapshot(args.broker_pids)
    with open(os.path.join(args.out, tag + ".log"), "w") as err:
        p = spawn(sluice_args(args, pipe, guarantee, group), stdout=subprocess.PIPE,
                  stderr=err, text=True)
        lines = Stamped(p, os.path.join(args.out, tag + ".progress"))
        try:
            p.wait(timeout=args.run_timeout)
        except subprocess.TimeoutExpired:
            end_process(p)
        started.remove(p)
        lines.join(timeout=10)
    r = {"kind": kind, "rc": p.returncode}
    others_cpu(args, before, cpu_snapshot(args.broker_pids), r)
    time.sleep(0.3)
    sampler.stopping.set()
    sampler.join(timeout=10)
    with open(os.path.join(args.out, tag + ".tsv"), "w") as f:
        f.write("time\toutput_end_offsets\n")
        for t, v in sampler.samples:
            f.write("%.3f\t%d\n" % (t, v))
    r["samples"] = len(sampler.samples)
    r["stalls"] = stalls(sampler.samples, args.events)
    return r


# -- latency --------------------------------------------------------------------------------
def latency_run(args, kafka, kind, attempt=0):
    tag = "lat-" + kind + ("-again%d" % attempt if attempt else "")
    topic_in = "eob-in-%s-%s" % (tag, args.run_tag)
    topic_out = "eob-out-%s-%s" % (tag, args.run_tag)
    kafka.create({topic_in: args.partitions, topic_out: args.partitions})
    pipe, guarantee = pipeline(args, kafka.bootstrap, topic_in, topic_out, kind, False)
    group = "eob-%s-%s" % (tag, uuid.uuid4().hex[:8])
    errfile = os.path.join(args.out, tag + ".log")
    reader = Reader(kafka, topic_out, args.partitions)
    count = int(args.latency_rate * args.latency_seconds)
    r = {"kind": kind, "ok": True, "why": [], "count": count}
    before = cpu_snapshot(args.broker_pids)
    with open(errfile, "w") as err:
        p = spawn(sluice_args(args, pipe, guarantee, group), stdout=subprocess.PIPE,
                  stderr=err, text=True)
        lines = Stamped(p, os.path.join(args.out, tag + ".progress"))

        def assigned():
            with open(errfile) as f:
                return any(" assigned: " in l and "(none)" not in l for l in f)
        deadline = time.time() + 60
        while not assigned() and time.time() < deadline and p.poll() is None:
            time.sleep(0.1)
        time.sleep(1.0)  # its first fetches are out
        t_start = time.time()
        produce_and_wait(args.sluice, kafka.bootstrap, topic_in, count, args.latency_rate,
                         reader, p, r)
        end_process(p, signal.SIGTERM)
        started.remove(p)
        lines.join(timeout=10)
        reader.stopping.set()
        reader.join(timeout=30)
    others_cpu(args, before, cpu_snapshot(args.broker_pids), r)
    r["rc"] = p.returncode
    if p.returncode != 0:
        r["why"].append("exit %s after SIGTERM" % p.returncode)
    # Sluice keeps the input's timestamp: each output's equals its input's.
    latency_figures(kafka, reader.got, count, topic_in,
                    os.path.join(args.out, tag + ".tsv"), t_start, r)
    with open(errfile) as f:
        log = f.read().splitlines()
    r["warnings"] = [l for l in log if " warning " in l or " error " in l]
    commits, progress = epochs_of(lines.lines, log)
    r["commit_ms"] = commits
    r["cycle_ms"] = cycles(progress)
    r["epochs"] = len(progress)
    r["ok"] = not r["why"]
    return r


# -- the report -----------------------------------------------------------------------------
def report(args, runs, lat, traces, when, broker):
    out = []
    w = out.append
    kinds = [k for k in args.contestants]
    if runs:
        w("%d events, %d partitions, %d rounds (medians); %s; %s"
          % (args.events, args.partitions, args.rounds, broker, when))
        w("")
        w("Measured: " + args.built + "; load average before the start " + args.load)
        w("")
        w("| contestant | msgs/s | / %s | wall s | CPU s | CPU s / M records | broker CPU s | peak RSS MB "
          "| progress lines | transactions | epoch ms p50 | held for the commit ms p50 / max "
          "| runs (failed, disturbed) |"
          % BASELINE)
        w("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        base = med([r["msgs_s"] for r in runs
                    if r["kind"] == BASELINE and r["ok"] and not r["disturbed"]])
        for k in kinds:
            ok = [r for r in runs if r["kind"] == k and r["ok"] and not r["disturbed"]]
            failed = sum(1 for r in runs if r["kind"] == k and not r["ok"])
            if not ok:
                w("| %s | no run that passed and was not disturbed (%d failed) |%s" % (
                    k, failed, " |" * 11))
                continue
            rate = med([r["msgs_s"] for r in ok])
            cpu = med([r["cpu"] for r in ok])
            cyc = [c for r in ok for c in r["cycle_ms"]]
            commits = [c for r in ok for c in r["commit_ms"]]
            tx = med([r["transactions"][0] for r in ok if r["transactions"]])
            w("| %s | %.0f | %.2f | %.2f | %.2f | %.2f | %.2f | %.0f | %s | %s | %s | %s | %s |"
              % (k, rate, rate / base if base else float("nan"), med([r["wall"] for r in ok]),
                 cpu, cpu / (args.events / 1e6), med([r["broker_cpu"] for r in ok]),
                 med([r["rss_mb"] for r in ok]),
                "%.0f" % med([r["epochs"] for r in ok]) if ok else "-",
                "%.0f" % tx if tx == tx else "-",
                "%.0f" % med(cyc) if cyc else "-",
                "%.0f / %.0f" % (med(commits), max(commits)) if commits else "-",
                "%d (%d, %d)" % (len(ok), failed, sum(1 for r in runs if r["kind"] == k
                                                      and r["ok"] and r["disturbed"]))))
        w("")
        w("Medians over the runs that passed their checks and were not disturbed (others' "
          "CPU s above %.1f: the machine's busy CPU during the run minus Sluice's, the "
          "broker's and this script's)." % args.disturbed)
        w("")
        # Per round: the ratio within the round (the same broker state, minutes apart).
        for k in kinds:
            if k == BASELINE:
                continue
            ratios = []
            for rnd in range(args.rounds):
                a = [r for r in runs if r["round"] == rnd and r["kind"] == BASELINE
                     and r["ok"] and not r["disturbed"]]
                b = [r for r in runs if r["round"] == rnd and r["kind"] == k and r["ok"]
                     and not r["disturbed"]]
                if a and b:
                    ratios.append(b[0]["msgs_s"] / a[0]["msgs_s"])
            if ratios:
                w("%s / %s within each round: %s" % (k, BASELINE,
                                                     ", ".join("%.2f" % x for x in ratios)))
        w("")
        w("| round | contestant | wall s | msgs/s | CPU s | broker CPU s | others' CPU s "
          "| peak RSS MB | progress lines | transactions | output read_committed | check |")
        w("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in runs:
            w("| %d | %s | %.2f | %.0f | %.2f | %.2f | %.2f | %.0f | %d | %s | %d | %s |" % (
                r["round"] + 1, r["kind"], r["wall"], r["msgs_s"], r["cpu"], r["broker_cpu"],
                r["other_cpu"], r["rss_mb"],
                r["epochs"], "%d/%d" % r["transactions"] if r["transactions"] else "-",
                r["output_records"], ("ok" if r["ok"] else "FAILED: " + "; ".join(r["why"]))
                + (" (disturbed: left out)" if r["disturbed"] else "")))
        w("")
    if traces:
        w("Trace (one more run each, not timed): the output's end offsets every 50 ms, from "
          "the first write to the last; a stall = no growth between samples.")
        w("")
        w("| contestant | writing s | of which the last 1% of records s | stalls >= 100 ms "
          "| time in them s | longest stall ms | others' CPU s | exit |")
        w("|---|---|---|---|---|---|---|---|")
        for r in traces:
            st = r["stalls"]
            note = "%.2f%s" % (r["other_cpu"], " (disturbed)" if r["disturbed"] else "")
            if st:
                w("| %s | %.2f | %.2f | %d | %.2f | %.0f | %s | %s |" % (
                    r["kind"], st["span_s"], st["last_1pct_s"], st["stalls_100ms"],
                    st["stalled_s"], st["longest_ms"], note, r["rc"]))
            else:
                w("| %s | - | - | - | - | - | %s | %s |" % (r["kind"], note, r["rc"]))
        w("")
    if lat:
        w("Latency: %d records/s for %d s into a fresh %d-partition topic, per contestant a "
          "continuous run; receive time (read_committed) - record timestamp, ms."
          % (args.latency_rate, args.latency_seconds, args.partitions))
        w("")
        w("| contestant | records | p50 | p90 | p99 | max | p50 / p99 without the first 2 s "
          "| progress lines | held for the commit ms p50 | others' CPU s | check |")
        w("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in lat:
            commits = r["commit_ms"]
            w("| %s | %d | %.0f | %.0f | %.0f | %.0f | %.0f / %.0f | %d | %s | %.2f | %s |" % (
                r["kind"], r["received"], r["p50"], r["p90"], r["p99"], r["max"], r["s_p50"],
                r["s_p99"], r["epochs"], "%.0f" % med(commits) if commits else "-",
                r["other_cpu"], ("ok" if r["ok"] else "FAILED: " + "; ".join(r["why"]))
                + (" (disturbed)" if r["disturbed"] else "")))
        w("")
    warn = [(r.get("round", -1), r["kind"], l) for r in runs + lat for l in r["warnings"]]
    if warn:
        w("Warnings and errors in the Sluice logs:")
        w("")
        for rnd, k, l in warn[:40]:
            w("    %s%s: %s" % (k, "" if rnd < 0 else " r%d" % (rnd + 1), l[:300]))
        w("")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--contestants", default="alo-1s,eos-1s,eos-100ms,alo-100ms")
    ap.add_argument("--latency-contestants", default="alo-1s,eos-1s,eos-100ms")
    ap.add_argument("--latency-rate", type=int, default=5000)
    ap.add_argument("--latency-seconds", type=int, default=25)
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--skip-trace", action="store_true")
    ap.add_argument("--subscribe", action="store_true")
    common_arguments(ap, run_timeout=600, retries=2)
    args = ap.parse_args()
    args.out = os.path.abspath(args.out or tempfile.mkdtemp(prefix="sluice-eos-bench."))
    os.makedirs(args.out, exist_ok=True)
    args.sluice = os.path.abspath(args.sluice)
    args.built = snapshot_binary(args)
    args.contestants = [k for k in args.contestants.split(",") if k]
    args.latency_contestants = [k for k in args.latency_contestants.split(",") if k]
    for k in args.contestants + args.latency_contestants:
        if k not in CONTESTANTS:
            ap.error("unknown contestant %s (known: %s)" % (k, ", ".join(CONTESTANTS)))
    if BASELINE not in args.contestants:
        args.contestants.insert(0, BASELINE)
    args.run_tag = uuid.uuid4().hex[:6]  # topic names of this invocation
    args.input = "bench-in-%d" % args.events  # filled once, kept by a reused cluster

    def on_signal(sig, _frame):
        raise KeyboardInterrupt("signal %d" % sig)
    signal.signal(signal.SIGTERM, on_signal)

    broker = None
    began = time.time()
    try:
        broker = Broker(args.out, args.bootstrap)
        bootstrap, args.broker_pids = broker.bootstrap, broker.pids
        print("bootstrap.servers=%s; results in %s" % (bootstrap, args.out), flush=True)
        print("measuring a copy: " + args.built, flush=True)
        args.load = load_average()
        print("load average (1 min) at start: %s (anything else running skews the figures)"
              % args.load, flush=True)
        kafka = Kafka(bootstrap)
        kafka.create({DLQ: 1})
        warm_up(args, kafka)
        runs, lat, traces = [], [], []
        if not args.skip_throughput:
            ends = fill_input(kafka, args.sluice, args.input, args.partitions, args.events)

            def show(r):
                print("round %d %-9s wall %6.2f s  %7.0f msgs/s  cpu %5.2f s  rss %4.0f MB  "
                      "epochs %3d  tx %s  others' cpu %.2f s  %s%s" % (
                          r["round"] + 1, r["kind"], r["wall"], r["msgs_s"], r["cpu"],
                          r["rss_mb"], r["epochs"], r["transactions"], r["other_cpu"],
                          "ok" if r["ok"] else "FAILED: " + "; ".join(r["why"]),
                          " (disturbed)" if r["disturbed"] else ""), flush=True)
            kinds = args.contestants
            runs = alternating_rounds(
                kinds, args.rounds, args.retries,
                lambda kind, rnd, attempt: throughput_run(args, kafka, kind, rnd, ends,
                                                          attempt), show, pause=2)
            if not args.skip_trace:
                for kind in kinds:
                    for attempt in range(args.retries + 1):
                        r = trace_run(args, kafka, kind, attempt)
                        traces.append(r)
                        print("trace %-9s exit %s, %d samples, others' cpu %.2f s: %s"
                              % (kind, r["rc"], r["samples"], r["other_cpu"], r["stalls"]),
                              flush=True)
                        if not r["disturbed"]:
                            break
        if not args.skip_latency:
            for kind in args.latency_contestants:
                for attempt in range(args.retries + 1):
                    r = latency_run(args, kafka, kind, attempt)
                    lat.append(r)
                    print("latency %-9s %d/%d records  p50 %.0f  p90 %.0f  p99 %.0f  max %.0f ms"
                          "  others' cpu %.2f s  %s" % (
                              kind, r["received"], r["count"], r["p50"], r["p90"], r["p99"],
                              r["max"], r["other_cpu"],
                              "ok" if r["ok"] else "FAILED: " + "; ".join(r["why"])),
                          flush=True)
                    if not r["disturbed"]:
                        break
        when = datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC")
        text = report(args, runs, lat, traces, when, broker.description)
        with open(os.path.join(args.out, "report.md"), "w") as f:
            f.write(text + "\n")
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump({"runs": runs, "latency": lat, "traces": traces}, f, indent=1, default=str)
        print()
        print(text)
        print("whole bench: %.0f s" % (time.time() - began))
        bad = [r for r in runs + lat if not r["ok"]]
        return 1 if bad else 0
    finally:
        kafka = None  # its admin client, before the broker goes (no reconnect noise)
        if broker is not None:
            broker.stop()

if __name__ == "__main__":
    sys.exit(main())
