#!/usr/bin/env python3
"""Starts `falcon-compile MODEL -o ART`, sends SIGNAL once the staging
directory ART.tmp-<pid> exists, and checks that the process exits with 130
and that neither ART nor the staging directory is left behind.

usage: interrupt_compile.py FALCON_COMPILE MODEL ART SIGNAL   (INT or TERM)
Only the standard library is used.
"""
import glob
import os
import signal
import subprocess
import sys
import time

tool, model, art, sig = sys.argv[1:5]
proc = subprocess.Popen([tool, model, "-o", art, "--quiet"])
staging = f"{art}.tmp-{proc.pid}"
deadline = time.time() + 60
while not os.path.isdir(staging):
    if proc.poll() is not None:
        sys.exit(f"FAIL: falcon-compile ended (rc {proc.returncode}) before {staging} appeared")
    if time.time() > deadline:
        proc.kill()
        sys.exit(f"FAIL: {staging} never appeared")
    time.sleep(0.005)
proc.send_signal(getattr(signal, "SIG" + sig))
rc = proc.wait(timeout=60)
left = glob.glob(f"{art}*")
if rc != 130:
    sys.exit(f"FAIL: exit code {rc}, expected 130")
if left:
    sys.exit(f"FAIL: left behind: {left}")
print(f"SIG{sig}: exit 130, nothing left behind")
