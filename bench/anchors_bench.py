#!/usr/bin/env python3
"""Sluice against what users would pick instead, on one real Kafka broker: the anchors.

    bench/anchors/fetch.sh     # once: pyspark, Spark's Kafka connector, the Kafka Streams app
    cmake --build build --target sluice copy_loop
    scripts/kafka.sh python bench/anchors_bench.py build/apps/sluice \\
        [--events 1000000] [--partitions 64] [--rounds 3] [--contestants a,b,...] \\
        [--out DIR] [--bootstrap B] [--disturbed 2.0] [--retries 1]

Starts one Kafka node (bench/realkafka.py: Kafka 4.1.1, KRaft, heap 1 GB, loopback, the
same two cores as everything else), fills `anchors-in-N` (P partitions) once with
`sluice produce --count N --seed 1` (order events, none malformed), and runs every
contestant once per round, the order rotated from round to round, each a whole process
under `/usr/bin/time -f '%e %M %U %S'`, with a fresh consumer group (or Spark checkpoint)
and an output topic of its own (P partitions, deleted once checked). The contestants, all
doing one job (read every record from the beginning, write it to the output topic;
the routing ones parse it as JSON, check it against the order schema, write the schema's
fields, and send what fails to the DLQ topic):

- copy-prefetch: bench/copy_loop.cpp (librdkafka, one thread, no parsing, no commits),
  assigned every partition, `queued.min.messages` = N (run_bench.sh's copy_loop-prefetch:
  librdkafka's byte limit, `queued.max.messages.kbytes` 64 MiB, still applies). The
  ceiling, and the anchor the ratios divide by first.
- python: bench/route_loop.py (confluent-kafka 2.16 of the tier's venv): json.loads, the
  schema's checks, produce, commits of what was delivered.
- sluice, sluice-eos, sluice-dedup: `sluice run` of the bench pipeline (run_bench.sh's:
  the order parse schema, a fixed route, DLQ, includeHeaders, `fetch.wait.max.ms` 50,
  `linger.ms` 5, `assign`), bounded by `endingOffsets: latest` with the default 1 s epoch;
  -eos with `guarantee: exactly-once`; -dedup with `dedup` on order_id within 1 hour (a
  fresh state directory and changelog topic each run; every record is a lookup, a stored
  sighting and a changelog record).
- spark: bench/anchors/spark_route.py, the seed's pipeline in Spark Structured Streaming
  (pyspark 4.1.1 local[2], Spark's Kafka source and sink, from_json, foreachBatch with the
  topic column and the DLQ write, a checkpoint directory, availableNow). GNU time counts
  only its Python side: the script adds its JVM's CPU seconds and peak RSS (a child
  nobody waits for), so CPU s and peak RSS are Python + JVM.
- kstreams, kstreams-eos: bench/anchors/kstreams (Kafka Streams 4.1.1, 2 stream threads:
  parse with Jackson, the same checks, split() into the output and the DLQ), at_least_once
  and exactly_once_v2, every other setting Kafka Streams' default (commit.interval.ms 30 s
  and 100 ms). Kafka Streams has no bounded run: the app closes itself (a clean close
  commits) once it has handled N records.

A run counts when it exited 0, handled N records, its group holds the input's end offsets
(not copy-prefetch, which commits nothing, nor Spark, which keeps its offsets in the
checkpoint), and its output, read back read_committed by confluent-kafka, holds N records
with N distinct correlation ids. Others' CPU (the machine's busy CPU minus the broker's,
this script's and the contestant's) above --disturbed marks a run as shared with something
else: kept in the per-run table, left out of the medians, run again.

Columns: processing s = first record to the last (each contestant's own clock: the loops
from the first record read to the last delivery or commit; Sluice from its `assigned:` log
line to its last `committed the offsets`; Spark from the first micro-batch's start to the
end of the last one's writes; Kafka Streams from the first record processed to the end of
its close). start s = process start to the first record, where the contestant tells it
(Spark: the JVM, the session, the query's planning). msgs/s = N / processing s; wall s and
CPU s are the whole process's. Ratios: `x / A` is the contestant's figure over anchor A's
(above 1: better). Results go to OUT (default a new /tmp/sluice-anchors.*): per run the
logs and GNU time's line, results.json and report.md (also printed).
"""
import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import time

from realkafka import (ROOT, alternating_rounds, common_arguments, correlation,
                       cpu_snapshot, end_process, fill_input, log_time, med, others_cpu,
                       prepare_out, route_pipeline, run_bench, spawn, started)

CACHE = os.environ.get("SLUICE_KAFKA_CACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "sluice-kafka")
SPARK_VERSION = os.environ.get("SPARK_VERSION", "4.1.1")
CONTESTANTS = ["copy-prefetch", "python", "sluice", "sluice-eos", "sluice-dedup", "spark",
               "kstreams", "kstreams-eos"]
ANCHORS = ["copy-prefetch", "spark", "kstreams", "python"]
DLQ = "anchors-dlq"


def sluice_pipeline(args, bootstrap, out_topic, kind, tag):
    p = route_pipeline("anchors", bootstrap,
                       {"endingOffsets": "latest",
                        "assign": {args.input: list(range(args.partitions))}}, out_topic, DLQ)
    # scaling_bench's fitted events: their filler field written too, as the copy loop does.
    p["parse"]["schema"] = dict(p["parse"]["schema"], **getattr(args, "extra_schema", {}))
    if kind == "sluice-eos":
        p["guarantee"] = "exactly-once"
    if kind == "sluice-dedup":
        p["dedup"] = {"key": ["order_id"], "within": "1 hour",
                      "stateDir": os.path.join(args.out, "state-" + tag),
                      "changelog": "anchors-changelog-" + tag}
    path = os.path.join(args.out, tag + ".pipeline.json")
    with open(path, "w") as f:
        json.dump(p, f, indent=1)
    return path


def command(args, bootstrap, kind, tag, group, out_topic):
    """The contestant's command line."""
    n = str(args.events)
    if kind == "copy-prefetch":
        return [args.copy_loop, "--bootstrap", bootstrap, "--group", group, "--input",
                args.input, "--output", out_topic, "--count", n, "--assign",
                "--consumer-set", "queued.min.messages=%d" % max(args.events, 100000)]
    if kind == "python":
        return [sys.executable, os.path.join(ROOT, "bench", "route_loop.py"), "--bootstrap",
                bootstrap, "--group", group, "--input", args.input, "--output", out_topic,
                "--dlq", DLQ, "--count", n]
    if kind.startswith("sluice"):
        return [args.sluice, "run", sluice_pipeline(args, bootstrap, out_topic, kind, tag),
                "--set", "source.kafka.group.id=" + group]
    if kind == "spark":
        return [args.spark_python, os.path.join(ROOT, "bench", "anchors", "spark_route.py"),
                "--bootstrap", bootstrap, "--input", args.input, "--output", out_topic,
                "--dlq", DLQ, "--checkpoint", os.path.join(args.out, "checkpoint-" + tag),
                "--jars", args.spark_jars]
    if kind.startswith("kstreams"):
        return ["java", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp",
                args.kstreams_cp, "dev.sluice.bench.RouteStreams", "--bootstrap", bootstrap,
                "--app-id", group, "--input", args.input, "--output", out_topic, "--dlq", DLQ,
                "--count", n, "--state-dir", os.path.join(args.out, "kstreams-" + tag),
                "--guarantee", "exactly_once_v2" if kind.endswith("-eos") else "at_least_once"]
    raise ValueError(kind)


def timing(kind, out_lines, err_lines, spawned):
    """(records handled, processing s, start s or None, extra CPU s, extra peak RSS KiB)."""
    if kind.startswith("sluice"):
        start = next(log_time(l) for l in err_lines if " assigned: " in l and "(none)" not in l)
        end = max(log_time(l) for l in err_lines if " committed the offsets " in l)
        m = re.search(r"run ended: (\d+) in, (\d+) out, (\d+) to the DLQ, (\d+) dropped",
                      "".join(l for l in err_lines if " run ended: " in l))
        handled = int(m.group(1)) if m and int(m.group(1)) == int(m.group(2)) + int(
            m.group(3)) + int(m.group(4)) else -1
        return handled, end - start, start - spawned, 0.0, 0
    j = json.loads([l for l in out_lines if l.startswith("{")][-1])
    if kind in ("copy-prefetch", "python"):
        if kind == "python" and j["committed"] != j["records"]:
            return -1, j["seconds"], None, 0.0, 0
        return j["records"], j["seconds"], None, 0.0, 0
    if kind == "spark":
        return (j["records"], (j["last_ms"] - j["first_ms"]) / 1e3,
                j["first_ms"] / 1e3 - spawned, j["jvm_cpu_s"], j["jvm_peak_rss_kb"])
    return (j["records"] if j["finished"] and j["closed"] else -1,
            (j["closed_ms"] - j["first_ms"]) / 1e3, j["first_ms"] / 1e3 - spawned, 0.0, 0)


def run_one(args, kafka, kind, rnd, ends, attempt):
    tag = "%s-r%d%s-%s" % (kind, rnd + 1, "-again%d" % attempt if attempt else "", args.tag)
    group = "anchors-" + tag
    out_topic = "anchors-out-" + tag
    kafka.create({out_topic: args.partitions})
    base = os.path.join(args.out, tag)
    cmd = ["/usr/bin/time", "-f", "%e %M %U %S", "-o", base + ".time"] + command(
        args, kafka.bootstrap, kind, tag, group, out_topic)
    before = cpu_snapshot(args.broker_pids)
    spawned = time.time()
    # Its own process group (spawn): a timeout or an interrupt ends the contestant and
    # everything it started (Spark's JVM) together.
    with open(base + ".out", "w") as out, open(base + ".err", "w") as err:
        p = spawn(cmd, stdout=out, stderr=err)
        try:
            rc = p.wait(timeout=args.run_timeout)
        except subprocess.TimeoutExpired:
            end_process(p)
            rc = "timeout after %d s" % args.run_timeout
        started.remove(p)
    after = cpu_snapshot(args.broker_pids)
    r = {"round": rnd, "kind": kind, "rc": rc, "why": [], "tag": tag}
    with open(base + ".out") as f:
        out_lines = f.read().splitlines()
    with open(base + ".err") as f:
        err_lines = f.read().splitlines()
    try:
        wall, rss, user, system = open(base + ".time").read().split()[-4:]
        r.update(wall=float(wall), rss_kb=int(rss), cpu=float(user) + float(system))
    except (OSError, ValueError):
        r.update(wall=float("nan"), rss_kb=0, cpu=float("nan"))
        r["why"].append("no time line")
    try:
        handled, r["processing"], r["start"], jvm_cpu, jvm_rss = timing(
            kind, out_lines, err_lines, spawned)
        r["cpu"] += jvm_cpu
        r["rss_kb"] += jvm_rss
        after = (after[0], after[1], after[2], after[3] + jvm_cpu)  # Spark's JVM is its own
    except (StopIteration, ValueError, IndexError, KeyError) as e:
        handled, r["processing"], r["start"] = -1, float("nan"), None
        r["why"].append("no timing in its output (%s)" % e)
    others_cpu(args, before, after, r)
    if rc != 0:
        r["why"].append("exit %s (see %s.err)" % (rc, base))
    if handled != args.events:
        r["why"].append("handled %d of %d records" % (handled, args.events))
    if kind not in ("copy-prefetch", "spark") and not r["why"]:
        got = kafka.committed(group, args.input, sorted(ends))
        if got != ends:
            r["why"].append("the group's committed offsets are not the end offsets")
    ids, count, value_bytes = set(), [0], [0]

    def each(m):
        count[0] += 1
        value_bytes[0] += len(m.value() or b"")
        ids.add(correlation(m))
    if not kafka.read(out_topic, each):
        r["why"].append("the output could not be read to its end")
    if count[0] != args.events or len(ids) != args.events:
        r["why"].append("output read_committed: %d records, %d distinct (want %d)"
                        % (count[0], len(ids), args.events))
    kafka.delete([out_topic] + (["anchors-changelog-" + tag] if kind == "sluice-dedup"
                                else []))
    r["out_value_bytes"] = value_bytes[0] / count[0] if count[0] else 0.0
    r["ok"] = not r["why"]
    r["rate"] = args.events / r["processing"] if r["processing"] > 0 else 0.0
    r["rss_mb"] = r["rss_kb"] / 1024.0
    return r


def report(args, runs, when, broker):
    out = []
    w = out.append
    kinds = args.contestants
    good = {k: [r for r in runs if r["kind"] == k and r["ok"] and not r["disturbed"]]
            for k in kinds}
    m = {}
    for k, rs in good.items():
        if rs:
            starts = [r["start"] for r in rs if r["start"] is not None]
            m[k] = {"rate": med([r["rate"] for r in rs]),
                    "processing": med([r["processing"] for r in rs]),
                    "start": med(starts) if starts else None,
                    "wall": med([r["wall"] for r in rs]), "cpu": med([r["cpu"] for r in rs]),
                    "rss": med([r["rss_mb"] for r in rs]), "n": len(rs)}
            m[k]["per_cpu"] = args.events / m[k]["cpu"]
    w("%d events (order JSON, %.0f B mean), %d partitions, %d rounds, medians; %s; %s"
      % (args.events, args.record_bytes, args.partitions, args.rounds, broker, when))
    w("")
    w("Measured: %s; load average at the start %s" % (args.built, args.load))
    w("")
    w("| contestant | msgs/s (processing) | processing s | start s | wall s | CPU s "
      "| CPU s / M records | records / CPU-s | peak RSS MB | runs (failed, disturbed) |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    for k in kinds:
        failed = sum(1 for r in runs if r["kind"] == k and not r["ok"])
        disturbed = sum(1 for r in runs if r["kind"] == k and r["ok"] and r["disturbed"])
        if k not in m:
            w("| %s | no run passed undisturbed |%s %d (%d, %d) |" % (k, " |" * 7, 0, failed,
                                                                     disturbed))
            continue
        x = m[k]
        w("| %s | %.0f | %.2f | %s | %.2f | %.2f | %.2f | %.0f | %.0f | %d (%d, %d) |" % (
            k, x["rate"], x["processing"], "-" if x["start"] is None else "%.2f" % x["start"],
            x["wall"], x["cpu"], x["cpu"] / (args.events / 1e6), x["per_cpu"], x["rss"],
            x["n"], failed, disturbed))
    w("")
    anchors = [a for a in ANCHORS if a in m]
    if anchors:
        w("Ratios (msgs/s while processing; records per CPU-second; whole-process wall time "
          "as anchor wall / wall): above 1, the contestant is ahead of the anchor.")
        w("")
        w("| contestant | " + " | ".join("msgs/s / %s | rec/CPU-s / %s | wall: %s / it" % (
            a, a, a) for a in anchors) + " |")
        w("|---|" + "---|---|---|" * len(anchors))
        for k in kinds:
            if k not in m:
                continue
            cells = []
            for a in anchors:
                cells += ["%.2f" % (m[k]["rate"] / m[a]["rate"]),
                          "%.2f" % (m[k]["per_cpu"] / m[a]["per_cpu"]),
                          "%.2f" % (m[a]["wall"] / m[k]["wall"])]
            w("| %s | %s |" % (k, " | ".join(cells)))
        w("")
    w("Every run:")
    w("")
    w("| round | contestant | processing s | msgs/s | start s | wall s | CPU s | others' CPU s "
      "| peak RSS MB | check |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        w("| %d | %s | %.2f | %.0f | %s | %.2f | %.2f | %.2f | %.0f | %s |" % (
            r["round"] + 1, r["kind"], r["processing"], r["rate"],
            "-" if r["start"] is None else "%.2f" % r["start"], r["wall"], r["cpu"],
            r["other_cpu"], r["rss_mb"],
            ("ok" if r["ok"] else "FAILED: " + "; ".join(r["why"]))
            + (" (disturbed: left out)" if r["disturbed"] else "")))
    return "\n".join(out)


def find_tools(args, ap):
    """The copy loop beside sluice's build, and what bench/anchors/fetch.sh left in the cache."""
    build = os.path.dirname(os.path.dirname(os.path.abspath(args.sluice)))
    args.copy_loop = os.path.join(build, "bench", "copy_loop")
    args.spark_python = os.path.join(CACHE, "spark-venv-" + SPARK_VERSION, "bin", "python")
    args.spark_jars = os.path.join(CACHE, "spark-kafka-" + SPARK_VERSION)
    ks = os.path.join(CACHE, "route-streams", "target")
    args.kstreams_cp = os.path.join(ks, "route-streams-1.jar") + ":" + os.path.join(ks, "lib/*")
    need = {"copy-prefetch": args.copy_loop, "spark": args.spark_python,
            "kstreams": os.path.join(ks, "route-streams-1.jar")}
    for k, path in need.items():
        if any(c.startswith(k) for c in args.contestants) and not os.path.exists(path):
            ap.error("%s is missing for %s: %s" % (path, k, "cmake --build build --target "
                     "copy_loop" if k == "copy-prefetch" else "run bench/anchors/fetch.sh"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--contestants", default=",".join(CONTESTANTS))
    common_arguments(ap, run_timeout=900, retries=1)
    args = ap.parse_args()
    args.contestants = [k for k in args.contestants.split(",") if k]
    for k in args.contestants:
        if k not in CONTESTANTS:
            ap.error("unknown contestant %s (known: %s)" % (k, ", ".join(CONTESTANTS)))
    find_tools(args, ap)
    prepare_out(args, "sluice-anchors")
    args.input = "anchors-in-%d-%d" % (args.events, args.partitions)

    def body(kafka, broker):
        kafka.create({DLQ: 1})
        ends = fill_input(kafka, args.sluice, args.input, args.partitions, args.events)
        args.record_bytes = kafka.mean_value_bytes(args.input)

        def show(r):
            print("round %d %-13s processing %6.2f s %8.0f msgs/s  wall %6.2f s  cpu %6.2f s  "
                  "rss %5.0f MB  others' cpu %5.2f  %s%s" % (
                      r["round"] + 1, r["kind"], r["processing"], r["rate"], r["wall"],
                      r["cpu"], r["rss_mb"], r["other_cpu"],
                      "ok" if r["ok"] else "FAILED: " + "; ".join(r["why"]),
                      " (disturbed)" if r["disturbed"] else ""), flush=True)
        runs = alternating_rounds(
            args.contestants, args.rounds, args.retries,
            lambda kind, rnd, attempt: run_one(args, kafka, kind, rnd, ends, attempt), show)
        when = datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC")
        return (report(args, runs, when, broker.description), runs,
                all(r["ok"] for r in runs))
    return run_bench(args, body)


if __name__ == "__main__":
    sys.exit(main())
