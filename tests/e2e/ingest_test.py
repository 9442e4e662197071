#!/usr/bin/python3
"""End-to-end: `sluice ingest` (files or stdin -> Kafka) against `sluice broker`.

1. Two files and stdin between them (3,000 + 2,000 + 1,000 lines; every 97th broken,
   every 50th blank, some CRLF): read back with confluent-kafka, every valid line is a
   record once, byte-equal (CR dropped), keyed by its customer field, with the --header,
   each key's records in input order; the reject file lists each broken line with its
   input, line number and reason; the summary counts match.
2. A line larger than the producer's message.max.bytes goes to the reject file, the rest
   is written.
3. Without --reject-file, a broken line stops the ingest: exit 1 naming file:line.
4. SIGTERM while stdin is idle: the ingest exits 0 at once, everything read is written,
   and the summary says it stopped.
5. An input that cannot be read: exit 2 naming it.

Usage: ingest_test.py PATH/TO/sluice
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_support import (MULT, SLUICE, check, install_cleanup,  # noqa: E402
                         read_all, start, start_broker, stop_broker, wait_for, run_test)
import ingest_lines  # noqa: E402

WORK = tempfile.mkdtemp(prefix="sluice-e2e-ingest-")
install_cleanup(WORK, broker_first=True)


def records(bootstrap, topic):
    return [types.SimpleNamespace(key=r.key(), value=r.value(), partition=r.partition(),
                                  offset=r.offset(), headers=r.headers())
            for r in read_all(bootstrap, topic)]


def ingest(bootstrap, topic, *args, stdin=None, timeout=120):
    return subprocess.run([SLUICE, "ingest", "--bootstrap", bootstrap, "--topic", topic]
                          + list(args), input=stdin, capture_output=True,
                          timeout=timeout * MULT)


def summary_of(stdout):
    for line in stdout.decode().splitlines():
        if line.startswith("{"):
            return json.loads(line)
    return {}


def main():
    broker, bootstrap = start_broker(3, ["events:3", "big:1", "strict:1", "idle:1"],
                                     os.path.join(WORK, "bootstrap"))
    a = ingest_lines.make_inputs("a", 3000)
    b = ingest_lines.make_inputs("b", 2000)
    s = ingest_lines.make_inputs("s", 1000)
    pa, pb = os.path.join(WORK, "a.jsonl"), os.path.join(WORK, "b.jsonl")
    ingest_lines.write_file(pa, a)
    ingest_lines.write_file(pb, b)
    rejects = os.path.join(WORK, "rejects.tsv")
    stdin = b"".join(t.encode() + b"\n" for t, _ in s)
    r = ingest(bootstrap, "events", "--key-field", "customer", "--header", "origin=e2e",
               "--reject-file", rejects, pa, "-", pb, stdin=stdin)
    check("ingest of two files and stdin exits 0", r.returncode == 0, r.stderr[-1500:])
    inputs = [(pa, a), ("stdin", s), (pb, b)]
    problems = ingest_lines.judge(inputs, records(bootstrap, "events"),
                                  open(rejects).read(), header=("origin", b"e2e"))
    check("every valid line is a record once, byte-equal, keyed, with the header, in "
          "order per key; every broken line is in the reject file with its number",
          not problems, problems[:5])
    got = summary_of(r.stdout)
    fates = [f[0] for _, lines in inputs for _, f in lines]
    want = {"lines": len(fates), "written": fates.count("write"),
            "rejected": fates.count("reject"), "blank": fates.count("blank"),
            "refused": 0, "notWritten": 0, "stopped": False}
    check("the summary counts lines, written, rejected and blank (%s)" % want,
          all(got.get(k) == v for k, v in want.items()), got)

    big = os.path.join(WORK, "big.jsonl")
    with open(big, "w") as f:
        f.write('{"k":"x","n":1}\n{"k":"x","pad":"%s"}\n{"k":"x","n":3}\n' % ("y" * 5000))
    r = ingest(bootstrap, "big", "--key-field", "k", "--reject-file", rejects,
               "--kafka", "message.max.bytes=2000", big)
    written = [x.value for x in records(bootstrap, "big")]
    reject_lines = open(rejects).read().splitlines()
    check("a line larger than message.max.bytes is rejected with its number, the rest "
          "written", r.returncode == 0 and written == [b'{"k":"x","n":1}', b'{"k":"x","n":3}']
          and len(reject_lines) == 1 and reject_lines[0].startswith(big + "\t2\t"),
          (r.returncode, written, reject_lines, r.stderr[-800:]))

    r = ingest(bootstrap, "strict", pa)
    check("without --reject-file a broken line stops the ingest, exit 1, naming file:line",
          r.returncode == 1 and (pa + ":14: not JSON").encode() in r.stderr, r.stderr[-800:])

    p = start(["ingest", "--bootstrap", bootstrap, "--topic", "idle"], stdin=subprocess.PIPE,
              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for i in range(100):
        p.stdin.write(b'{"n":%d}\n' % i)
    p.stdin.flush()
    arrived = wait_for(lambda: len(read_all(bootstrap, "idle")) >= 100, 30)
    p.send_signal(signal.SIGTERM)
    sent = time.time()
    # Waited for with stdin still open: the stop, not an end of input, ends the reading.
    try:
        p.wait(timeout=30 * MULT)
    except subprocess.TimeoutExpired:
        p.kill()
    out, err = p.stdout.read(), p.stderr.read()
    took = time.time() - sent
    got = summary_of(out)
    check("SIGTERM on an idle stdin: exit 0 within 5 s, the 100 lines written, summary "
          "says stopped (%.1f s)" % took,
          arrived and p.returncode == 0 and took < 5 * MULT and got.get("written") == 100
          and got.get("stopped") is True and got.get("lastRead") == "stdin:100",
          (p.returncode, got, err[-500:]))

    r = ingest(bootstrap, "events", os.path.join(WORK, "absent.jsonl"))
    check("an input that cannot be read: exit 2 naming it",
          r.returncode == 2 and b"absent.jsonl" in r.stderr, r.stderr[-500:])
    stop_broker(broker)


run_test(main)
