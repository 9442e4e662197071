"""A real Apache Kafka cluster on loopback, for the real-Kafka test tier and bench.

KRaft mode, 1 or 3 combined broker+controller nodes, each a JVM started from the jars that
`scripts/kafka.sh fetch` assembled. Used two ways:

- from tests, as a library: `with Cluster(work, nodes=3) as c: ...` starts, waits until every
  node answers a metadata request, and stops every node on exit (normal, exception, SIGTERM);
  each JVM also dies with the Python process that started it (PR_SET_PDEATHSIG), so a test
  killed with SIGKILL leaves no broker behind;
- from the shell, through `scripts/kafka.sh start|stop|status`: the nodes outlive the script,
  their pids are kept in the cluster's directory, and `stop` ends them.

Listeners. Every node has CONTROLLER (the KRaft quorum), BROKER (PLAINTEXT, between brokers
and for the tests' own admin client; its principal is a super user when ACLs are on) and one
client listener per protocol asked for: PLAINTEXT, SASL_PLAINTEXT, SSL, SASL_SSL. SSL
listeners advertise `localhost`, the name in the test certificate, so clients verify it.
"""
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

CACHE = os.environ.get("SLUICE_KAFKA_CACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "sluice-kafka")
DEFAULT_VERSION = "4.1.1"
SCRAM_VERSION = "3.9.1"  # librdkafka 2.0.2's SCRAM exchange is refused by 4.x (librdkafka#4895)

_PR_SET_PDEATHSIG = 1
# The shell's cluster: one per user, since `start` clears its directory.
DEFAULT_DIR = "/tmp/sluice-kafka-%d" % os.getuid()


def libs_dir(version):
    return os.path.join(CACHE, version, "libs")


def is_fetched(version):
    return os.path.exists(os.path.join(CACHE, version, ".complete"))


# Looked up here, not in the child: between fork and exec nothing may take a lock.
_prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl


def _die_with_parent():
    """In the child, before exec: SIGKILL when the process that started it dies."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def free_ports(n):
    """n distinct free loopback ports below the kernel's ephemeral range, so that the
    connections other tests open meanwhile (which take ephemeral ports) cannot take one
    between this check and the broker's bind. Held open together so none repeats."""
    import random
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            ephemeral_low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    low, high = 10000, max(10001 + 4 * n, ephemeral_low - 1)
    socks, ports = [], []
    try:
        while len(ports) < n:
            port = random.randint(low, high)
            if port in ports:
                continue
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            socks.append(s)
            ports.append(port)
        return ports
    finally:
        for s in socks:
            s.close()


class ClusterError(Exception):
    pass


class Cluster:
    """A KRaft cluster in directory `work`.

    protocols: client listeners to open ("PLAINTEXT", "SASL_PLAINTEXT", "SSL", "SASL_SSL").
    users: {name: password}, for SASL/PLAIN and, at format time, SCRAM-SHA-256/512.
    ssl: {"keystore": PEM with key and chain, "truststore": CA PEM, "key_password": the
         key's password} for SSL listeners (paths; the key encrypted PKCS#8).
    acls: True turns on StandardAuthorizer (the BROKER listener's principal is a super user).
    broker_config: extra server.properties entries for every node.
    """

    def __init__(self, work, nodes=1, version=DEFAULT_VERSION, protocols=("PLAINTEXT",),
                 users=None, ssl=None, acls=False, broker_config=None, heap="384m",
                 detached=False):
        if not is_fetched(version):
            raise ClusterError("Kafka %s is not assembled in %s: run `scripts/kafka.sh fetch "
                               "--version %s` first" % (version, CACHE, version))
        self.work = os.path.abspath(work)
        self.nodes = nodes
        self.version = version
        self.protocols = list(protocols)
        self.users = dict(users or {})
        self.ssl = ssl
        self.acls = acls
        self.broker_config = dict(broker_config or {})
        self.heap = heap
        self.detached = detached
        self.procs = {}  # node id -> Popen (library use)
        self.ports = {}  # node id -> {listener name: port}
        self.cluster_id = None

    # -- configuration -------------------------------------------------------------------
    def _listener_names(self):
        return ["CONTROLLER", "BROKER"] + self.protocols

    def _allocate_ports(self):
        names = self._listener_names()
        ports = free_ports(len(names) * self.nodes)
        for i in range(self.nodes):
            node = i + 1
            self.ports[node] = {n: ports[i * len(names) + j] for j, n in enumerate(names)}

    def _host(self, listener):
        return "localhost" if "SSL" in listener else "127.0.0.1"

    def node_dir(self, node):
        return os.path.join(self.work, "node-%d" % node)

    def _server_properties(self, node):
        p = self.ports[node]
        voters = ",".join("%d@127.0.0.1:%d" % (n, self.ports[n]["CONTROLLER"])
                          for n in sorted(self.ports))
        listeners = ",".join("%s://%s:%d" % (l, "127.0.0.1", p[l]) for l in self._listener_names())
        advertised = ",".join("%s://%s:%d" % (l, self._host(l), p[l])
                              for l in self._listener_names() if l != "CONTROLLER")
        protocol_map = {"CONTROLLER": "PLAINTEXT", "BROKER": "PLAINTEXT"}
        protocol_map.update({l: l for l in self.protocols})
        rf = min(3, self.nodes)
        c = {
            "process.roles": "broker,controller",
            "node.id": node,
            "controller.quorum.voters": voters,
            "listeners": listeners,
            "advertised.listeners": advertised,
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "BROKER",
            "listener.security.protocol.map": ",".join("%s:%s" % kv for kv in protocol_map.items()),
            "log.dirs": os.path.join(self.node_dir(node), "data"),
            "num.partitions": 4,
            "default.replication.factor": rf,
            "offsets.topic.replication.factor": rf,
            "offsets.topic.num.partitions": 8,
            "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": min(2, rf),
            "transaction.state.log.num.partitions": 8,
            "group.initial.rebalance.delay.ms": 0,
            # Tests stop and start nodes: let a restarted node catch up fast.
            "controller.quorum.election.timeout.ms": 1000,
            "controller.quorum.fetch.timeout.ms": 2000,
            "broker.heartbeat.interval.ms": 500,
            "broker.session.timeout.ms": 4000,
            "unclean.leader.election.enable": "false",
        }
        sasl = [l for l in self.protocols if l.startswith("SASL")]
        if sasl:
            mechs = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
            c["sasl.enabled.mechanisms"] = ",".join(mechs)
            plain_users = " ".join('user_%s="%s"' % (u, pw) for u, pw in self.users.items())
            for l in sasl:
                prefix = "listener.name.%s." % l.lower()
                c[prefix + "plain.sasl.jaas.config"] = (
                    "org.apache.kafka.common.security.plain.PlainLoginModule required %s;"
                    % plain_users)
                for m in mechs[1:]:
                    c[prefix + m.lower() + ".sasl.jaas.config"] = (
                        "org.apache.kafka.common.security.scram.ScramLoginModule required;")
        if any("SSL" in l for l in self.protocols):
            if not self.ssl:
                raise ClusterError("an SSL listener needs ssl={'keystore':..., 'truststore':...}")
            c.update({
                "ssl.keystore.type": "PEM",
                "ssl.keystore.location": self.ssl["keystore"],
                "ssl.truststore.type": "PEM",
                "ssl.truststore.location": self.ssl["truststore"],
                "ssl.client.auth": self.ssl.get("client_auth", "none"),
            })
            # A PEM keystore file needs its key as encrypted PKCS#8 with this password
            # (Kafka refuses a file keystore without ssl.key.password), encrypted with a
            # scheme Java 17 reads: PBE-SHA1-3DES, not OpenSSL 3's default PBES2.
            if self.ssl.get("key_password"):
                c["ssl.key.password"] = self.ssl["key_password"]
        if self.acls:
            c["authorizer.class.name"] = \
                "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
            c["super.users"] = "User:ANONYMOUS"
            c["allow.everyone.if.no.acl.found"] = "false"
        c.update(self.broker_config)
        return "".join("%s=%s\n" % (k, v) for k, v in c.items())

    def _log4j2(self, node):
        return "\n".join([
            "status = error",
            "appender.file.type = File",
            "appender.file.name = file",
            "appender.file.fileName = %s" % os.path.join(self.node_dir(node), "server.log"),
            "appender.file.layout.type = PatternLayout",
            "appender.file.layout.pattern = [%d] %p %m (%c)%n",
            "rootLogger.level = INFO",
            "rootLogger.appenderRef.file.ref = file",
            "logger.kafka.name = org.apache.kafka",
            "logger.kafka.level = INFO",
            ""])

    def _java(self, main, args, node=None, log=None):
        classpath = os.path.join(libs_dir(self.version), "*")
        opts = ["-Xms64m", "-Xmx" + self.heap, "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                "-Djava.awt.headless=true"]
        if node is not None:
            opts.append("-Dlog4j2.configurationFile=" +
                        os.path.join(self.node_dir(node), "log4j2.properties"))
        opts += os.environ.get("SLUICE_KAFKA_JVM_OPTS", "").split()
        return ["java"] + opts + ["-cp", classpath, main] + args

    def _format(self):
        self.cluster_id = subprocess.run(
            self._java("kafka.tools.StorageTool", ["random-uuid"]), check=True,
            capture_output=True, text=True).stdout.strip().splitlines()[-1]
        for node in sorted(self.ports):
            d = self.node_dir(node)
            os.makedirs(d, exist_ok=True)
            props = os.path.join(d, "server.properties")
            with open(props, "w") as f:
                f.write(self._server_properties(node))
            with open(os.path.join(d, "log4j2.properties"), "w") as f:
                f.write(self._log4j2(node))
            args = ["format", "-t", self.cluster_id, "-c", props]
            for u, pw in self.users.items():
                for m in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
                    args += ["--add-scram", "%s=[name=%s,password=%s]" % (m, u, pw)]
            r = subprocess.run(self._java("kafka.tools.StorageTool", args, node), text=True,
                               capture_output=True)
            if r.returncode != 0:
                raise ClusterError("formatting node %d failed: %s" % (node, (r.stdout + r.stderr)[-800:]))

    # -- processes -----------------------------------------------------------------------
    def start_node(self, node):
        """Starts one node (again): its data directory is kept."""
        d = self.node_dir(node)
        out = open(os.path.join(d, "console.log"), "ab")
        cmd = self._java("kafka.Kafka", [os.path.join(d, "server.properties")], node)
        if self.detached:
            p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
        else:
            p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        out.close()
        self.procs[node] = p
        with open(os.path.join(d, "pid"), "w") as f:
            f.write(str(p.pid))
        return p

    def kill_node(self, node, sig=signal.SIGKILL):
        """Sends sig to a node and, for SIGKILL and SIGTERM, waits until it has exited."""
        p = self.procs.get(node)
        if p is None or p.poll() is not None:
            return
        p.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def start(self, timeout=120, attempts=3):
        """Formats storage, starts every node and waits until each answers a metadata request.
        A port taken by another process between the choice and the bind: again, with others."""
        for attempt in range(attempts):
            os.makedirs(self.work, exist_ok=True)
            self._allocate_ports()
            self._format()
            for node in sorted(self.ports):
                self.start_node(node)
            # Written before the wait, so that `stop` finds every JVM even if this start
            # is interrupted.
            self._write_state()
            try:
                self.wait_ready(timeout)
                return self
            except ClusterError:
                taken = any("Address already in use" in self.log_tail(n, 200)
                            for n in self.ports)
                self.stop()
                if not taken or attempt + 1 == attempts:
                    raise
                for node in self.ports:
                    shutil.rmtree(self.node_dir(node), ignore_errors=True)
                self.procs = {}
        return self

    def _write_state(self):
        with open(os.path.join(self.work, "cluster.json"), "w") as f:
            json.dump({"version": self.version, "cluster_id": self.cluster_id,
                       "ports": self.ports,
                       "bootstrap": self.bootstrap(self.protocols[0] if self.protocols
                                                   else "BROKER"),
                       "pids": {n: p.pid for n, p in self.procs.items()}}, f)

    def wait_ready(self, timeout=120, nodes=None):
        """Waits until every node (or those named) is a live broker in the cluster's metadata."""
        from confluent_kafka.admin import AdminClient
        want = set(nodes or self.ports)
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            for node, p in self.procs.items():
                if node in want and p.poll() is not None:
                    raise ClusterError("node %d exited with %s during start; its log: %s\n%s"
                                       % (node, p.returncode, self.log_path(node),
                                          self.log_tail(node)))
            try:
                first = min(want)
                # log_level 0: refused connections while the JVMs start are expected.
                admin = AdminClient({"bootstrap.servers": "127.0.0.1:%d"
                                     % self.ports[first]["BROKER"], "log_level": 0})
                md = admin.list_topics(timeout=2)
                last = sorted(md.brokers)
                if want <= set(md.brokers):
                    return
            except Exception as e:  # not up yet
                last = e
            time.sleep(0.2)
        raise ClusterError("cluster not ready after %ss (brokers seen: %s)" % (timeout, last))

    def wait_in_sync(self, timeout=120):
        """Waits until every replica of every partition is in its ISR again: a restarted
        node has caught up. Killing another node before that can leave a partition below
        min.insync.replicas, and writes to it wait until the node is back."""
        deadline = time.time() + timeout
        lagging = None
        admin = self.admin()
        while time.time() < deadline:
            try:
                md = admin.list_topics(timeout=5)
                lagging = sorted("%s/%d" % (t, p.id) for t, tm in md.topics.items()
                                 for p in tm.partitions.values()
                                 if set(p.isrs) != set(p.replicas))
                if not lagging:
                    return
            except Exception as e:  # a node still starting
                lagging = e
            time.sleep(0.5)
        raise ClusterError("replicas not in sync after %ss: %s" % (timeout, lagging))

    def stop(self):
        """Stops every node: SIGTERM, then SIGKILL after 30 s. Idempotent."""
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.time() + 30
        for p in self.procs.values():
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- what clients need ---------------------------------------------------------------
    def bootstrap(self, protocol="PLAINTEXT", nodes=None):
        listener = "BROKER" if protocol == "BROKER" else protocol
        return ",".join("%s:%d" % (self._host(listener), self.ports[n][listener])
                        for n in sorted(nodes or self.ports))

    def admin_bootstrap(self):
        """The BROKER listener: PLAINTEXT, a super user when ACLs are on."""
        return self.bootstrap("BROKER")

    def admin(self):
        from confluent_kafka.admin import AdminClient
        # log_level 0: tests stop nodes under it, and refused connections are expected.
        return AdminClient({"bootstrap.servers": self.admin_bootstrap(), "log_level": 0})

    def log_path(self, node):
        return os.path.join(self.node_dir(node), "server.log")

    def log_tail(self, node, n=20):
        lines = []
        for name in ("console.log", "server.log"):
            path = os.path.join(self.node_dir(node), name)
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    lines += f.readlines()[-n:]
        return "".join(lines)

    def leader(self, topic, partition):
        md = self.admin().list_topics(topic, timeout=10)
        return md.topics[topic].partitions[partition].leader


# -- shell entry points (scripts/kafka.sh) -------------------------------------------------
def fetch(version, pom):
    """Assembles Kafka `version` (jars and their runtime dependencies) into the cache."""
    if is_fetched(version):
        return
    dest = libs_dir(version)
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest)
    r = subprocess.run(["mvn", "-q", "-B", "-f", pom, "dependency:copy-dependencies",
                        "-Dkafka.version=" + version, "-DincludeScope=runtime",
                        "-DoutputDirectory=" + dest], capture_output=True, text=True)
    if r.returncode != 0:
        raise ClusterError("assembling Kafka %s with Maven failed:\n%s"
                           % (version, (r.stdout + r.stderr)[-3000:]))
    open(os.path.join(CACHE, version, ".complete"), "w").close()


def _pids(work):
    """The pids of the cluster's nodes, from each node's pid file."""
    pids = []
    try:
        names = sorted(os.listdir(work))
    except OSError:
        return pids
    for name in names:
        try:
            with open(os.path.join(work, name, "pid")) as f:
                pids.append(int(f.read().strip()))
        except (OSError, ValueError):
            pass
    return pids


def _alive(pid, work):
    """True when pid is a broker of the cluster in work (not a reused pid)."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmdline = f.read().decode(errors="replace")
    except OSError:
        return False
    return "kafka.Kafka" in cmdline and os.path.abspath(work) in cmdline


def stop_detached(work):
    pids = [p for p in _pids(work) if _alive(p, work)]
    for p in pids:
        os.kill(p, signal.SIGTERM)
    deadline = time.time() + 30
    while time.time() < deadline and any(_alive(p, work) for p in pids):
        time.sleep(0.2)
    for p in pids:
        if _alive(p, work):
            os.kill(p, signal.SIGKILL)
    return len(pids)


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(prog="scripts/kafka.sh")
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="assemble Kafka's jars into the cache")
    f.add_argument("--version", default=DEFAULT_VERSION)
    f.add_argument("--pom", required=True)
    s = sub.add_parser("start", help="start a cluster in the background")
    s.add_argument("--nodes", type=int, default=1, choices=[1, 3])
    s.add_argument("--version", default=DEFAULT_VERSION)
    s.add_argument("--dir", default=DEFAULT_DIR)
    t = sub.add_parser("stop", help="stop the cluster started in --dir")
    t.add_argument("--dir", default=DEFAULT_DIR)
    st = sub.add_parser("status", help="print the cluster's bootstrap servers, if it runs")
    st.add_argument("--dir", default=DEFAULT_DIR)
    a = ap.parse_args(argv)
    try:
        if a.cmd == "fetch":
            fetch(a.version, a.pom)
            print("Kafka %s in %s" % (a.version, libs_dir(a.version)))
        elif a.cmd == "start":
            if any(_alive(p, a.dir) for p in _pids(a.dir)):
                sys.exit("a cluster already runs in %s: `scripts/kafka.sh stop --dir %s` first"
                         % (a.dir, a.dir))
            shutil.rmtree(a.dir, ignore_errors=True)
            started = time.time()
            c = Cluster(a.dir, nodes=a.nodes, version=a.version, detached=True)
            try:
                c.start()
            except BaseException:
                c.stop()
                raise
            print("bootstrap.servers=%s" % c.bootstrap())
            print("Kafka %s, %d node(s), ready in %.1f s; logs in %s/node-*/server.log; "
                  "stop with `scripts/kafka.sh stop --dir %s`"
                  % (a.version, a.nodes, time.time() - started, a.dir, a.dir), file=sys.stderr)
        elif a.cmd == "stop":
            n = stop_detached(a.dir)
            print("stopped %d node(s)" % n, file=sys.stderr)
        elif a.cmd == "status":
            live = [p for p in _pids(a.dir) if _alive(p, a.dir)]
            if not live:
                sys.exit("no cluster runs in %s" % a.dir)
            with open(os.path.join(a.dir, "cluster.json")) as f:
                print("bootstrap.servers=%s" % json.load(f)["bootstrap"])
    except ClusterError as e:
        sys.exit("kafka: %s" % e)


if __name__ == "__main__":
    main(sys.argv[1:])
