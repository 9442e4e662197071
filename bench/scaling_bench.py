#!/usr/bin/env python3
"""How Sluice's cost grows, on one real Kafka broker: partitions, record size, instances in
one group, and a run with nothing to read.

    cmake --build build --target sluice copy_loop
    scripts/kafka.sh python bench/scaling_bench.py build/apps/sluice \\
        [--events 1000000] [--rounds 3] [--partition-counts 1,4,16,64,256] \\
        [--sizes 100,1024,10240] [--size-budget-mb 1000] [--instances 1,2,4] \\
        [--idle 4,64,64@50] [--idle-seconds 20] [--dimensions partitions,sizes,...] \\
        [--partitions 64] [--out DIR] [--bootstrap B] [--disturbed 2.0] [--retries 1]

The broker, the input fill, the contestants' command lines and every run's checks are
bench/anchors_bench.py's (one Kafka 4.1.1 node, whole processes, a fresh group and output
topic per run, the output read back read_committed and counted, committed offsets
checked, alternating rounds, medians). The dimensions:

- partitions: the anchors' bounded `sluice run` (at-least-once, `assign`, endingOffsets
  latest) and the raw copy loop with full prefetch, over inputs of N order events (about
  160 B) in 1, 4, 16, 64 and 256 partitions; the output topic has as many.
- sizes: the same two at P partitions (`--partitions`, 64) over events fitted to 100 B, 1
  KB and 10 KB (`sluice produce --value-bytes`: the optional fields dropped, leaving
  100-102 B, or a filler `note` field added, which the schema names last so that Sluice
  writes it too and its output is about the input's size, as the copy loop's: the report
  shows the mean output value read back); N events, or fewer so that the input holds at
  most `--size-budget-mb`. The 100 B events take the parser's general path (two fields
  missing); at 1 KB and 10 KB the filler is last, in the schema's order: the fast path,
  as at 160 B.
- instances: 1, 2 and 4 `sluice run` processes started together, each subscribed to the
  P-partition input in one consumer group (group coordination and rebalances included),
  continuous runs (a bounded member's exit would hand its partitions to the others); the
  run is done when the output's end offsets sum to N (asked every 0.1 s, one ListOffsets
  request), and the group's committed offsets reach the input's ends. CPU seconds and peak
  RSS are read from /proc for each process at that moment, then every process is stopped
  with SIGTERM and must exit 0. Processing = the first assignment logged by any instance to
  the moment the output was complete. So, unlike the bounded rows, CPU stops there (not at
  the process's end: no final commit, no shutdown), and peak RSS is the sum of each
  member's own peak (reached at different times), with the largest member's beside it;
  their output is counted by offsets, not read back ("output value B" is "-").
- idle: one continuous `sluice run` subscribed to an empty topic of P partitions; after its
  assignment and 3 s to settle, its CPU over `--idle-seconds` (/proc), as a share of one
  core. `P@MS` sets `kafka.fetch.wait.max.ms` MS (the bench pipeline's 50); a bare P
  keeps librdkafka's default (500 ms).

Results in OUT (default a new /tmp/sluice-scaling.*): per run its pipeline, logs and time
line, results.json, report.md (the tables, also printed). Exit 1 when a run failed.
"""
import argparse
import copy
import datetime
import json
import os
import signal
import subprocess
import sys
import time

from anchors_bench import find_tools, run_one
from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import OffsetSpec
from realkafka import (alternating_rounds, common_arguments, cpu_snapshot, end_process,
                       fill_input, log_time, med, others_cpu, prepare_out, proc_cpu_seconds,
                       route_pipeline, run_bench, spawn, started)

DIMENSIONS = ["partitions", "sizes", "instances", "idle"]
DLQ = "anchors-dlq"


def proc_usage(pid):
    """(CPU seconds, peak RSS KiB, threads) of a running process, from /proc."""
    cpu = proc_cpu_seconds(pid)
    status = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            status[k] = v.split()
    return cpu, int(status["VmHWM"][0]), int(status["Threads"][0])


def output_end(kafka, topic, partitions):
    """The sum of a topic's end offsets (one ListOffsets request), or -1 when the broker
    did not answer (asked again by the caller)."""
    try:
        fs = kafka.admin.list_offsets({TopicPartition(topic, p): OffsetSpec.latest()
                                       for p in range(partitions)}, request_timeout=10)
        return sum(f.result().offset for f in fs.values())
    except KafkaException:
        return -1


def assigned_at(path):
    """The log time of the first assignment holding a partition, or None."""
    try:
        with open(path) as f:
            for line in f:
                if " assigned: " in line and "(none)" not in line:
                    return log_time(line)
    except OSError:
        pass
    return None


def subscribe_pipeline(args, bootstrap, topic_in, topic_out, tag, fetch_wait=None):
    p = route_pipeline("scaling", bootstrap, {"subscribe": topic_in}, topic_out, DLQ)
    if fetch_wait is None:
        del p["source"]["kafka.fetch.wait.max.ms"]
    else:
        p["source"]["kafka.fetch.wait.max.ms"] = fetch_wait
    path = os.path.join(args.out, tag + ".pipeline.json")
    with open(path, "w") as f:
        json.dump(p, f, indent=1)
    return path


def instances_run(args, kafka, case, rnd, attempt):
    """`case["instances"]` continuous members of one group over the P-partition input."""
    n, parts, events = case["instances"], case["partitions"], case["events"]
    tag = "inst%d-r%d%s-%s" % (n, rnd + 1, "-again%d" % attempt if attempt else "", args.tag)
    group, out_topic = "scaling-" + tag, "scaling-out-" + tag
    kafka.create({out_topic: parts})
    pipe = subscribe_pipeline(args, kafka.bootstrap, case["input"], out_topic, tag, 50)
    r = {"round": rnd, "case": case["label"], "kind": "sluice", "why": [], "tag": tag}
    before = cpu_snapshot(args.broker_pids)
    spawned, procs, logs = time.time(), [], []
    for i in range(n):
        logs.append(os.path.join(args.out, "%s-m%d.err" % (tag, i)))
        with open(logs[-1], "w") as err:
            procs.append(spawn([args.sluice, "run", pipe, "--set",
                                "source.kafka.group.id=" + group],
                               stdout=subprocess.DEVNULL, stderr=err))
    done, deadline = None, time.time() + args.run_timeout
    while time.time() < deadline and all(p.poll() is None for p in procs):
        if output_end(kafka, out_topic, parts) >= events:
            done = time.time()
            break
        time.sleep(0.1)
    usage = []
    for p in procs:
        try:
            usage.append(proc_usage(p.pid))
        except (OSError, KeyError, IndexError, ValueError):
            usage.append((float("nan"), 0, 0))
    if done is None:
        r["why"].append("the output was not complete within %d s, or a member exited"
                        % args.run_timeout)
    else:
        # Their last epoch commits within a second: wait for the group to reach the ends.
        until = time.time() + 30
        while time.time() < until and kafka.committed(group, case["input"], range(parts)) \
                != case["ends"]:
            time.sleep(0.5)
    for p in procs:
        end_process(p, signal.SIGTERM)
        started.remove(p)
        if p.returncode != 0:
            r["why"].append("a member exited %s after SIGTERM" % p.returncode)
    others_cpu(args, before, cpu_snapshot(args.broker_pids), r)
    if kafka.committed(group, case["input"], range(parts)) != case["ends"]:
        r["why"].append("the group's committed offsets are not the end offsets")
    for _ in range(5):  # -1: the broker did not answer; ask again
        got = output_end(kafka, out_topic, parts)
        if got >= 0:
            break
        time.sleep(1)
    if got != events:
        r["why"].append("output holds %d records, want %d" % (got, events))
    firsts = [t for t in (assigned_at(path) for path in logs) if t is not None]
    first = min(firsts) if firsts else spawned
    r["processing"] = (done - first) if done else float("nan")
    r["start"] = first - spawned
    r["cpu"] = sum(u[0] for u in usage)
    r["rss_mb"] = sum(u[1] for u in usage) / 1024.0
    r["rss_each_mb"] = max(u[1] for u in usage) / 1024.0
    r["threads"] = sum(u[2] for u in usage)
    r["members_assigned"] = len(firsts)
    r["wall"] = (done - spawned) if done else float("nan")
    kafka.delete([out_topic])
    r["ok"] = not r["why"]
    r["rate"] = events / r["processing"] if r["processing"] > 0 else 0.0
    return r


def bounded_run(args, kafka, case, kind, rnd, attempt):
    """The anchors bench's run of one contestant, over this case's input."""
    a = copy.copy(args)
    a.input, a.partitions, a.events = case["input"], case["partitions"], case["events"]
    a.extra_schema = case.get("extra_schema", {})
    a.tag = "%s-%s" % (case["label"].replace(" ", ""), args.tag)
    r = run_one(a, kafka, kind, rnd, case["ends"], attempt)
    r["case"] = case["label"]
    return r


def idle_run(args, kafka, case):
    """CPU of a continuous run with nothing to read."""
    tag = "idle-%s-%s" % (case["spec"].replace("@", "-"), args.tag)
    pipe = subscribe_pipeline(args, kafka.bootstrap, case["input"], "scaling-idle-out", tag,
                              case["fetch_wait"])
    log = os.path.join(args.out, tag + ".err")
    r = {"case": case["label"], "why": []}
    with open(log, "w") as err:
        p = spawn([args.sluice, "run", pipe, "--set", "source.kafka.group.id=" + tag],
                  stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.time() + 60
    while assigned_at(log) is None and time.time() < deadline and p.poll() is None:
        time.sleep(0.1)
    if assigned_at(log) is None:
        r["why"].append("no assignment within 60 s")
    time.sleep(3)
    if p.poll() is not None:
        r["why"].append("exited %s while idle (see %s)" % (p.returncode, log))
        started.remove(p)
        return dict(r, core_share=float("nan"), rss_mb=0, threads=0, ok=False)
    cpu0 = proc_usage(p.pid)[0]
    t0 = time.time()
    time.sleep(args.idle_seconds)
    cpu1, rss, threads = proc_usage(p.pid)
    t1 = time.time()
    end_process(p, signal.SIGTERM)
    started.remove(p)
    if p.returncode != 0:
        r["why"].append("exit %s after SIGTERM" % p.returncode)
    r.update(core_share=(cpu1 - cpu0) / (t1 - t0), rss_mb=rss / 1024.0, threads=threads,
             ok=not r["why"])
    return r


def cases(args, kafka):
    """The inputs of every dimension asked for, filled once (a reused cluster keeps them)."""
    out = []
    if "partitions" in args.dimensions or "instances" in args.dimensions:
        counts = set(args.partition_counts if "partitions" in args.dimensions else [])
        if "instances" in args.dimensions:
            counts.add(args.partitions)
        for p in sorted(counts):
            topic = "scaling-in-%d-p%d" % (args.events, p)
            ends = fill_input(kafka, args.sluice, topic, p, args.events)
            base = {"input": topic, "partitions": p, "events": args.events, "ends": ends,
                    "bytes": kafka.mean_value_bytes(topic)}
            if "partitions" in args.dimensions and p in args.partition_counts:
                out.append(dict(base, dim="partitions",
                                label="%d partition%s" % (p, "" if p == 1 else "s")))
            if "instances" in args.dimensions and p == args.partitions:
                for n in args.instances:
                    out.append(dict(base, dim="instances", instances=n,
                                    label="%d instance%s" % (n, "" if n == 1 else "s")))
    if "sizes" in args.dimensions:
        for size in args.sizes:
            events = min(args.events, int(args.size_budget_mb * 1e6 / size))
            topic = "scaling-in-%d-p%d-b%d" % (events, args.partitions, size)
            ends = fill_input(kafka, args.sluice, topic, args.partitions, events, size)
            out.append({"dim": "sizes", "label": "%d B" % size, "input": topic,
                        "partitions": args.partitions, "events": events, "ends": ends,
                        "bytes": kafka.mean_value_bytes(topic),
                        "extra_schema": {"note": "string"}})
    return out


def report(args, runs, idle, when, broker):
    out = []
    w = out.append
    w("Medians of %d round(s); %s; %s" % (args.rounds, broker, when))
    w("")
    w("Measured: %s; load average at the start %s" % (args.built, args.load))
    labels = []
    for r in runs:
        if (r["dim"], r["case"]) not in labels:
            labels.append((r["dim"], r["case"]))
    for dim in [d for d in DIMENSIONS if d != "idle"]:
        rows = [lab for d, lab in labels if d == dim]
        if not rows:
            continue
        w("")
        w("**%s**" % dim)
        w("")
        w("| case | records | value B | contestant | output value B | msgs/s | MB/s "
          "| CPU s / M records | records / CPU-s | peak RSS MB "
          "| sluice / copy loop (msgs/s, rec/CPU-s) | runs (failed, disturbed) |")
        w("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for lab in rows:
            m = {}
            for kind in ("sluice", "copy-prefetch"):
                rs = [r for r in runs if r["case"] == lab and r["kind"] == kind]
                good = [r for r in rs if r["ok"] and not r["disturbed"]]
                if not rs:
                    continue
                failed = sum(1 for r in rs if not r["ok"])
                disturbed = sum(1 for r in rs if r["ok"] and r["disturbed"])
                c = rs[0]["meta"]
                if not good:
                    w("| %s | %d | %.0f | %s | no run passed undisturbed |%s 0 (%d, %d) |"
                      % (lab, c["events"], c["bytes"], kind, " |" * 6, failed, disturbed))
                    continue
                x = {"rate": med([r["rate"] for r in good]),
                     "cpu": med([r["cpu"] for r in good]),
                     "rss": med([r["rss_mb"] for r in good])}
                x["per_cpu"] = c["events"] / x["cpu"]
                m[kind] = x
                ratio = ""
                if kind == "copy-prefetch" and "sluice" in m:
                    ratio = "%.2f, %.2f" % (m["sluice"]["rate"] / x["rate"],
                                            m["sluice"]["per_cpu"] / x["per_cpu"])
                extra = ""
                if dim == "instances":
                    extra = " (largest %.0f, %d threads in all)" % (
                        med([r["rss_each_mb"] for r in good]), good[0]["threads"])
                # What the contestant wrote, read back (the instances runs count offsets).
                out_b = [r["out_value_bytes"] for r in good if "out_value_bytes" in r]
                w("| %s | %d | %.0f | %s | %s | %.0f | %.1f | %.2f | %.0f | %.0f%s | %s "
                  "| %d (%d, %d) |"
                  % (lab, c["events"], c["bytes"], kind,
                     "%.0f" % med(out_b) if out_b else "-", x["rate"],
                     x["rate"] * c["bytes"] / 1e6, x["cpu"] / (c["events"] / 1e6),
                     x["per_cpu"], x["rss"], extra, ratio, len(good), failed, disturbed))
    if idle:
        w("")
        w("**idle** (nothing to read, %d s measured after 3 s settled)" % args.idle_seconds)
        w("")
        w("| case | share of one core | threads | RSS MB | check |")
        w("|---|---|---|---|---|")
        for r in idle:
            w("| %s | %.1f%% | %d | %.0f | %s |" % (
                r["case"], 100 * r["core_share"], r["threads"], r["rss_mb"],
                "ok" if r["ok"] else "FAILED: " + "; ".join(r["why"])))
    w("")
    w("Every run:")
    w("")
    w("| round | case | contestant | processing s | msgs/s | wall s | CPU s | others' CPU s "
      "| peak RSS MB | check |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        w("| %d | %s | %s | %.2f | %.0f | %.2f | %.2f | %.2f | %.0f | %s |" % (
            r["round"] + 1, r["case"], r["kind"], r["processing"], r["rate"], r["wall"],
            r["cpu"], r["other_cpu"], r["rss_mb"],
            ("ok" if r["ok"] else "FAILED: " + "; ".join(r["why"]))
            + (" (disturbed: left out)" if r["disturbed"] else "")))
    return "\n".join(out)


def ints(text):
    return [int(x) for x in text.split(",") if x]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dimensions", default=",".join(DIMENSIONS))
    ap.add_argument("--partition-counts", default="1,4,16,64,256")
    ap.add_argument("--sizes", default="100,1024,10240")
    ap.add_argument("--size-budget-mb", type=float, default=1000)
    ap.add_argument("--instances", default="1,2,4")
    ap.add_argument("--idle", default="4,64,64@50")
    ap.add_argument("--idle-seconds", type=float, default=20)
    common_arguments(ap, run_timeout=600, retries=1)
    args = ap.parse_args()
    args.dimensions = [d for d in args.dimensions.split(",") if d]
    for d in args.dimensions:
        if d not in DIMENSIONS:
            ap.error("unknown dimension %s (known: %s)" % (d, ", ".join(DIMENSIONS)))
    args.partition_counts, args.sizes = ints(args.partition_counts), ints(args.sizes)
    args.instances = ints(args.instances)
    args.contestants = ["sluice", "copy-prefetch"]
    find_tools(args, ap)
    prepare_out(args, "sluice-scaling")

    def body(kafka, broker):
        kafka.create({DLQ: 1})
        todo = []
        for c in cases(args, kafka):
            if c["dim"] == "instances":
                todo.append((c, "sluice"))
            else:
                todo += [(c, "sluice"), (c, "copy-prefetch")]

        def run(item, rnd, attempt):
            c, kind = item
            r = (instances_run(args, kafka, c, rnd, attempt) if c["dim"] == "instances"
                 else bounded_run(args, kafka, c, kind, rnd, attempt))
            r["dim"], r["meta"] = c["dim"], {"events": c["events"], "bytes": c["bytes"]}
            return r

        def show(r):
            print("round %d %-14s %-13s processing %6.2f s %8.0f msgs/s  cpu %6.2f s  "
                  "rss %5.0f MB  others' cpu %5.2f  %s%s" % (
                      r["round"] + 1, r["case"], r["kind"], r["processing"], r["rate"],
                      r["cpu"], r["rss_mb"], r["other_cpu"],
                      "ok" if r["ok"] else "FAILED: " + "; ".join(r["why"]),
                      " (disturbed)" if r["disturbed"] else ""), flush=True)
        runs, idle = alternating_rounds(todo, args.rounds, args.retries, run, show), []
        if "idle" in args.dimensions:
            for spec in args.idle.split(","):
                p, _, wait = spec.partition("@")
                topic = "scaling-empty-p%s" % p
                kafka.create({topic: int(p), "scaling-idle-out": 1})
                label = p + " partitions" + (", fetch.wait.max.ms " + wait if wait else "")
                r = idle_run(args, kafka, {"label": label, "spec": spec, "input": topic,
                                           "fetch_wait": int(wait) if wait else None})
                idle.append(r)
                print("idle %-40s %.1f%% of a core, %d threads, %.0f MB %s" % (
                    r["case"], 100 * r["core_share"], r["threads"], r["rss_mb"],
                    "ok" if r["ok"] else "FAILED: " + "; ".join(r["why"])), flush=True)
        when = datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC")
        return (report(args, runs, idle, when, broker.description),
                {"runs": runs, "idle": idle}, all(r["ok"] for r in runs + idle))
    return run_bench(args, body)


if __name__ == "__main__":
    sys.exit(main())
