"""Real Kafka: security end to end.

On Kafka 4.1.1 (listeners SASL_PLAINTEXT, SSL, SASL_SSL; certificates made by openssl
now, PEM, hostname verification on in every client) and on 3.9.1 for SCRAM (librdkafka
2.0.2's SCRAM final message is refused by 4.x, librdkafka#4895):

- a `sluice run` pipeline per way in (PLAIN with properties, PLAIN with the seed's Java JAAS
  line, SSL, SASL_SSL; SCRAM-SHA-256 and SCRAM-SHA-512, as properties and as JAAS) routes
  every record; an independent client (the venv's confluent-kafka) reads them back through
  the same listener: outputs and DLQ counts exact, the group committed the end offsets;
- a wrong password, an unknown user, a wrong SCRAM password, an untrusted CA, a hostname
  mismatch, a wrong password on the sink only (also with a continuous trigger), and a
  wrong password and an untrusted CA with dedup on (its changelog's own client): `sluice
  run` and `sluice plan` exit exactly 1 (not a signal: no crash), within runtime.brokerTimeout
  (10 s) and a margin of 6 s (times SLUICE_TEST_TIMEOUT_MULTIPLIER) from sluice's first log
  line, with a last line that names the cause;
- no password or JAAS line in any byte a run wrote: stdout, stderr, and every key, value and
  header of the outputs and the DLQ, in the successful and the failed runs.

SLUICE_SECURITY_ONLY=4 or =scram runs only the 4.1.1 or only the SCRAM half (said so first).

Usage: scripts/kafka.sh python tests/kafka/security_test.py PATH/TO/sluice
"""
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kafka_support import (Abort, check, Cluster, committed, create_topics, DLQ,  # noqa: E402
                           end_offsets, install_cleanup, is_valid_order, kafka_cluster,
                           MULT, outputs_named, pipeline_text, progress_lines, read_topic,
                           run_test, sluice, write)
from security_support import (Timed, client_conf, jaas, kafka_props, leaked,  # noqa: E402
                              make_certs, read_back, reader_conf, record_bytes)
from e2e_support import SLUICE, die_with_parent  # noqa: E402

WORK = tempfile.mkdtemp(prefix="sluice-kafka-security-")
install_cleanup(WORK)
COUNT = 2000
BROKER_TIMEOUT = 10  # seconds, runtime.brokerTimeout of every pipeline here
# A failed run ends at most this long after runtime.brokerTimeout, counted from its first
# log line: the last request's answer, draining what is in flight and leaving the group.
# A refused sink adds the drain of what is in flight (at most 5 s while a cluster is
# unreachable): those cases take 12.5-16 s; CTest runs two real-Kafka tests at once on
# 2 cores.
MARGIN = 8.0 * MULT
# The first log line (a client's first refusal) comes at once; later, the time from it
# would leave out too much of the run.
FIRST_LINE_WITHIN = 5.0 * MULT
USERS = {"alice": "alice-secret-9f3", "bob": "bob-secret-41c"}
RUNTIME = '"runtime": {"brokerTimeout": "%d seconds"},' % BROKER_TIMEOUT


def secrets():
    """What sluice is given and must never write. Not the keystore's key password
    (security_support.KEY_PASSWORD): that is the broker's, sluice never sees it, and
    finding it nowhere would prove nothing."""
    out = list(USERS.values()) + ["wrong-password-5e1", "stranger-secret-77d"]
    return out + [jaas(m, u, p) for m in ("plain", "scram") for u, p in USERS.items()]


class TimedFromFirstLine(Timed):
    """Timed, with `seconds` counted from sluice's first line on stderr (not from the
    fork: a loaded machine can take a while to start it) to its exit; `first_line` is
    when that line came after the fork (None: no line, and `seconds` from the fork)."""

    def __init__(self, args, cwd, timeout=180):
        started = time.monotonic()
        p = subprocess.Popen([SLUICE] + args, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, cwd=cwd, preexec_fn=die_with_parent)
        out, err, first = [], [], []

        def read(stream, into, stamp):
            for line in iter(stream.readline, b""):
                if stamp and not first:
                    first.append(time.monotonic())
                into.append(line)

        readers = [threading.Thread(target=read, args=(p.stdout, out, False), daemon=True),
                   threading.Thread(target=read, args=(p.stderr, err, True), daemon=True)]
        for t in readers:
            t.start()
        try:
            p.wait(timeout=timeout * MULT)
            self.returncode = p.returncode
        except subprocess.TimeoutExpired:  # a hang: killed, reported with what it wrote
            p.kill()
            p.wait()
            self.returncode = "hung, killed after %.0f s" % (timeout * MULT)
        ended = time.monotonic()
        for t in readers:
            t.join(timeout=10)
        self.stdout, self.stderr = b"".join(out), b"".join(err)
        self.first_line = first[0] - started if first else None
        self.seconds = ended - (first[0] if first else started)
        self.text = self.stderr.decode("utf-8", "replace")


def produce_source(c):
    create_topics(c.admin(), {"orders": 4})
    r = sluice(["produce", "--bootstrap", c.admin_bootstrap(), "--topic", "orders", "--count",
                str(COUNT), "--malformed-fraction", "0.05", "--seed", "5"])
    if not check("sluice produce writes %d events (admin listener)" % COUNT,
                 r.returncode == 0, r.stderr[-1000:]):
        raise Abort()
    source = read_topic(c.admin_bootstrap(), "orders")
    valid = sum(1 for s in source if is_valid_order(s.value, typed=False))
    return valid, len(source) - valid


def pipeline(name, source_bootstrap, source_conf, sink_bootstrap=None, sink_conf=None,
             trigger='"trigger": {"availableNow": true}', extra=""):
    outputs, dlq = outputs_named("-" + name), DLQ + "-" + name
    text = pipeline_text(name, source_bootstrap, "sec-" + name, trigger=trigger,
                         source_extra=kafka_props(source_conf),
                         sink_extra=kafka_props(sink_conf or source_conf),
                         extra=RUNTIME + extra, schema=False, outputs=outputs, dlq=dlq)
    if sink_bootstrap and sink_bootstrap != source_bootstrap:
        text = text.replace('"kafka.bootstrap.servers": "%s", "kafka.acks"' % source_bootstrap,
                            '"kafka.bootstrap.servers": "%s", "kafka.acks"' % sink_bootstrap)
    return write(os.path.join(WORK, name + ".json"), text), outputs, dlq


def works(c, name, bootstrap, conf, expected):
    """A pipeline through a secured listener routes every record; read back through it."""
    valid, invalid = expected
    path, outputs, dlq = pipeline(name, bootstrap, conf)
    create_topics(c.admin(), dict({t: 2 for t in outputs.values()}, **{dlq: 1}))
    r = Timed(["run", path], cwd=WORK)
    if not check("%s: sluice run exits 0 (%.1f s)" % (name, r.seconds), r.returncode == 0,
                 r.text[-2000:]):
        return
    progress = progress_lines(r.stdout.decode())
    out_rows = sum(p["sink"]["numOutputRows"] for p in progress)
    dlq_rows = sum(p["numDlqRows"] for p in progress)
    got = read_back(bootstrap, list(outputs.values()) + [dlq], reader_conf(conf))
    n_out = sum(len(got[t]) for t in outputs.values())
    check("%s: the independent client reads back %d outputs and %d DLQ records through "
          "the listener (exactly the valid and invalid source records)"
          % (name, n_out, len(got[dlq])),
          n_out == valid and len(got[dlq]) == invalid and out_rows == valid
          and dlq_rows == invalid, (n_out, len(got[dlq]), out_rows, dlq_rows, expected))
    ends = end_offsets(c.admin_bootstrap(), "orders")
    offs = committed(c.admin_bootstrap(), "sec-" + name, "orders", list(ends))
    check("%s: the group committed the end offsets" % name, offs == ends, (offs, ends))
    found = leaked(secrets(), r.stdout, r.stderr, *[record_bytes(v) for v in got.values()])
    check("%s: no secret in stdout, stderr, outputs or DLQ (%d bytes of logs, %d records)"
          % (name, len(r.stdout) + len(r.stderr), sum(len(v) for v in got.values())),
          not found, found)


def fails(c, name, source_bootstrap, conf, cause, sink_bootstrap=None, sink_conf=None,
          trigger='"trigger": {"availableNow": true}', plan=True, extra=""):
    """`sluice run` (and `sluice plan`) exit 1 in time, naming `cause` (a list of texts
    that must all be in the last error line), writing no secret anywhere."""
    path, outputs, dlq = pipeline(name, source_bootstrap, conf, sink_bootstrap, sink_conf,
                                  trigger, extra)
    for command in (["run"], ["plan"]) if plan else (["run"],):
        what = "%s: sluice %s" % (name, command[0])
        r = TimedFromFirstLine(command + [path], cwd=WORK)
        line = r.error_line()
        first = r.first_line if r.first_line is not None else 0.0
        check("%s exits 1 (got %s) within runtime.brokerTimeout %d s + %.0f s of its first "
              "log line (%.1f s; that line %.1f s after the start)"
              % (what, r.returncode, BROKER_TIMEOUT, MARGIN, r.seconds, first),
              r.returncode == 1 and r.seconds <= BROKER_TIMEOUT + MARGIN
              and first <= FIRST_LINE_WITHIN, r.text[-1500:])
        check("%s: the error names the cause %s" % (what, cause),
              all(t in line for t in cause), line)
        written = read_back(c.admin_bootstrap(), list(outputs.values()) + [dlq], None)
        found = leaked(secrets(), r.stdout, r.stderr,
                       *[record_bytes(v) for v in written.values()])
        check("%s: no secret in stdout, stderr, outputs or DLQ" % what, not found, found)


def main_4x(certs):
    ssl = {"keystore": certs["keystore"], "truststore": certs["ca"],
           "key_password": certs["key_password"]}
    with Cluster(os.path.join(WORK, "kafka-4"), nodes=1,
                 protocols=("SASL_PLAINTEXT", "SSL", "SASL_SSL"), users=USERS,
                 ssl=ssl) as c:
        expected = produce_source(c)
        sasl, tls, sasl_tls = (c.bootstrap(p) for p in ("SASL_PLAINTEXT", "SSL", "SASL_SSL"))
        alice = USERS["alice"]
        works(c, "plain", sasl, client_conf("SASL_PLAINTEXT", mechanism="PLAIN",
                                            user="alice", password=alice), expected)
        works(c, "plain-jaas", sasl,
              client_conf("SASL_PLAINTEXT", jaas_line=jaas("plain", "alice", alice)),
              expected)
        works(c, "ssl", tls, client_conf("SSL", ca=certs["ca"]), expected)
        works(c, "sasl-ssl", sasl_tls,
              client_conf("SASL_SSL", ca=certs["ca"], mechanism="PLAIN", user="bob",
                          password=USERS["bob"]), expected)
        works(c, "sasl-ssl-jaas", sasl_tls,
              client_conf("SASL_SSL", ca=certs["ca"],
                          jaas_line=jaas("plain", "bob", USERS["bob"])), expected)

        auth_failed = ["SASL authentication error", "Invalid username or password"]
        fails(c, "wrong-password", sasl,
              client_conf("SASL_PLAINTEXT", jaas_line=jaas("plain", "alice",
                                                           "wrong-password-5e1")),
              auth_failed)
        fails(c, "unknown-user", sasl,
              client_conf("SASL_PLAINTEXT", mechanism="PLAIN", user="stranger",
                          password="stranger-secret-77d"), auth_failed)
        fails(c, "untrusted-ca", tls, client_conf("SSL", ca=certs["other_ca"]),
              ["untrusted certificate", "not signed by a CA in ssl.ca.location"])
        fails(c, "hostname-mismatch", tls.replace("localhost", "127.0.0.1"),
              client_conf("SSL", ca=certs["ca"]),
              ["hostname mismatch", "does not name 127.0.0.1"])
        fails(c, "sasl-ssl-wrong-password", sasl_tls,
              client_conf("SASL_SSL", ca=certs["ca"], mechanism="PLAIN", user="bob",
                          password="wrong-password-5e1"), auth_failed)
        # The source is fine, the sink refuses: the run reads, cannot write, and fails.
        good = client_conf("SASL_PLAINTEXT", mechanism="PLAIN", user="alice", password=alice)
        bad = client_conf("SASL_PLAINTEXT", mechanism="PLAIN", user="alice",
                          password="wrong-password-5e1")
        fails(c, "sink-wrong-password", sasl, good, ["sink"] + auth_failed, sink_conf=bad,
              plan=False)
        # The sink's credentials are right: only the source's are wrong (with both wrong,
        # which one a continuous run meets first is a race: CI met the sink's once).
        fails(c, "continuous-wrong-password", sasl, bad, ["source"] + auth_failed,
              sink_conf=good, trigger='"trigger": {"processingTime": "1 second"}',
              plan=False)
        fails(c, "continuous-sink-wrong-password", sasl, good, ["sink"] + auth_failed,
              sink_conf=bad, trigger='"trigger": {"processingTime": "1 second"}',
              plan=False)
        # With dedup, the changelog's own client (metadata, CreateTopics, DescribeConfigs)
        # is the first to meet the refusal: it names the cause too ("Local: Timed out"
        # alone before).
        def dedup(name):
            return ('"dedup": {"key": ["order_id"], "within": "1 hour", "stateDir": "%s"},'
                    % os.path.join(WORK, "state-" + name))
        fails(c, "dedup-wrong-password", sasl, bad, ["dedup changelog"] + auth_failed,
              plan=False, extra=dedup("dedup-wrong-password"))
        fails(c, "dedup-untrusted-ca", tls, client_conf("SSL", ca=certs["other_ca"]),
              ["dedup changelog", "untrusted certificate",
               "not signed by a CA in ssl.ca.location"],
              plan=False, extra=dedup("dedup-untrusted-ca"))


def main_scram():
    with Cluster(os.path.join(WORK, "kafka-3"), nodes=1,
                 version=kafka_cluster.SCRAM_VERSION, protocols=("SASL_PLAINTEXT",),
                 users=USERS) as c:
        expected = produce_source(c)
        sasl = c.bootstrap("SASL_PLAINTEXT")
        alice = USERS["alice"]
        works(c, "scram-256", sasl, client_conf("SASL_PLAINTEXT", mechanism="SCRAM-SHA-256",
                                                user="alice", password=alice), expected)
        works(c, "scram-512", sasl, client_conf("SASL_PLAINTEXT", mechanism="SCRAM-SHA-512",
                                                user="alice", password=alice), expected)
        # ScramLoginModule alone means SCRAM-SHA-512; with kafka.sasl.mechanism, that one.
        works(c, "scram-512-jaas", sasl,
              client_conf("SASL_PLAINTEXT", jaas_line=jaas("scram", "alice", alice)), expected)
        works(c, "scram-256-jaas", sasl,
              client_conf("SASL_PLAINTEXT", mechanism="SCRAM-SHA-256",
                          jaas_line=jaas("scram", "bob", USERS["bob"])), expected)
        fails(c, "scram-wrong-password", sasl,
              client_conf("SASL_PLAINTEXT", mechanism="SCRAM-SHA-256", user="alice",
                          password="wrong-password-5e1"),
              ["SASL authentication error", "SCRAM"])


def main():
    certs = make_certs(os.path.join(WORK, "certs"))
    only = os.environ.get("SLUICE_SECURITY_ONLY", "")
    if only:
        print("SLUICE_SECURITY_ONLY=%s: only the %s cases run, not the whole test"
              % (only, {"4": "Kafka 4.1.1", "scram": "SCRAM (3.9.1)"}.get(
                  only, "(none: unknown value)")), flush=True)
    if only in ("", "4"):
        main_4x(certs)
    if only in ("", "scram"):
        main_scram()


run_test(main)
