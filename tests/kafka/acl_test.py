"""Real Kafka: ACLs (KRaft's StandardAuthorizer) against `sluice run`.

Kafka 4.1.1, one SASL_PLAINTEXT listener, users alice and bob. alice may do everything
(ALLOW ALL on every topic, group, the cluster); each case adds one DENY for her (a DENY
wins over the ALLOWs) and removes it afterwards:
  Read on the source topic, Write on an output topic, Write on the DLQ topic, Read on the
  group, DescribeConfigs on an existing dedup changelog (its cleanup.policy cannot be
  checked: the run must not trust it).
Each run must exit exactly 1 within a bound (no hang; a denied write within FAST: the ACLs
end the run at once, without the partition chain's restarts) with an error naming what was
denied and the operation, and the group's committed offsets must never pass what was written:
every source record below a committed offset is in the outputs or the DLQ. A run with no
DENY (the control) routes everything. ACLs are made through cluster.admin() (the internal
listener's ANONYMOUS, a super user) with AdminClient and AclBinding.

Usage: scripts/kafka.sh python tests/kafka/acl_test.py PATH/TO/sluice
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from confluent_kafka.admin import (AclBinding, AclBindingFilter,  # noqa: E402
                                   AclOperation, AclPermissionType, ResourcePatternType,
                                   ResourceType)

from kafka_support import (Abort, check, Cluster, committed, create_topics, DLQ,  # noqa: E402
                           end_offsets, install_cleanup, is_valid_order, MULT,
                           outputs_named, pipeline_text, read_topic, run_test, sluice,
                           wait_for, write)
from security_support import (Timed, client_conf, jaas, kafka_props, leaked,  # noqa: E402
                              record_bytes)

WORK = tempfile.mkdtemp(prefix="sluice-kafka-acl-")
install_cleanup(WORK)
COUNT = 2000
USERS = {"alice": "alice-acl-secret-2b7", "bob": "bob-acl-secret-c08"}
BROKER_TIMEOUT = 10
# An authorization error is an answer, not an unreachable cluster: no run may take longer.
BOUND = 30 * MULT
# A denied write ends the run at once; through the chain's restarts it took 7-8 s.
FAST = 4 * MULT
ALICE = "User:alice"


def binding(restype, name, operation, permission, principal=ALICE):
    return AclBinding(restype, name, ResourcePatternType.LITERAL, principal, "*", operation,
                      permission)


def apply_acls(admin, create=(), delete=()):
    """Creates and deletes ACLs, and waits until the broker's authorizer shows them."""
    for f in admin.create_acls(list(create)).values() if create else []:
        f.result()
    filters = [AclBindingFilter(b.restype, b.name, b.resource_pattern_type, b.principal,
                                b.host, b.operation, b.permission_type) for b in delete]
    for f in admin.delete_acls(filters).values() if filters else []:
        f.result()

    def shown():
        everything = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None,
                                      None, AclOperation.ANY, AclPermissionType.ANY)
        now = set(str(b) for b in admin.describe_acls(everything).result())
        return (all(str(b) in now for b in create)
                and not any(str(b) in now for b in delete))
    if not wait_for(shown, 30):
        raise RuntimeError("ACLs not applied within 30 s")


def check_committed_within_written(c, name, group, outputs, dlq):
    """Every source record below the group's committed offset of its partition is in an
    output or the DLQ (by correlation id and source position)."""
    boot = c.admin_bootstrap()
    ends = end_offsets(boot, "orders")
    offs = committed(boot, group, "orders", list(ends))
    source = read_topic(boot, "orders")
    written = set()
    for t in outputs.values():
        written |= {r.header("correlation-id") for r in read_topic(boot, t)}
    dlq_pos = {(int(r.header("sluice.source.partition")), int(r.header("sluice.source.offset")))
               for r in read_topic(boot, dlq)}
    missing = []
    for s in source:
        if s.offset >= max(offs.get(s.partition, -1), 0):
            continue
        ok = (s.header("correlation-id") in written if is_valid_order(s.value, typed=False)
              else (s.partition, s.offset) in dlq_pos)
        if not ok:
            missing.append((s.partition, s.offset))
    check("%s: committed offsets %s never pass what was written (%d missing below them)"
          % (name, {p: o for p, o in offs.items()}, len(missing)), not missing, missing[:5])
    return offs


def case(c, name, deny, expect, alice_conf, bound=BOUND, extra=""):
    """One run with `deny` (AclBindings) in force: exit 1 within `bound`, error naming
    `expect` (texts), committed offsets within what was written. `extra`: top-level
    members of the pipeline (each with a trailing comma)."""
    admin = c.admin()
    outputs, dlq = outputs_named("-" + name), DLQ + "-" + name
    create_topics(admin, dict({t: 2 for t in outputs.values()}, **{dlq: 1}))
    group = "acl-" + name
    path = write(os.path.join(WORK, name + ".json"),
                 pipeline_text(name, c.bootstrap("SASL_PLAINTEXT"), group, schema=False,
                               outputs=outputs, dlq=dlq,
                               source_extra=kafka_props(alice_conf),
                               sink_extra=kafka_props(alice_conf),
                               extra='"runtime": {"brokerTimeout": "%d seconds"},'
                                     % BROKER_TIMEOUT + extra))
    apply_acls(admin, create=deny)
    try:
        r = Timed(["run", path], cwd=WORK, timeout=BOUND + 30)
    finally:
        apply_acls(admin, delete=deny)
    line = r.error_line()
    if not deny:
        check("%s: sluice run exits 0 (%.1f s)" % (name, r.seconds), r.returncode == 0,
              r.text[-1500:])
    else:
        check("%s: sluice run exits 1 (got %s) within %.0f s (%.1f s)"
              % (name, r.returncode, bound, r.seconds),
              r.returncode == 1 and r.seconds <= bound, r.text[-2500:])
        check("%s: the error names what was denied and the operation %s" % (name, expect),
              all(t in line for t in expect), line)
    found = leaked(list(USERS.values()) + [jaas("plain", "alice", USERS["alice"])],
                   r.stdout, r.stderr,
                   *[record_bytes(read_topic(c.admin_bootstrap(), t))
                     for t in list(outputs.values()) + [dlq]])
    check("%s: no secret in stdout, stderr, outputs or DLQ" % name, not found, found)
    check_committed_within_written(c, name, group, outputs, dlq)
    return r


def main():
    with Cluster(os.path.join(WORK, "kafka"), nodes=1, protocols=("SASL_PLAINTEXT",),
                 users=USERS, acls=True) as c:
        admin = c.admin()
        allow = [binding(ResourceType.TOPIC, "*", AclOperation.ALL, AclPermissionType.ALLOW),
                 binding(ResourceType.GROUP, "*", AclOperation.ALL, AclPermissionType.ALLOW),
                 binding(ResourceType.BROKER, "kafka-cluster", AclOperation.ALL,
                         AclPermissionType.ALLOW)]
        apply_acls(admin, create=allow)
        create_topics(admin, {"orders": 4})
        r = sluice(["produce", "--bootstrap", c.admin_bootstrap(), "--topic", "orders",
                    "--count", str(COUNT), "--malformed-fraction", "0.05", "--seed", "3"])
        if not check("sluice produce writes %d events" % COUNT, r.returncode == 0,
                     r.stderr[-1000:]):
            raise Abort()
        alice = client_conf("SASL_PLAINTEXT",
                            jaas_line=jaas("plain", "alice", USERS["alice"]))
        deny = AclPermissionType.DENY
        case(c, "allowed", [], [], alice)
        case(c, "deny-source-read",
             [binding(ResourceType.TOPIC, "orders", AclOperation.READ, deny)],
             ["orders", "Read"], alice)
        case(c, "deny-output-write",
             [binding(ResourceType.TOPIC, "orders-high-deny-output-write", AclOperation.WRITE,
                      deny)],
             ["orders-high-deny-output-write", "Write"], alice, bound=FAST)
        case(c, "deny-dlq-write",
             [binding(ResourceType.TOPIC, DLQ + "-deny-dlq-write", AclOperation.WRITE, deny)],
             [DLQ + "-deny-dlq-write", "Write"], alice, bound=FAST)
        case(c, "deny-group-read",
             [binding(ResourceType.GROUP, "acl-deny-group-read", AclOperation.READ, deny)],
             ["acl-deny-group-read", "Read"], alice)
        # The changelog exists, compacted, but alice may not ask its configuration: the
        # run fails at start naming the ACL it needs (it went on with a warning before).
        changelog = "deny-describe-configs-dedup-changelog"
        create_topics(admin, {changelog: 4}, config={"cleanup.policy": "compact"})
        case(c, "deny-describe-configs",
             [binding(ResourceType.TOPIC, changelog, AclOperation.DESCRIBE_CONFIGS, deny)],
             [changelog, "DescribeConfigs", "not authorized"], alice,
             extra='"dedup": {"key": ["order_id"], "within": "1 hour"},')


run_test(main)
