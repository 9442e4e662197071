#!/usr/bin/python3
"""End-to-end: the apps of examples/ (built on the public API only) against `sluice
broker`, their outputs read back by an independent client (python3-confluent-kafka).

big_orders keeps the orders worth at least 100 and adds `total`; route_by_function sends
high-priority orders and orders of 10 items or more to orders-urgent, the rest to
orders-normal; rolling_score's actor stage writes a rolling score per customer into each
order and sends orders of more than 15 items to its DLQ. Each record of the source is judged here, independently of Sluice.

Usage: examples_test.py PATH/TO/sluice PATH/TO/examples-build-dir
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_support import (MULT, SLUICE, check, finish, install_cleanup,  # noqa: E402
                         read_all, start_broker, stop_broker)

EXAMPLES = sys.argv[2]
WORK = tempfile.mkdtemp(prefix="sluice-e2e-examples-")
install_cleanup(WORK, broker_first=True)
EVENTS = 5000


def order(value, required):
    """The record's fields when the example's schema accepts it, else None."""
    try:
        v = json.loads(value.decode("utf-8")) if value else None
    except ValueError:
        return None
    if not isinstance(v, dict):
        return None
    types = {"order_id": str, "customer_id": str, "priority": str, "quantity": int,
             "price": (int, float)}
    for f, t in types.items():
        if v.get(f) is not None and (not isinstance(v[f], t) or isinstance(v[f], bool)):
            return None
    if any(v.get(f) is None for f in required):
        return None
    return v


def run_example(name, bootstrap):
    r = subprocess.run([os.path.join(EXAMPLES, name), bootstrap], capture_output=True,
                       text=True, timeout=300 * MULT)
    check("%s exits 0" % name, r.returncode == 0, r.stderr[-800:])
    return r.stdout


broker, bootstrap = start_broker(1, ["orders:4", "big-orders:4", "orders-urgent:4",
                                     "orders-normal:4", "orders-dlq:1", "orders-scored:4",
                                     "scores-dlq:1"],
                                 os.path.join(WORK, "bootstrap"))
try:
    r = subprocess.run([SLUICE, "produce", "--bootstrap", bootstrap, "--topic", "orders",
                        "--count", str(EVENTS), "--malformed-fraction", "0.05", "--seed", "7"],
                       capture_output=True, text=True, timeout=120 * MULT)
    check("produce writes the orders", r.returncode == 0, r.stderr[-300:])
    source = read_all(bootstrap, "orders")
    ids = lambda records: sorted(json.loads(x.value())["order_id"] for x in records)

    # big_orders: filter and map.
    out = run_example("big_orders", bootstrap)
    valid = [o for o in (order(x.value(), ["order_id", "quantity", "price"]) for x in source)
             if o]
    big = [o for o in valid if o["quantity"] * o["price"] >= 100]
    written = read_all(bootstrap, "big-orders")
    check("big_orders writes exactly the orders worth at least 100 (%d of %d valid)"
          % (len(big), len(valid)), ids(written) == sorted(o["order_id"] for o in big),
          (len(written), len(big)))
    totals_ok = all(abs(json.loads(x.value())["total"] - json.loads(x.value())["quantity"]
                        * json.loads(x.value())["price"]) < 1e-6 for x in written)
    check("each output carries its total (the map's field)", totals_ok)
    invalid = len(source) - len(valid)
    check("big_orders' summary: %d in, %d written, %d below 100, %d to the DLQ"
          % (len(source), len(big), len(valid) - len(big), invalid),
          out.strip() == "%d in, %d written to big-orders, %d below 100, %d to the DLQ"
          % (len(source), len(big), len(valid) - len(big), invalid), out.strip())
    check("the invalid orders are in the DLQ", len(read_all(bootstrap, "orders-dlq"))
          == invalid)

    # route_by_function: a topic per record, chosen by a function.
    out = run_example("route_by_function", bootstrap)
    valid = [o for o in (order(x.value(), ["order_id", "quantity", "priority"])
                         for x in source) if o]
    urgent = sorted(o["order_id"] for o in valid
                    if o["priority"] == "high" or o["quantity"] >= 10)
    normal = sorted(o["order_id"] for o in valid
                    if not (o["priority"] == "high" or o["quantity"] >= 10))
    check("route_by_function sends the urgent orders to orders-urgent (%d)" % len(urgent),
          ids(read_all(bootstrap, "orders-urgent")) == urgent)
    check("and the others to orders-normal (%d)" % len(normal),
          ids(read_all(bootstrap, "orders-normal")) == normal)
    check("its summary counts both topics",
          "orders-urgent: %d" % len(urgent) in out and "orders-normal: %d" % len(normal)
          in out, out)

    # rolling_score: an actor per partition, a score per customer, in offset order.
    out = run_example("rolling_score", bootstrap)
    expected, review, scores = {}, set(), {}
    for x in sorted(source, key=lambda x: (x.partition(), x.offset())):
        o = order(x.value(), ["order_id", "customer_id", "quantity", "price"])
        if not o:
            continue
        if o["quantity"] > 15:
            review.add(o["order_id"])
            continue
        key = (x.partition(), o["customer_id"])
        scores[key] = 0.5 * scores.get(key, 0.0) + o["quantity"] * o["price"]
        expected[o["order_id"]] = scores[key]
    scored = {json.loads(x.value())["order_id"]: json.loads(x.value())["rolling_score"]
              for x in read_all(bootstrap, "orders-scored")}
    check("rolling_score writes each order under 16 items once (%d)" % len(expected),
          sorted(scored) == sorted(expected), (len(scored), len(expected)))
    wrong = [k for k in expected if abs(scored.get(k, -1) - expected[k]) > 1e-6]
    check("each carries its customer's rolling score, in offset order", not wrong,
          wrong[:5])
    dead = read_all(bootstrap, "scores-dlq")
    marked = sorted(json.loads(x.value())["order_id"] for x in dead
                    if dict(x.headers() or []).get("sluice.error.type") == b"needs_review")
    check("the orders of more than 15 items are in its DLQ with the actor's reason (%d)"
          % len(review), marked == sorted(review), (len(marked), len(review)))
    check("its summary counts them", out.strip() == "%d in, %d scored, %d to the DLQ"
          % (len(source), len(expected), len(dead)), out.strip())
finally:
    stop_broker(broker)
finish()
