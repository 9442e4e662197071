#!/usr/bin/python3
"""End-to-end: README.md works when pasted. Every fenced `sh` block is run with bash
as a user would paste it at the top of a checkout after `scripts/demo.sh`; the
pipeline the README shows must be the file its commands run; the demo it describes
must print what it says.

Usage: readme_test.py PATH/TO/sluice SOURCE_DIR
Prints one line per check and closes with 'N passed, N failed'.
"""
import os
import re
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_support import MULT, SLUICE, check, finish

SOURCE = os.path.abspath(sys.argv[2])
README = open(os.path.join(SOURCE, "README.md")).read()

# A checkout as the README assumes one: build/apps/sluice and examples/. The binary
# is the one under test, wherever CTest built it.
WORK = tempfile.mkdtemp(prefix="sluice-readme-")
os.makedirs(os.path.join(WORK, "build", "apps"))
os.symlink(SLUICE, os.path.join(WORK, "build", "apps", "sluice"))
os.symlink(os.path.join(SOURCE, "examples"), os.path.join(WORK, "examples"))
os.symlink(os.path.join(SOURCE, "scripts"), os.path.join(WORK, "scripts"))

blocks = re.findall(r"```sh\n(.*?)```", README, re.S)
check("README.md has shell blocks", len(blocks) >= 2, len(blocks))

# -- the pipeline shown is the pipeline shipped ----------------------------------------
shown = re.search(r"This one is\s+`([^`]+)`:\s+```jsonc\n(.*?)```", README, re.S)
check("README.md names the file of its example pipeline", shown is not None)
if shown:
    path = os.path.join(SOURCE, shown.group(1))
    check("the pipeline README.md shows is %s, verbatim" % shown.group(1),
          os.path.exists(path) and open(path).read() == shown.group(2))

# -- every block runs --------------------------------------------------------------------
for block in blocks:
    first = block.strip().splitlines()[0]
    if "scripts/test.sh" in block:
        # The set-up commands: CI runs scripts/test.sh (which runs this test), and
        # scripts/demo.sh is deps + build + `sluice demo`, checked below.
        check("the set-up scripts exist and are executable",
              all(os.access(os.path.join(SOURCE, s), os.X_OK)
                  for s in re.findall(r"scripts/\w+\.sh", block)))
        continue
    # -e: a failing command fails the block; the trap stops what it left running.
    script = "set -e\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + block
    # A session of its own: on a timeout the whole group goes, broker included.
    shell = subprocess.Popen(["bash", "-c", script], cwd=WORK, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = shell.communicate(timeout=300 * MULT)
        code = shell.returncode
    except subprocess.TimeoutExpired:
        os.killpg(shell.pid, signal.SIGKILL)
        out, err = shell.communicate()
        code = "timeout"
    check("the block starting `%s` exits 0" % first[:60], code == 0,
          (code, err[-1500:]))
    if "sluice run" in block:
        ended = re.search(r"run ended: (\d+) in, (\d+) out, (\d+) to the DLQ, 0 dropped", err)
        produced = re.search(r"wrote (\d+) records \((\d+) malformed", out)
        check("its run reads every record produced, outputs + DLQ = input",
              ended and produced and int(ended.group(1)) == int(produced.group(1))
              and int(ended.group(2)) + int(ended.group(3)) == int(ended.group(1))
              and int(ended.group(3)) == int(produced.group(2)), err[-800:])
    if "sluice lake" in block:
        ended = re.search(r"lake: (\d+) in, (\d+) written under \S+, (\d+) to the DLQ", err)
        produced = re.search(r"wrote (\d+) records", out)
        counted = re.search(r"^\s*(\d+)\s*$", out, re.M)  # the block's `wc -l`
        check("its lake reads every record produced: files + DLQ = input, and the files "
              "hold as many lines as it says",
              ended and produced and counted
              and int(ended.group(1)) == int(produced.group(1))
              and int(ended.group(2)) + int(ended.group(3)) == int(ended.group(1))
              and int(counted.group(1)) == int(ended.group(2)), (out[-800:], err[-800:]))
    if "sluice enrich" in block:
        joined = [l for l in out.splitlines() if '"order_id"' in l]
        check("its enrich writes orders with the table's tier",
              joined and all('"tier":"gold"' in l and '"order_id"' in l for l in joined),
              out[-800:])
    elif "sluice ingest" in block:
        rejected = [l for l in out.splitlines() if "\t" in l]
        written = [l for l in out.splitlines() if l.endswith("origin=shop")]
        check("its ingest rejects the two bad lines with their numbers and writes the two "
              "good ones, keyed, with the header",
              [l.split("\t")[1] for l in rejected] == ["2", "1"]
              and sorted(written) == ['c1 {"customer":"c1","amount":10} origin=shop',
                                      'c2 {"customer":"c2","amount":5} origin=shop'],
              out[-800:])
    if "kcat" in block and "orders-dlq" in block:
        reasons = [l for l in out.splitlines() if "sluice.error.type=" in l]
        check("kcat prints DLQ reasons from the headers", len(reasons) == 3, out[-800:])

# -- the demo prints what README.md shows ----------------------------------------------
shown_demo = re.search(r"What the demo prints.*?```\n(.*?)```", README, re.S)
check("README.md shows the demo's summary", shown_demo is not None)
r = subprocess.run([SLUICE, "--log-level", "warn", "demo", "--events", "20000"],
                   capture_output=True, text=True, timeout=300 * MULT)
check("`sluice demo` exits 0", r.returncode == 0, r.stderr[-1500:])
if shown_demo:
    labels = [l.split(":")[0].strip() for l in shown_demo.group(1).splitlines() if ":" in l]
    printed = [l.split(":")[0].strip() for l in r.stdout.splitlines() if ":" in l]
    check("the demo prints the lines README.md shows, in order", labels == printed,
          (labels, printed))
    check("the demo accounts for every record",
          "every record accounted for: outputs + DLQ + duplicates = input" in r.stdout,
          r.stdout)

finish()
