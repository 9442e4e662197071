#!/usr/bin/python3
"""The copy loop of bench/copy_loop.cpp with python3-confluent-kafka.

    /usr/bin/python3 bench/copy_loop.py --bootstrap B --group G [--input bench-in]
        [--output bench-py-out] [--count 1000000]

One Consumer (group G, fetch.wait.max.ms 50) assigned every partition of the input
at its beginning (no group join), batch consume(); one Producer (idempotent,
linger.ms 5); key, value and headers copied, nothing parsed, no offsets committed.
Exits once it has copied --count records and flushed, printing one JSON line on
stdout:
    {"contestant":"copy_loop.py","records":N,"seconds":S,"rate":R}
seconds run from the first record read to the last delivery report;
read_seconds from the first record read to the last.
"""

import argparse
import json
import sys
import time

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, Producer,
                             TopicPartition)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--input", default="bench-in")
    ap.add_argument("--output", default="bench-py-out")
    ap.add_argument("--count", type=int, default=1000000)
    args = ap.parse_args()

    state = {"delivered": 0, "failed": 0, "last": 0.0}

    def on_delivery(err, _msg):
        if err is not None:
            if state["failed"] == 0:
                print("copy_loop.py: delivery failed: %s" % err, file=sys.stderr)
            state["failed"] += 1
        else:
            state["delivered"] += 1
        state["last"] = time.monotonic()

    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
        "fetch.wait.max.ms": 50,
    })
    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "linger.ms": 5,
        "enable.idempotence": True,
        "queue.buffering.max.messages": 1000000,
        "on_delivery": on_delivery,
    })
    # Learn the output topic's partitions now, as the C++ loop does by creating its
    # topic handle up front: else the first records wait ~1 s for its metadata.
    producer.list_topics(topic=args.output, timeout=10)
    # Explicit offsets: no group join and no committed-offset lookup.
    md = consumer.list_topics(topic=args.input, timeout=10)
    parts = md.topics[args.input].partitions
    if not parts:
        print("copy_loop.py: topic %s has no partitions" % args.input, file=sys.stderr)
        return 1
    consumer.assign([TopicPartition(args.input, p, OFFSET_BEGINNING) for p in parts])

    out = args.output
    produce = producer.produce
    copied = 0
    first = last_read = None
    while copied < args.count:
        msgs = consumer.consume(num_messages=1000, timeout=0.1)
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    print("copy_loop.py: consume: %s" % err, file=sys.stderr)
                continue
            if copied >= args.count:
                break
            if first is None:
                first = time.monotonic()
            key, value, headers = m.key(), m.value(), m.headers()
            while True:
                try:
                    if headers:
                        produce(out, value, key, headers=headers)
                    else:
                        produce(out, value, key)
                    break
                except BufferError:
                    producer.poll(0.01)
            copied += 1
            if copied == args.count:
                last_read = time.monotonic()
        producer.poll(0)
    if producer.flush(120) != 0:
        print("copy_loop.py: flush timed out", file=sys.stderr)
        return 1
    secs = state["last"] - first
    print(json.dumps({"contestant": "copy_loop.py", "records": state["delivered"],
                      "seconds": round(secs, 3),
                      "rate": round(state["delivered"] / secs),
                      "read_seconds": round(last_read - first, 3)},
                     separators=(",", ":")), flush=True)
    consumer.close()
    return 1 if state["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
