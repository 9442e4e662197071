#!/usr/bin/python3
"""Prints every record of a topic as JSON lines, read with confluent-kafka.

    read_topic.py BOOTSTRAP TOPIC TIMEOUT_SECONDS

Run as its own process by e2e_support.read_all: librdkafka 2.0.2 sometimes
aborts a process when a client is destroyed
(rd_kafka_broker_destroy_final: Assertion `thrd_is_current(rkb->rkb_thread)'),
and a reader that dies that way can be run again; the test cannot.
Keys, values and header values are base64 (bytes, unchanged).
"""
import base64
import json
import sys
import time

from confluent_kafka import Consumer, TopicPartition


def b64(b):
    return None if b is None else base64.b64encode(b).decode()


def main():
    bootstrap, topic, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "e2e-reader",
                  "enable.auto.commit": False})
    md = c.list_topics(topic, timeout=10)
    ends, assign = {}, []
    for p in sorted(md.topics[topic].partitions.keys()):
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if hi > lo:
            ends[p] = hi
            assign.append(TopicPartition(topic, p, lo))
    c.assign(assign)
    deadline = time.time() + timeout
    while ends and time.time() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        print(json.dumps({"topic": m.topic(), "partition": m.partition(), "offset": m.offset(),
                          "key": b64(m.key()), "value": b64(m.value()),
                          "headers": [[k, b64(v)] for k, v in (m.headers() or [])]}))
        if m.offset() + 1 >= ends.get(m.partition(), 0):
            ends.pop(m.partition(), None)
    c.close()
    if ends:
        sys.exit("timed out reading " + topic)


if __name__ == "__main__":
    main()
