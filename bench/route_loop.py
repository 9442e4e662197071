#!/usr/bin/python3
"""What a user writes instead of Sluice, with python3-confluent-kafka.

    /usr/bin/python3 bench/route_loop.py --bootstrap B --group G [--input bench-in]
        [--output bench-route-out] [--dlq bench-dlq] [--count 1000000]

One Consumer (group G, fetch.wait.max.ms 50) assigned every partition of the input
at its beginning (no group join), batch consume(); one Producer (idempotent,
linger.ms 5, as Sluice's sink). Every value is json.loads'ed and checked against
the schema of Sluice's bench pipeline (the order parse schema): order_id,
customer_id, product_id strings, quantity an int (32-bit, not a bool), price a
finite number, order_time an ISO-8601 timestamp string (datetime.fromisoformat),
priority a string; order_id, customer_id, quantity, price and priority required
(absent or null is missing). A valid record goes to --output as Sluice writes it:
the schema's fields, in its order, as compact JSON, with the record's key, headers
and timestamp. An invalid one goes to --dlq as it was read, with headers naming the
reason and the source. Offsets are committed to group G only for records whose
delivery was confirmed: per partition, up to the highest offset below which every
record is delivered, every second and at the end.

Exits once it has handled --count records, flushed, and committed, printing one
JSON line on stdout:
    {"contestant":"route_loop.py","records":N,"seconds":S,"rate":R,...}
records counts confirmed deliveries (output and DLQ); seconds run from the first
record read to the return of the last commit; read_seconds from the first record
read to the last; committed is how many records the final commits cover.
"""

import argparse
import collections
import functools
import json
import math
import sys
import time
from datetime import datetime

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException,
                             Producer, TopicPartition)

INT_MIN, INT_MAX = -2**31, 2**31 - 1
REQUIRED = ("order_id", "customer_id", "quantity", "price", "priority")


def is_string(v):
    return type(v) is str


def is_int(v):
    return type(v) is int and INT_MIN <= v <= INT_MAX  # type() is int: not a bool


def is_double(v):
    return type(v) is int or (type(v) is float and math.isfinite(v))


def is_timestamp(v):
    if type(v) is not str:
        return False
    try:
        datetime.fromisoformat(v)
        return True
    except ValueError:
        return False


SCHEMA = (("order_id", "string", is_string), ("customer_id", "string", is_string),
          ("product_id", "string", is_string), ("quantity", "int", is_int),
          ("price", "double", is_double), ("order_time", "timestamp", is_timestamp),
          ("priority", "string", is_string))


def validate(value):
    """(the output value, None), or (None, (error type, message))."""
    if not value:
        return None, ("empty_value", "the record has an empty or null value")
    try:
        doc = json.loads(value)
    except ValueError as e:
        return None, ("malformed_json", "the value is not valid JSON: %s" % e)
    if type(doc) is not dict:
        return None, ("not_an_object", "expected a JSON object")
    for name in REQUIRED:
        if doc.get(name) is None:
            return None, ("missing_field", "required field `%s` is missing" % name)
    out = {}
    for name, kind, ok in SCHEMA:
        v = doc.get(name)
        if v is None:
            continue
        if not ok(v):
            return None, ("wrong_type", "field `%s` should be %s, got %r"
                          % (name, kind, v))
        out[name] = v
    return out, None


class Partition:
    """Offsets read from one input partition, and which of them are delivered."""
    __slots__ = ("first", "read", "delivered", "next")

    def __init__(self):
        self.first = None  # the first offset read
        self.read = collections.deque()  # in read order
        self.delivered = set()
        self.next = None  # the offset to commit: every record below it is delivered

    def advance(self):
        """Moves `next` past the delivered prefix."""
        read, delivered = self.read, self.delivered
        while read and read[0] in delivered:
            off = read.popleft()
            delivered.discard(off)
            self.next = off + 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--input", default="bench-in")
    ap.add_argument("--output", default="bench-route-out")
    ap.add_argument("--dlq", default="bench-dlq")
    ap.add_argument("--count", type=int, default=1000000)
    args = ap.parse_args()

    state = {"delivered": 0, "failed": 0, "valid": 0, "dlq": 0, "last": 0.0}

    def on_delivery(part, offset, err, _msg):
        if err is not None:
            # Never delivered: the partition's commits stop below it.
            if state["failed"] == 0:
                print("route_loop.py: delivery failed: %s" % err, file=sys.stderr)
            state["failed"] += 1
        else:
            part.delivered.add(offset)
            state["delivered"] += 1
        state["last"] = time.monotonic()

    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "fetch.wait.max.ms": 50,
    })
    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "linger.ms": 5,
        "enable.idempotence": True,
        "queue.buffering.max.messages": 1000000,
    })
    # Learn the output topics' partitions now: else the first records wait ~1 s
    # for their metadata (the copy loops do the same).
    producer.list_topics(topic=args.output, timeout=10)
    producer.list_topics(topic=args.dlq, timeout=10)
    md = consumer.list_topics(topic=args.input, timeout=10)
    parts = md.topics[args.input].partitions
    if not parts:
        print("route_loop.py: topic %s has no partitions" % args.input, file=sys.stderr)
        return 1
    # Explicit offsets: no group join; commits still go to group G.
    consumer.assign([TopicPartition(args.input, p, OFFSET_BEGINNING) for p in parts])
    partitions = {p: Partition() for p in parts}
    committed = {}  # partition -> offset last committed

    def commit():
        for part in partitions.values():
            part.advance()
        offsets = [TopicPartition(args.input, p, part.next)
                   for p, part in partitions.items()
                   if part.next is not None and committed.get(p) != part.next]
        if not offsets:
            return
        # A refused commit is tried again at the next one.
        try:
            for tp in consumer.commit(offsets=offsets, asynchronous=False):
                if tp.error:
                    print("route_loop.py: commit %d: %s" % (tp.partition, tp.error),
                          file=sys.stderr)
                else:
                    committed[tp.partition] = tp.offset
        except KafkaException as e:
            print("route_loop.py: commit: %s" % e, file=sys.stderr)

    produce, poll = producer.produce, producer.poll
    out, dlq = args.output, args.dlq
    encode = json.JSONEncoder(separators=(",", ":")).encode
    handled = 0
    first = last_read = None
    next_commit = time.monotonic() + 1.0
    while handled < args.count:
        for m in consumer.consume(num_messages=1000, timeout=0.1):
            err = m.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    print("route_loop.py: consume: %s" % err, file=sys.stderr)
                continue
            if handled >= args.count:
                break
            if first is None:
                first = time.monotonic()
            part, offset = partitions[m.partition()], m.offset()
            if part.first is None:
                part.first = offset
            part.read.append(offset)
            record, error = validate(m.value())
            headers = m.headers() or []
            if error is None:
                topic, value = out, encode(record)
                state["valid"] += 1
            else:
                topic, value = dlq, m.value()
                headers = headers + [("error.type", error[0]),
                                     ("error.message", error[1]),
                                     ("source.topic", m.topic()),
                                     ("source.partition", str(m.partition())),
                                     ("source.offset", str(offset))]
                state["dlq"] += 1
            ts_type, ts = m.timestamp()
            while True:
                try:
                    produce(topic, value, m.key(), headers=headers,
                            timestamp=ts if ts_type else 0,
                            on_delivery=functools.partial(on_delivery, part, offset))
                    break
                except BufferError:
                    poll(0.01)
            handled += 1
            if handled == args.count:
                last_read = time.monotonic()
        poll(0)
        if time.monotonic() >= next_commit:
            commit()
            next_commit = time.monotonic() + 1.0
    if producer.flush(120) != 0:
        print("route_loop.py: flush timed out", file=sys.stderr)
        return 1
    commit()
    end = time.monotonic()
    covered = sum(off - partitions[p].first for p, off in committed.items())
    secs = end - first
    print(json.dumps({"contestant": "route_loop.py", "records": state["delivered"],
                      "seconds": round(secs, 3),
                      "rate": round(state["delivered"] / secs),
                      "read_seconds": round(last_read - first, 3),
                      "valid": state["valid"], "dlq": state["dlq"],
                      "committed": covered},
                     separators=(",", ":")), flush=True)
    consumer.close()
    return 1 if state["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
