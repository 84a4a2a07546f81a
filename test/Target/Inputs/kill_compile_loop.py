#!/usr/bin/env python3
"""kill -9 falcon-compile at points spread over a compile, again and again,
and check that ART is always one whole artifact: every file equal to the old
artifact's or every file equal to the new one's, never a mix and never none.

usage: kill_compile_loop.py FALCON_COMPILE MODEL ART ROUNDS
ART must hold the old artifact (compiled with the default options); the new
one is compiled with --kv-cache-dtype bf16 (a different library, manifest and
the same weights). Only the standard library is used.
"""
import hashlib
import os
import shutil
import subprocess
import sys
import time

tool, model, art, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
NEW = ["--kv-cache-dtype", "bf16", "--quiet"]


def digest(directory):
    if not os.path.isdir(directory):
        return None
    return {name: hashlib.sha256(open(os.path.join(directory, name), "rb").read()).hexdigest()
            for name in sorted(os.listdir(directory))}


old = digest(art)
reference = art + ".reference"
shutil.rmtree(reference, ignore_errors=True)
start = time.time()
subprocess.run([tool, model, "-o", reference] + NEW, check=True)
duration = time.time() - start
new = digest(reference)
shutil.rmtree(reference)
if old is None or old == new:
    sys.exit("FAIL: ART must hold an old artifact that differs from the new one")

outcomes = {"old": 0, "new": 0}
for round_index in range(rounds):
    # Kill points from the start to just past the end of a compile.
    delay = duration * 1.1 * round_index / max(rounds - 1, 1)
    proc = subprocess.Popen([tool, model, "-o", art] + NEW)
    time.sleep(delay)
    proc.kill()
    proc.wait()
    now = digest(art)
    if now == old:
        outcomes["old"] += 1
    elif now == new:
        outcomes["new"] += 1
        # Put the old artifact back for the next round.
        subprocess.run([tool, model, "-o", art, "--quiet"], check=True)
    else:
        sys.exit(f"FAIL: round {round_index} (killed after {delay:.2f} s) left {now}")
staging = [name for name in os.listdir(os.path.dirname(os.path.abspath(art)))
           if name.startswith(os.path.basename(art) + ".tmp-")]
# The next compile removes the staging directories of killed compiles.
subprocess.run([tool, model, "-o", art, "--quiet"], check=True)
left = [name for name in os.listdir(os.path.dirname(os.path.abspath(art)))
        if name.startswith(os.path.basename(art) + ".tmp-")]
if left:
    sys.exit(f"FAIL: staging directories of killed compiles left after a new compile: {left}")
print(f"{rounds} kills: always a whole artifact ({outcomes['old']} old, {outcomes['new']} new); "
      f"{len(staging)} staging directories left by the kills, removed by the next compile")
