"""Helpers for the real-Kafka tier (tests/kafka/*_test.py).

Each test runs under `scripts/kafka.sh python` (a virtual environment with a current
confluent-kafka, whose own librdkafka is not the 2.0.2 that sluice links: an independent
client) and starts its own cluster from scripts/kafka/cluster.py. The check/finish/wait
helpers and the process bookkeeping are the end-to-end tier's (tests/e2e/e2e_support.py).
"""
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts", "kafka"))

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import (AdminClient, ConfigResource, NewPartitions,  # noqa: E402
                                   NewTopic)

import cluster as kafka_cluster  # noqa: E402,F401
from cluster import Cluster  # noqa: E402,F401
from e2e_support import (MULT, SLUICE, Abort, check, die_with_parent,  # noqa: E402,F401
                         finish, install_cleanup, is_valid_order, procs, reap, run_test,
                         start, start_run, wait_for)

ORDER_SCHEMA = """{"order_id": "string", "customer_id": "string", "product_id": "string",
                   "quantity": "int", "price": "double", "order_time": "timestamp",
                   "priority": "string"}"""
OUTPUTS = {"high": "orders-high", "medium": "orders-medium", "low": "orders-low"}
DLQ = "orders-dlq"


def create_topics(admin, topics, replication=1, config=None):
    """topics: {name: partitions}. Waits until each exists (or already existed)."""
    new = [NewTopic(t, num_partitions=n, replication_factor=replication, config=config or {})
           for t, n in topics.items()]
    for t, f in admin.create_topics(new, operation_timeout=30).items():
        try:
            f.result()
        except KafkaException as e:
            if e.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise


def pipeline_text(name, bootstrap, group, trigger='"trigger": {"availableNow": true}',
                  source_extra="", sink_extra="", extra="", schema=True, outputs=None,
                  dlq=DLQ):
    """The demo's pipeline: orders parsed as JSON, routed by priority, malformed to the DLQ.
    source_extra / sink_extra are JSON members (each with a trailing comma) added to the
    source and sink sections; extra, top-level members (each with a trailing comma).
    Without schema, values are checked (object, required fields) but written unchanged."""
    return """{
  "name": "%s",
  "source": {%s "kafka.bootstrap.servers": "%s", "subscribe": "orders",
             "startingOffsets": "earliest", "includeHeaders": true,
             "kafka.group.id": "%s"},
  "parse": {"format": "json", %s
            "required": ["order_id", "customer_id", "quantity", "price", "priority"]},
  "route": {"field": "priority", "topics": %s},
  "sink": {%s "kafka.bootstrap.servers": "%s", "kafka.acks": "all"},
  "dlq": {"topic": "%s"},
  %s
  %s
}""" % (name, source_extra, bootstrap, group,
        '"schema": %s,' % ORDER_SCHEMA if schema else "", json.dumps(outputs or OUTPUTS),
        sink_extra, bootstrap, dlq, extra, trigger)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def outputs_named(suffix):
    """The priority outputs with a suffix on each topic name: {priority: topic}."""
    return {k: v + suffix for k, v in OUTPUTS.items()}


class Rec:
    """A record read back: plain values, comparable and hashable."""
    __slots__ = ("topic", "partition", "offset", "key", "value", "headers", "timestamp")

    def __init__(self, m):
        self.topic, self.partition, self.offset = m.topic(), m.partition(), m.offset()
        self.key, self.value = m.key(), m.value()
        self.headers = tuple(m.headers() or ())
        self.timestamp = m.timestamp()[1]

    def header(self, name):
        for k, v in self.headers:
            if k == name:
                return v
        return None


def watermarks(consumer, topic, partition, timeout=60):
    """(log start, end) of a partition; asked again while the cluster answers that it
    cannot tell yet (a leader just elected: OFFSET_NOT_AVAILABLE, NOT_LEADER...)."""
    deadline = time.time() + timeout * MULT
    while True:
        try:
            return consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        except KafkaException as e:
            err = e.args[0]
            passing = err.retriable() or err.name() in (
                "OFFSET_NOT_AVAILABLE", "NOT_LEADER_FOR_PARTITION", "LEADER_NOT_AVAILABLE",
                "_TIMED_OUT", "_TRANSPORT", "_ALL_BROKERS_DOWN")
            if not passing or time.time() > deadline:
                raise
            time.sleep(0.2)


def read_topic(bootstrap, topic, conf=None, isolation="read_committed", timeout=60):
    """Every record of topic up to its end (as of now), with an independent client."""
    c = Consumer(dict({"bootstrap.servers": bootstrap, "group.id": "kafka-tier-reader",
                       "enable.auto.commit": False, "isolation.level": isolation,
                       "enable.partition.eof": False}, **(conf or {})))
    try:
        md = c.list_topics(topic, timeout=10)
        if topic not in md.topics or md.topics[topic].error is not None:
            return []
        ends, assign = {}, []
        for p in sorted(md.topics[topic].partitions):
            lo, hi = watermarks(c, topic, p)
            if hi > lo:
                ends[p] = hi
                assign.append(TopicPartition(topic, p, lo))
        out = []
        if not assign:
            return out
        c.assign(assign)
        # Under read_committed the last offsets may be transaction markers: stop at the
        # end watermark's position, which the consumer reports past them.
        deadline = time.time() + timeout * MULT
        while ends and time.time() < deadline:
            for m in c.consume(1000, 0.5):
                if m.error():
                    continue
                out.append(Rec(m))
            for tp in c.position([TopicPartition(topic, p) for p in list(ends)]):
                if tp.offset >= ends[tp.partition]:
                    ends.pop(tp.partition)
        if ends:
            raise RuntimeError("timed out reading %s: partitions %s" % (topic, sorted(ends)))
        return out
    finally:
        c.close()


def committed(bootstrap, group, topic, partitions, timeout=60):
    """The group's committed offsets for topic: {partition: offset (-1001 when none)};
    asked again while the coordinator cannot answer yet (it just moved or restarted)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "enable.auto.commit": False})
    deadline = time.time() + timeout * MULT
    try:
        while True:
            try:
                got = c.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
                return {tp.partition: tp.offset for tp in got}
            except KafkaException as e:
                err = e.args[0]
                if not (err.retriable() or err.name() in (
                        "COORDINATOR_LOAD_IN_PROGRESS", "COORDINATOR_NOT_AVAILABLE",
                        "NOT_COORDINATOR", "_TIMED_OUT", "_TRANSPORT")) \
                        or time.time() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        c.close()


def end_offsets(bootstrap, topic):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "kafka-tier-ends"})
    try:
        md = c.list_topics(topic, timeout=10)
        return {p: watermarks(c, topic, p)[1] for p in sorted(md.topics[topic].partitions)}
    finally:
        c.close()


def sluice(args, timeout=300, **kw):
    """Runs `sluice ARGS...` to its end: CompletedProcess with text output."""
    import subprocess
    kw.setdefault("preexec_fn", die_with_parent)
    return subprocess.run([SLUICE] + args, capture_output=True, text=True,
                          timeout=timeout * MULT, **kw)


def progress_lines(stdout):
    out = []
    for line in stdout.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out
