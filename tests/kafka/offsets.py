"""Waiting for a group's committed offsets (the real-Kafka tier).

One consumer for the whole wait (not one per look), asked every half second; the
answers a coordinator gives while it cannot tell yet (COORDINATOR_LOAD_IN_PROGRESS,
NOT_COORDINATOR, a request timed out...) are asked again, any other error is raised.
The consumer only asks OffsetFetch for the group: it never joins it.

    ok, last = wait_committed(bootstrap, group, topic, [0, 1], {0: 10, 1: 10}, 60)
"""
import time

from kafka_support import MULT, Consumer, KafkaException, TopicPartition

# Errors after which the same question is asked again.
RETRIABLE = {"COORDINATOR_LOAD_IN_PROGRESS", "COORDINATOR_NOT_AVAILABLE", "NOT_COORDINATOR",
             "REQUEST_TIMED_OUT", "_TIMED_OUT", "_TRANSPORT", "_ALL_BROKERS_DOWN",
             "_WAIT_COORD", "NETWORK_EXCEPTION", "UNSTABLE_OFFSET_COMMIT"}


def _retriable(err):
    return err.retriable() or err.name() in RETRIABLE


class CommittedOffsets:
    """A long-lived consumer asking one group's committed offsets of one topic."""

    def __init__(self, bootstrap, group, topic, partitions):
        self.topic, self.partitions = topic, list(partitions)
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                                  "enable.auto.commit": False})
        self.last_error = None

    def ask(self, timeout=10):
        """{partition: offset (-1001 when none)}, or None after a retriable error (kept in
        last_error); raises KafkaException on any other."""
        try:
            got = self.consumer.committed(
                [TopicPartition(self.topic, p) for p in self.partitions], timeout=timeout)
        except KafkaException as e:
            if not _retriable(e.args[0]):
                raise
            self.last_error = e.args[0].name()
            return None
        for tp in got:
            if tp.error is not None:
                if not _retriable(tp.error):
                    raise KafkaException(tp.error)
                self.last_error = tp.error.name()
                return None
        return {tp.partition: tp.offset for tp in got}

    def close(self):
        self.consumer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def wait_committed(bootstrap, group, topic, partitions, want, timeout, interval=0.5):
    """Asks every `interval` s, for up to timeout (times MULT) s, until the committed
    offsets equal `want` (a dict) or `want(offsets)` is true: (True, offsets), or
    (False, the last offsets seen, or the last retriable error's name if none was)."""
    test = want if callable(want) else (lambda got: got == want)
    deadline = time.monotonic() + timeout * MULT
    last = None
    with CommittedOffsets(bootstrap, group, topic, partitions) as c:
        while True:
            got = c.ask(timeout=max(1.0, min(10.0, deadline - time.monotonic())))
            if got is not None:
                last = got
                if test(got):
                    return True, got
            if time.monotonic() >= deadline:
                return False, last if last is not None else c.last_error
            time.sleep(interval)


def committed_now(bootstrap, group, topic, partitions, timeout=60):
    """The committed offsets once, asked again after retriable errors for up to timeout
    (times MULT) s."""
    ok, got = wait_committed(bootstrap, group, topic, partitions, lambda _: True, timeout)
    if not ok:
        raise RuntimeError("the committed offsets of %s for %s could not be read: %s"
                           % (group, topic, got))
    return got
