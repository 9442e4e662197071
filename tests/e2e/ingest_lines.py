"""Input files for `sluice ingest` and what must become of them, judged independently.

Shared by tests/e2e/ingest_test.py (embedded broker) and tests/kafka/ingest_test.py.
"""
import json


def make_inputs(seed_name, count, customers=40):
    """Lines of an input file: (text, expected) pairs, where expected is ("write", key,
    value bytes), ("reject", reason prefix) or ("blank",). Every 97th line is broken in
    one of several ways; every 50th is blank; some end in CRLF."""
    out = []
    for i in range(count):
        customer = "cust-%d" % (i % customers)
        value = json.dumps({"customer": customer, "seq": "%s-%d" % (seed_name, i),
                            "amount": i * 0.25}, separators=(",", ":"))
        if i % 97 == 13:
            kind = (i // 97) % 4
            if kind == 0:
                out.append((value[:-3], ("reject", "not JSON")))
            elif kind == 1:
                out.append(("[%d]" % i, ("reject", "not a JSON object")))
            elif kind == 2:
                out.append((json.dumps({"seq": i}), ("reject", "no key: field `customer`"
                                                     " is missing")))
            else:
                out.append(('{"customer":null}', ("reject", "no key: field `customer` is null")))
        elif i % 50 == 0:
            out.append(("   ", ("blank",)))
        elif i % 7 == 0:
            out.append((value + "\r", ("write", customer, value.encode())))
        else:
            out.append((value, ("write", customer, value.encode())))
    return out


def write_file(path, lines):
    with open(path, "wb") as f:
        for text, _ in lines:
            f.write(text.encode() + b"\n")


def judge(inputs, records, rejects_text, header=None):
    """Problems with what was written ([Rec-like with .key .value .partition .offset
    .headers]) and rejected (the reject file's text) against inputs [(name, lines)]."""
    problems = []
    want = {}  # value -> (key, position in its input)
    want_rejects = []
    order = []  # per key, the values in input order
    for name, lines in inputs:
        for n, (text, fate) in enumerate(lines, 1):
            if fate[0] == "write":
                want[fate[2]] = fate[1]
                order.append((fate[1], fate[2]))
            elif fate[0] == "reject":
                want_rejects.append((name, n, fate[1]))
    seen = {}
    for r in records:
        seen[r.value] = seen.get(r.value, 0) + 1
        key = r.key.decode() if isinstance(r.key, bytes) else r.key
        if want.get(r.value) != key:
            problems.append("unexpected record or key: %r %r" % (key, r.value[:60]))
        if header and dict(r.headers or []).get(header[0]) != header[1]:
            problems.append("header %s missing on %r" % (header[0], r.value[:60]))
    missing = [v for v in want if v not in seen]
    twice = [v for v, n in seen.items() if n > 1]
    if missing:
        problems.append("%d line(s) not written, e.g. %r" % (len(missing), missing[0][:60]))
    if twice:
        problems.append("%d line(s) written twice, e.g. %r" % (len(twice), twice[0][:60]))
    # Per-key order: within a partition, a key's records come in input order.
    position = {v: i for i, (_, v) in enumerate(order)}
    last = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        k = (r.partition, r.key)
        p = position.get(r.value, -1)
        if p < last.get(k, -1):
            problems.append("key %r out of order in partition %d" % (r.key, r.partition))
            break
        last[k] = p
    got_rejects = []
    for line in rejects_text.splitlines():
        name, n, reason, _ = (line.split("\t", 3) + ["", "", "", ""])[:4]
        got_rejects.append((name, int(n) if n.isdigit() else -1, reason))
    if len(got_rejects) != len(want_rejects) or any(
            g[0] != w[0] or g[1] != w[1] or not g[2].startswith(w[2])
            for g, w in zip(got_rejects, want_rejects)):
        problems.append("rejects differ: got %s, want %s" % (got_rejects[:3], want_rejects[:3]))
    return problems
