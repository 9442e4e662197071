#!/usr/bin/env python3
"""End-to-end latency at a steady rate: Sluice against Kafka Streams, on one real Kafka broker.

    bench/anchors/fetch.sh     # once: the Kafka Streams app
    cmake --build build --target sluice
    scripts/kafka.sh python bench/latency_bench.py build/apps/sluice \\
        [--rate 20000] [--seconds 30] [--partitions 64] [--rounds 2] \\
        [--contestants a,b,...] [--out DIR] [--bootstrap B] [--disturbed 2.0] [--retries 1]

Per contestant and round: a fresh input and output topic (P partitions); a read_committed
reader of the output (confluent-kafka, `fetch.wait.max.ms` 20, one poll() per record so
that each is stamped when it arrives) starts first; the contestant starts as a continuous
run (no end) in a fresh group; once it reports its partitions (Sluice: its `assigned:` log
line; Kafka Streams: its RUNNING state) and 2 s more, `sluice produce --rate R --count
R*S --seed 2` writes order events at a steady rate (about 160 B, none malformed; the
producer's `linger.ms` 20 is in every figure). Latency of a record = the time the reader
got it - its timestamp: the producer's CreateTime, which both keep on their output (checked
against the input record of the same correlation id). Once the reader has every record (and
1 s more, for duplicates), the contestant gets SIGTERM. A round counts when the output held
R*S records with R*S distinct correlation ids, each with its input's timestamp, and the
contestant ran until the SIGTERM and then stopped cleanly (Sluice: exit 0; Kafka Streams:
143 and its last line saying it closed without error). As in the other real-Kafka benches,
a run while other work took more than `--disturbed` CPU seconds is marked, left out of
the medians and run again (at most `--retries` times).

Besides p50/p90/p99/max over every record, "steady" leaves out the first 2 s of writes
(group join, first fetches), and "CPU % of a core" is the contestant's CPU while the
producer wrote (/proc), divided by the time it wrote.

Contestants (`--contestants`):
- direct: no processor; the reader reads the input topic itself: the floor the others
  stand on (the producer's linger, the broker, this reader on the same two cores).
- sluice: `sluice run` of the bench pipeline (bench/realkafka.py's route_pipeline:
  the order schema, a fixed route, DLQ, `fetch.wait.max.ms` 50, `linger.ms` 5),
  subscribed, at-least-once: outputs are readable once delivered, epochs of 1 s commit
  offsets behind them.
- sluice-eos: `guarantee: exactly-once` with the default 1 s epoch: an output is readable
  when its epoch's transaction commits.
- sluice-eos-100ms: the same with `trigger.processingTime` "100 ms".
- kstreams, kstreams-eos: bench/anchors/kstreams (Kafka Streams 4.1.1, 2 threads, every
  setting its default: at_least_once, and exactly_once_v2 whose commit.interval.ms is 100 ms;
  its producer's linger.ms is the 100 ms Kafka Streams sets: as shipped, not tuned).

Results in OUT (default a new /tmp/sluice-latency.*): per run its logs and a .tsv (every
record's latency), results.json and report.md (also printed). Exit 1 when a run failed.
"""
import argparse
import datetime
import json
import os
import signal
import sys
import time

from anchors_bench import find_tools
from realkafka import (Reader, alternating_rounds, cpu_snapshot, end_process,
                       latency_figures, med, others_cpu, prepare_out, proc_cpu_seconds,
                       produce_and_wait, route_pipeline, run_bench, spawn, started)

CONTESTANTS = ["direct", "sluice", "sluice-eos", "sluice-eos-100ms", "kstreams",
               "kstreams-eos"]
DLQ = "latency-dlq"


def command(args, kind, tag, topic_in, topic_out, group):
    if kind.startswith("kstreams"):
        return ["java", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp",
                args.kstreams_cp, "dev.sluice.bench.RouteStreams", "--bootstrap",
                args.bootstrap, "--app-id", group, "--input", topic_in, "--output",
                topic_out, "--dlq", DLQ, "--count", "0", "--timeout-s", "3600",
                "--state-dir", os.path.join(args.out, "kstreams-" + tag), "--guarantee",
                "exactly_once_v2" if kind.endswith("-eos") else "at_least_once"]
    p = route_pipeline("latency", args.bootstrap, {"subscribe": topic_in}, topic_out, DLQ)
    if kind != "sluice":
        p["guarantee"] = "exactly-once"
    if kind.endswith("-100ms"):
        p["trigger"] = {"processingTime": "100 ms"}
    path = os.path.join(args.out, tag + ".pipeline.json")
    with open(path, "w") as f:
        json.dump(p, f, indent=1)
    return [args.sluice, "run", path, "--set", "source.kafka.group.id=" + group]


def ready(kind, out_path, err_path):
    """Has the contestant its partitions?"""
    path, mark = (out_path, '"state":"RUNNING"') if kind.startswith("kstreams") else (
        err_path, " assigned: ")
    with open(path) as f:
        return any(mark in line and "(none)" not in line for line in f)


def latency_run(args, kafka, kind, rnd, attempt):
    tag = "%s-r%d%s-%s" % (kind, rnd + 1, "-again%d" % attempt if attempt else "", args.tag)
    topic_in, topic_out = "latency-in-" + tag, "latency-out-" + tag
    group = "latency-" + tag
    kafka.create({topic_in: args.partitions, topic_out: args.partitions})
    count = int(args.rate * args.seconds)
    r = {"round": rnd, "kind": kind, "why": [], "count": count, "tag": tag}
    direct = kind == "direct"
    reader = Reader(kafka, topic_in if direct else topic_out, args.partitions)
    base = os.path.join(args.out, tag)
    before = cpu_snapshot(args.broker_pids)
    with open(base + ".out", "w") as out, open(base + ".err", "w") as err:
        # direct: a stand-in process that waits for its SIGTERM.
        p = spawn(["sleep", "3600"] if direct else command(
            args, kind, tag, topic_in, topic_out, group), stdout=out, stderr=err)
    deadline = time.time() + 90
    while not direct and not ready(kind, base + ".out", base + ".err") \
            and time.time() < deadline and p.poll() is None:
        time.sleep(0.1)
    t_start = t_end = time.time()
    cpu0 = cpu1 = float("nan")  # no CPU share unless it wrote to a ready contestant
    if not direct and not ready(kind, base + ".out", base + ".err"):
        r["why"].append("no partitions within 90 s (exit %s)" % p.poll())
    else:
        time.sleep(2.0)  # its first fetches are out
        t_start = time.time()
        cpu0 = proc_cpu_seconds(p.pid)
        cpu_end = []  # the contestant's CPU when the producer ended

        def written():
            if p.poll() is None:
                cpu_end.append(proc_cpu_seconds(p.pid))
        t_end = produce_and_wait(args.sluice, args.bootstrap, topic_in, count, args.rate,
                                 reader, p, r, written)
        cpu1 = cpu_end[0] if cpu_end else float("nan")
    if p.poll() is not None:
        r["why"].append("exited %s before it was stopped" % p.returncode)
    end_process(p, signal.SIGTERM)
    started.remove(p)
    reader.stopping.set()
    reader.join(timeout=30)
    others_cpu(args, before, cpu_snapshot(args.broker_pids), r)
    # Sluice exits 0 on SIGTERM; Kafka Streams' JVM with 143 once closed (1 otherwise),
    # and says how its close went on its last line; `sleep` dies of the signal.
    r["rc"] = p.returncode
    if p.returncode != (-15 if direct else 143 if kind.startswith("kstreams") else 0):
        r["why"].append("exit %s after SIGTERM" % p.returncode)
    if kind.startswith("kstreams"):
        last = []
        with open(base + ".out") as f:
            for line in f:
                try:
                    if line.startswith('{"contestant"'):
                        last.append(json.loads(line))
                except ValueError:
                    pass  # a line cut short by a kill
        if not last or not last[-1]["closed"] or last[-1]["error"] is not None:
            r["why"].append("Kafka Streams did not close cleanly: %s" % (last[-1:] or
                                                                        "no final line"))
    latency_figures(kafka, reader.got, count, topic_in, base + ".tsv", t_start, r)
    r.update(wrote_s=t_end - t_start,
             core_share=(cpu1 - cpu0) / (t_end - t_start) if t_end > t_start
             else float("nan"))
    kafka.delete([topic_in, topic_out])
    r["ok"] = not r["why"]
    return r


def report(args, runs, when, broker):
    out = []
    w = out.append
    w("%d records/s for %d s (%d order events, %d partitions), %d round(s), medians of the "
      "rounds' figures; %s; %s" % (args.rate, args.seconds, int(args.rate * args.seconds),
                                   args.partitions, args.rounds, broker, when))
    w("")
    w("Measured: %s; load average at the start %s" % (args.built, args.load))
    w("")
    w("| contestant | p50 ms | p90 ms | p99 ms | max ms | steady p50 | steady p99 "
      "| steady max | CPU % of a core | runs (failed, disturbed) |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    for k in args.contestants:
        rs = [r for r in runs if r["kind"] == k]
        good = [r for r in rs if r["ok"] and not r["disturbed"]]
        failed = sum(1 for r in rs if not r["ok"])
        disturbed = sum(1 for r in rs if r["ok"] and r["disturbed"])
        if not good:
            w("| %s | no run passed undisturbed |%s 0 (%d, %d) |" % (k, " |" * 7, failed,
                                                                   disturbed))
            continue
        w("| %s | %s | %d (%d, %d) |" % (k, " | ".join(
            "%.0f" % med([r[f] for r in good])
            for f in ("p50", "p90", "p99", "max", "s_p50", "s_p99", "s_max")) + " | %.0f%%" % (
            100 * med([r["core_share"] for r in good])), len(good), failed, disturbed))
    w("")
    w("Every run:")
    w("")
    w("| round | contestant | p50 | p99 | max | steady p99 | CPU % | others' CPU s | check |")
    w("|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        w("| %d | %s | %.0f | %.0f | %.0f | %.0f | %.0f%% | %.1f | %s |" % (
            r["round"] + 1, r["kind"], r["p50"], r["p99"], r["max"], r["s_p99"],
            100 * r["core_share"], r["other_cpu"],
            ("ok" if r["ok"] else "FAILED: " + "; ".join(r["why"]))
            + (" (disturbed: left out)" if r["disturbed"] else "")))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sluice")
    ap.add_argument("--rate", type=int, default=20000)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--partitions", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--contestants", default=",".join(CONTESTANTS))
    ap.add_argument("--bootstrap", help="use this running cluster (nothing is started)")
    ap.add_argument("--disturbed", type=float, default=2.0,
                    help="others' CPU s above which a run is left out of the medians")
    ap.add_argument("--retries", type=int, default=1,
                    help="a disturbed run is run again at most this many times")
    ap.add_argument("--out")
    args = ap.parse_args()
    args.contestants = [k for k in args.contestants.split(",") if k]
    for k in args.contestants:
        if k not in CONTESTANTS:
            ap.error("unknown contestant %s (known: %s)" % (k, ", ".join(CONTESTANTS)))
    find_tools(args, ap)
    prepare_out(args, "sluice-latency")

    def body(kafka, broker):
        args.bootstrap = broker.bootstrap
        kafka.create({DLQ: 1})

        def show(r):
            print("round %d %-16s p50 %5.0f  p99 %5.0f  max %5.0f ms  steady p99 %5.0f  "
                  "cpu %3.0f%%  others' cpu %5.2f  %s%s" % (
                      r["round"] + 1, r["kind"], r["p50"], r["p99"], r["max"], r["s_p99"],
                      100 * r["core_share"], r["other_cpu"],
                      "ok" if r["ok"] else "FAILED: " + "; ".join(r["why"]),
                      " (disturbed)" if r["disturbed"] else ""), flush=True)
        runs = alternating_rounds(
            args.contestants, args.rounds, args.retries,
            lambda kind, rnd, attempt: latency_run(args, kafka, kind, rnd, attempt), show)
        when = datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC")
        return (report(args, runs, when, broker.description), runs,
                all(r["ok"] for r in runs))
    return run_bench(args, body)


if __name__ == "__main__":
    sys.exit(main())
