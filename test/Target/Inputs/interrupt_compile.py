#!/usr/bin/env python3
"""Starts `falcon-compile MODEL -o ART`, sends SIGNAL once the staging
directory ART.tmp-<pid> exists, and checks the outcome:
  INT, TERM, HUP: the process dies of the signal and neither ART nor the
                  staging directory is left behind;
  HUP-IGNORED:    SIGHUP is ignored (as under nohup): the compile carries on
                  and writes ART, and no staging directory is left.

usage: interrupt_compile.py FALCON_COMPILE MODEL ART SIGNAL
Only the standard library is used.
"""
import glob
import os
import signal
import subprocess
import sys
import time

tool, model, art, mode = sys.argv[1:5]
ignored = mode.endswith("-IGNORED")
signum = getattr(signal, "SIG" + mode.split("-")[0])


def disposition():
    # The test runner may start us with signals ignored (a background job's
    # SIGINT): set the tested signal's disposition explicitly.
    signal.signal(signum, signal.SIG_IGN if ignored else signal.SIG_DFL)


proc = subprocess.Popen([tool, model, "-o", art, "--quiet"], preexec_fn=disposition)
staging = f"{art}.tmp-{proc.pid}"
deadline = time.time() + 60
while not os.path.isdir(staging):
    if proc.poll() is not None:
        sys.exit(f"FAIL: falcon-compile ended (rc {proc.returncode}) before {staging} appeared")
    if time.time() > deadline:
        proc.kill()
        sys.exit(f"FAIL: {staging} never appeared")
    time.sleep(0.005)
proc.send_signal(signum)
rc = proc.wait(timeout=120)
left = sorted(glob.glob(f"{art}*"))
if ignored:
    if rc != 0 or left != [art]:
        sys.exit(f"FAIL: exit code {rc}, left {left}; expected 0 and only {art}")
    print(f"{mode}: compile finished, artifact written, no staging left")
else:
    if rc != -signum:
        sys.exit(f"FAIL: exit code {rc}, expected death by SIG{mode} ({-signum})")
    if left:
        sys.exit(f"FAIL: left behind: {left}")
    print(f"SIG{mode}: died of the signal, nothing left behind")
