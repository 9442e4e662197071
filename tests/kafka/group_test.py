"""Real Kafka: the end-to-end group scenario (tests/e2e/group_test.py) on a 3-node cluster.

Six `sluice run` processes in one group on 4 partitions (two idle), one holder killed -9
while 60,000 events arrive at 3,000/s, the rest SIGTERMed: exit codes, time to exit,
every event in its output or the DLQ, committed offsets at the end; duplicates reported.
Topics are replicated 3 times with min.insync.replicas 2.

Usage: scripts/kafka.sh python tests/kafka/group_test.py PATH/TO/sluice [ASSIGNOR]
ASSIGNOR: partition.assignment.strategy (default: librdkafka's eager range,roundrobin).
"""
import os
import subprocess
import sys
import tempfile
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kafka_support import (DLQ, MULT, OUTPUTS, SLUICE, Cluster, check,  # noqa: E402
                           create_topics, die_with_parent, finish, install_cleanup)

WORK = tempfile.mkdtemp(prefix="sluice-kafka-group-")
install_cleanup(WORK)
ASSIGNOR = sys.argv[2] if len(sys.argv) > 2 else ""
E2E = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e", "group_test.py")

try:
    with Cluster(os.path.join(WORK, "cluster"), nodes=3) as c:
        config = {"min.insync.replicas": "2"}
        create_topics(c.admin(), {"orders": 4}, replication=3, config=config)
        create_topics(c.admin(), {t: 4 for t in OUTPUTS.values()}, replication=3, config=config)
        create_topics(c.admin(), {DLQ: 2}, replication=3, config=config)
        env = dict(os.environ, SLUICE_TEST_BOOTSTRAP=c.bootstrap(),
                   SLUICE_TEST_ASSIGNOR=ASSIGNOR)
        print("the e2e group scenario on real Kafka (%s)" % (ASSIGNOR or "eager"), flush=True)
        r = subprocess.run([sys.executable, E2E, SLUICE], env=env, timeout=800 * MULT,
                           preexec_fn=die_with_parent)
        check("the group scenario passes on a 3-node cluster (%s)" % (ASSIGNOR or "eager"),
              r.returncode == 0, "exit %s" % r.returncode)
except Exception:
    traceback.print_exc()
    check("no unexpected error", False)
finish()
