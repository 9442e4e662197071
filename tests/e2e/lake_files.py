"""What `sluice lake` left in a directory, judged independently of Sluice.

Shared by the embedded-broker test (tests/e2e/lake_test.py) and the real-Kafka one
(tests/kafka/lake_test.py). A source record is (partition, offset, value bytes); the
files are JSON Lines under DIR/TOPIC/dt=YYYY-MM-DD/part-<partition>-<first offset>.jsonl.
"""
import datetime
import json
import os


def event_date(value):
    """The UTC date of a record's order_time, or None when the lake must refuse it
    (not a JSON object, or no ISO-8601 order_time): it belongs in the DLQ."""
    try:
        v = json.loads(value.decode("utf-8"))
        t = v["order_time"] if isinstance(v, dict) else None
        if not isinstance(t, str):
            return None
        when = datetime.datetime.fromisoformat(t.replace("Z", "+00:00"))
    except (ValueError, KeyError, UnicodeDecodeError, AttributeError):
        return None
    if when.tzinfo is not None:
        when = when.astimezone(datetime.timezone.utc)
    return when.date().isoformat()


def scan(topic_dir):
    """(published, hidden): published is {relative path: [lines]} of the visible
    files, each line without its newline; hidden the relative paths of the hidden
    temporaries (dot files ending in .tmp; the lake's other dot files are its offset
    indexes and locks). A published file that does not end with a newline has a last
    line of None: a half file."""
    published, hidden = {}, []
    for root, _, names in os.walk(topic_dir):
        for n in names:
            rel = os.path.relpath(os.path.join(root, n), topic_dir)
            if n.startswith("."):
                if n.endswith(".tmp"):
                    hidden.append(rel)
                continue
            with open(os.path.join(root, n), "rb") as f:
                data = f.read()
            lines = data.split(b"\n")
            if lines[-1] == b"":
                lines.pop()
            else:
                lines[-1] = None
            published[rel] = lines
    return published, hidden


def half_files(published):
    """Published files that are not whole lines of JSON objects."""
    bad = []
    for rel, lines in published.items():
        for line in lines:
            try:
                if line is None or not isinstance(json.loads(line), dict):
                    raise ValueError
            except ValueError:
                bad.append(rel)
                break
    return bad


def problems(topic_dir, source):
    """Everything wrong with the files against the source records [(partition, offset,
    value)]: each record with an event date must be a line, byte-equal to its value, in
    exactly one file, under dt=its date; each file must start with the record its name
    gives; nothing else may be there. Returns (list of problems, lines found)."""
    published, hidden = scan(topic_dir)
    out = []
    if hidden:
        out.append("hidden files left: %s" % hidden[:5])
    by_place = {(p, o): v for p, o, v in source}
    want = {}
    for p, o, v in source:
        if event_date(v) is not None:
            want[v] = want.get(v, 0) + 1
    got, lines_found = {}, 0
    for rel, lines in published.items():
        parts = rel.split(os.sep)
        name = parts[-1]
        try:
            assert len(parts) == 2 and parts[0].startswith("dt=")
            assert name.startswith("part-") and name.endswith(".jsonl")
            p, o = (int(x) for x in name[len("part-"):-len(".jsonl")].split("-"))
        except (AssertionError, ValueError):
            out.append("a file not named dt=DATE/part-P-O.jsonl: %s" % rel)
            continue
        if not lines or by_place.get((p, o)) != lines[0]:
            out.append("%s does not start with the record at partition %d offset %d"
                       % (rel, p, o))
        for line in lines:
            lines_found += 1
            if line is None:
                out.append("%s ends in a half line" % rel)
                continue
            got[line] = got.get(line, 0) + 1
            if event_date(line) != parts[0][3:]:
                out.append("%s holds a record of %s" % (rel, event_date(line)))
    missing = [v for v, n in want.items() if got.get(v, 0) < n]
    extra = [v for v, n in got.items() if n > want.get(v, 0)]
    if missing:
        out.append("%d record(s) missing, e.g. %r" % (len(missing), missing[0][:80]))
    if extra:
        out.append("%d line(s) written more than once or not from the source, e.g. %r"
                   % (len(extra), extra[0][:80]))
    return out, lines_found


def refused(source):
    """How many source records the lake must send to the DLQ."""
    return sum(1 for _, _, v in source if event_date(v) is None)
