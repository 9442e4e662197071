"""Helpers for the security tests (tests/kafka/security_test.py, acl_test.py): certificates
made with openssl at test time, the client properties of each protocol (for sluice's
pipelines and for the independent client), runs timed to their exit, and the search for
secrets in every byte a run wrote.
"""
import os
import subprocess
import time

from kafka_support import MULT, SLUICE, die_with_parent, read_topic

KEY_PASSWORD = "keystore-pass-7"


def openssl(*args, cwd):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (" ".join(args), r.stderr[-800:]))


def make_certs(d):
    """A CA, a broker certificate it signs (SAN DNS:localhost, serverAuth), and a second CA
    that signs nothing the broker has (an untrusted one). Returns the paths:
    {"ca", "other_ca", "keystore" (encrypted PKCS#8 key + certificate + CA, PEM),
    "key_password"}."""
    os.makedirs(d, exist_ok=True)
    for name, cn in (("ca", "sluice-test-ca"), ("other-ca", "sluice-other-ca")):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key",
                "-out", name + ".pem", "-days", "2", "-subj", "/CN=" + cn,
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key", "-out",
            "broker.csr", "-subj", "/CN=localhost", cwd=d)
    with open(os.path.join(d, "broker.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n")
    openssl("x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "broker.pem", "-days", "2", "-extfile", "broker.ext",
            cwd=d)
    # Kafka's PEM file keystore wants the key as encrypted PKCS#8 with ssl.key.password;
    # Java 17 cannot read OpenSSL 3's default PBES2 ("PBES2 SecretKeyFactory not
    # available"), so the older PBE-SHA1-3DES scheme.
    openssl("pkcs8", "-topk8", "-in", "broker.key", "-out", "broker.p8", "-passout",
            "pass:" + KEY_PASSWORD, "-v1", "PBE-SHA1-3DES", cwd=d)
    keystore = os.path.join(d, "keystore.pem")
    with open(keystore, "w") as out:
        for name in ("broker.p8", "broker.pem", "ca.pem"):
            with open(os.path.join(d, name)) as f:
                out.write(f.read())
    return {"ca": os.path.join(d, "ca.pem"), "other_ca": os.path.join(d, "other-ca.pem"),
            "keystore": keystore, "key_password": KEY_PASSWORD}


def jaas(module, user, password):
    """The seed's Java JAAS line."""
    cls = {"plain": "org.apache.kafka.common.security.plain.PlainLoginModule",
           "scram": "org.apache.kafka.common.security.scram.ScramLoginModule"}[module]
    return '%s required username="%s" password="%s";' % (cls, user, password)


def client_conf(protocol, ca=None, mechanism=None, user=None, password=None,
                jaas_line=None):
    """librdkafka properties for a protocol, without the kafka. prefix (the independent
    client takes them as they are; pipelines with the prefix: see kafka_props)."""
    c = {"security.protocol": protocol}
    if "SSL" in protocol:
        c["ssl.ca.location"] = ca
        c["ssl.endpoint.identification.algorithm"] = "https"  # hostname verification
    if protocol.startswith("SASL"):
        if jaas_line is not None:
            c["sasl.jaas.config"] = jaas_line
            if mechanism:
                c["sasl.mechanism"] = mechanism
        else:
            c.update({"sasl.mechanism": mechanism, "sasl.username": user,
                      "sasl.password": password})
    return c


def kafka_props(conf):
    """Pipeline members (each with a trailing comma) for a source or sink section."""
    import json
    return "".join('"kafka.%s": %s, ' % (k, json.dumps(v)) for k, v in conf.items())


def reader_conf(conf):
    """What the independent client needs of conf: JAAS lines are a Java thing, given to it
    as username and password."""
    import re
    c = dict(conf)
    line = c.pop("sasl.jaas.config", None)
    if line is not None:
        c["sasl.username"] = re.search(r'username="([^"]*)"', line).group(1)
        c["sasl.password"] = re.search(r'password="([^"]*)"', line).group(1)
        c.setdefault("sasl.mechanism", "PLAIN" if "PlainLoginModule" in line
                     else "SCRAM-SHA-512")
    return c


class Timed:
    """A finished `sluice ...` process: returncode, stdout and stderr bytes, seconds."""

    def __init__(self, args, cwd, timeout=180):
        started = time.monotonic()
        p = subprocess.Popen([SLUICE] + args, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, cwd=cwd, preexec_fn=die_with_parent)
        try:
            self.stdout, self.stderr = p.communicate(timeout=timeout * MULT)
            self.returncode = p.returncode
        except subprocess.TimeoutExpired:  # a hang: killed, reported with what it wrote
            p.kill()
            self.stdout, self.stderr = p.communicate()
            self.returncode = "hung, killed after %.0f s" % (timeout * MULT)
        self.seconds = time.monotonic() - started
        self.text = self.stderr.decode("utf-8", "replace")

    def error_line(self):
        """The last `sluice: ...` line on stderr (the reason a run or plan failed)."""
        lines = [l for l in self.text.splitlines() if l.startswith("sluice: ")]
        return lines[-1] if lines else ""


def record_bytes(records):
    """Every byte of records read back: keys, values, header names and values."""
    out = []
    for r in records:
        out += [r.key or b"", r.value or b""]
        for k, v in r.headers:
            out += [k.encode(), v or b""]
    return b"\n".join(out)


def leaked(secrets, *blobs):
    """The secrets (str) found in any of the byte strings: [] when none."""
    return [s for s in secrets if any(s.encode() in b for b in blobs)]


def read_back(bootstrap, topics, conf):
    """{topic: records} read by the independent client through a secured listener."""
    return {t: read_topic(bootstrap, t, conf=conf) for t in topics}
