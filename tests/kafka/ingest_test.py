"""Real Kafka: `sluice ingest` (files or stdin -> Kafka) on a real broker.

1. Two files and stdin between them (3,000 + 2,000 + 1,000 lines; every 97th broken,
   every 50th blank, some CRLF) into a topic of 4 partitions: read back with
   confluent-kafka, every valid line is a record once, byte-equal, keyed by its customer
   field (on the partition Java's partitioner picks for that key, as a Java consumer of
   the topic expects), with the --header, each key's records in input order; each broken
   line is in the reject file with its number; the summary counts match.
2. A record the broker refuses (larger than the topic's max.message.bytes): in the reject
   file with the broker's reason and its line number; the lines around it are written.
3. The broker killed mid-ingest (stdin still open): the ingest fails with exit 1 within the
   delivery timeout, saying how many records were not written and naming a line.

Usage: scripts/kafka.sh python tests/kafka/ingest_test.py PATH/TO/sluice
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kafka_support import (MULT, SLUICE, check, Cluster, create_topics,  # noqa: E402
                           install_cleanup, read_topic, run_test, start, wait_for)
import ingest_lines  # noqa: E402  (tests/e2e, on the path through kafka_support)

WORK = tempfile.mkdtemp(prefix="sluice-kafka-ingest-")
install_cleanup(WORK)


def ingest(bootstrap, topic, *args, stdin=None):
    return subprocess.run([SLUICE, "ingest", "--bootstrap", bootstrap, "--topic", topic]
                          + list(args), input=stdin, capture_output=True, timeout=120 * MULT)


def murmur2(data):
    """Kafka's (Java's) murmur2 of a key, as its default partitioner uses it."""
    length, seed, m, r = len(data), 0x9747b28c, 0x5bd1e995, 24
    h = (seed ^ length) & 0xffffffff
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & 0xffffffff
        k ^= k >> r
        k = (k * m) & 0xffffffff
        h = ((h * m) & 0xffffffff) ^ k
    rest = length % 4
    tail = data[length - rest:]
    if rest == 3:
        h ^= tail[2] << 16
    if rest >= 2:
        h ^= tail[1] << 8
    if rest >= 1:
        h ^= tail[0]
        h = (h * m) & 0xffffffff
    h ^= h >> 13
    h = (h * m) & 0xffffffff
    h ^= h >> 15
    return h


def files_and_stdin(c):
    bootstrap = c.bootstrap()
    a, b, s = (ingest_lines.make_inputs(n, k) for n, k in (("a", 3000), ("b", 2000),
                                                             ("s", 1000)))
    pa, pb = os.path.join(WORK, "a.jsonl"), os.path.join(WORK, "b.jsonl")
    ingest_lines.write_file(pa, a)
    ingest_lines.write_file(pb, b)
    rejects = os.path.join(WORK, "rejects.tsv")
    r = ingest(bootstrap, "events", "--key-field", "customer", "--header", "origin=kafka",
               "--reject-file", rejects, pa, "-", pb,
               stdin=b"".join(t.encode() + b"\n" for t, _ in s))
    check("ingest of two files and stdin exits 0", r.returncode == 0, r.stderr[-1500:])
    written = read_topic(bootstrap, "events")
    problems = ingest_lines.judge([(pa, a), ("stdin", s), (pb, b)], written,
                                  open(rejects).read(), header=("origin", b"kafka"))
    check("every valid line is a record once, byte-equal, keyed, with the header, in order "
          "per key; every broken line is in the reject file with its number",
          not problems, problems[:5])
    misplaced = [w.key for w in written
                 if (murmur2(w.key) & 0x7fffffff) % 4 != w.partition]
    check("each key is on the partition Java's partitioner gives it", not misplaced,
          misplaced[:5])
    summary = json.loads(r.stdout.decode().splitlines()[0])
    check("the summary says %d written" % len(written), summary["written"] == len(written)
          and summary["notWritten"] == 0, summary)


def refused_by_the_broker(c):
    bootstrap = c.bootstrap()
    path, rejects = os.path.join(WORK, "large.jsonl"), os.path.join(WORK, "large.tsv")
    with open(path, "w") as f:
        # Random hex: lz4 (the default) cannot shrink it below the topic's limit.
        f.write('{"k":"x","n":1}\n{"k":"x","pad":"%s"}\n{"k":"x","n":3}\n'
                % os.urandom(2500).hex())
    # Batches below the topic's limit: librdkafka (unlike Java's producer) does not split a
    # batch the broker refuses as too large, so every record in it would be refused.
    r = ingest(bootstrap, "small", "--key-field", "k", "--reject-file", rejects,
               "--kafka", "batch.size=900", path)
    got = [x.value for x in read_topic(bootstrap, "small")]
    lines = open(rejects).read().splitlines()
    check("a record the broker refuses (max.message.bytes 1000) is in the reject file with "
          "the broker's reason and line 2; lines 1 and 3 are written",
          r.returncode == 0 and got == [b'{"k":"x","n":1}', b'{"k":"x","n":3}']
          and len(lines) == 1 and lines[0].startswith(path + "\t2\tnot written: ")
          and "too large" in lines[0].lower(), (r.returncode, got, lines, r.stderr[-800:]))


def broker_killed(c):
    bootstrap = c.bootstrap()
    p = start(["ingest", "--bootstrap", bootstrap, "--topic", "late",
               "--kafka", "message.timeout.ms=5000"], stdin=subprocess.PIPE,
              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for i in range(100):
        p.stdin.write(b'{"n":%d}\n' % i)
    p.stdin.flush()
    arrived = wait_for(lambda: len(read_topic(bootstrap, "late")) >= 100, 30)
    c.kill_node(1)
    for i in range(100, 200):
        p.stdin.write(b'{"n":%d}\n' % i)
    p.stdin.flush()
    killed = time.time()
    try:
        out, err = p.communicate(timeout=60 * MULT)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGKILL)
        out, err = p.communicate()
    took = time.time() - killed
    summary = json.loads(out.decode().splitlines()[0]) if out.strip() else {}
    check("the broker killed mid-ingest: exit 1 after the delivery timeout, the 100 lines "
          "after the kill not written and named (%.1f s)" % took,
          arrived and p.returncode == 1 and b"100 record(s) were not written, e.g. stdin:101"
          in err and summary.get("written") == 100 and took < 40 * MULT,
          (p.returncode, summary, err[-600:]))


def main():
    with Cluster(os.path.join(WORK, "cluster"), nodes=1) as c:
        create_topics(c.admin(), {"events": 4, "late": 1})
        create_topics(c.admin(), {"small": 1}, config={"max.message.bytes": "1000"})
        files_and_stdin(c)
        refused_by_the_broker(c)
        broker_killed(c)


run_test(main)
