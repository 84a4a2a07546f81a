#!/usr/bin/env python3
"""Kills one rank of a multi-rank falcon-run mid-decode and times the job.

kill_rank.py ARTIFACT RANKS VICTIM

Starts `mpirun -np RANKS falcon-run ARTIFACT` on a long greedy generation,
waits until every rank is decoding (a second after the job's processes
appear), kills rank VICTIM's process with SIGKILL, and checks that the whole
job ends, non-zero, within 10 seconds (never a hang). Prints the seconds it
took and mpirun's exit code.
"""
import os
import signal
import subprocess
import sys
import time


def rank_pids():
    """falcon-run processes started by this mpirun: {rank: pid}."""
    found = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm == "falcon-run" and env.get(b"FALCON_KILL_TEST") == str(os.getpid()).encode():
            found[int(env[b"OMPI_COMM_WORLD_RANK"])] = int(pid)
    return found


def main():
    artifact, ranks, victim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    env = dict(os.environ, FALCON_KILL_TEST=str(os.getpid()))
    job = subprocess.Popen(
        ["mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none",
         "-x", "FALCON_KILL_TEST", "-np", str(ranks), "falcon-run", artifact,
         "--prompt-ids", "1,2,3", "--max-new-tokens", "19000",
         "--cache-capacity", "20000", "--num-threads", "1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60
    pids = {}
    while len(pids) < ranks and time.time() < deadline and job.poll() is None:
        time.sleep(0.2)
        pids = rank_pids()
    if len(pids) < ranks:
        job.kill()
        sys.exit(f"FAIL: only ranks {sorted(pids)} started: {job.communicate()[0]}")
    time.sleep(2)  # well into the decode loop
    if job.poll() is not None:
        sys.exit(f"FAIL: the job ended before the kill: {job.communicate()[0]}")
    killed = time.time()
    os.kill(pids[victim], signal.SIGKILL)
    try:
        output, _ = job.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        job.kill()
        sys.exit("FAIL: the job still ran 10 s after rank %d was killed" % victim)
    seconds = time.time() - killed
    print(output)
    print(f"job ended {seconds:.1f} s after rank {victim} was killed, exit code {job.returncode}")
    if job.returncode == 0:
        sys.exit("FAIL: the job exited 0")


if __name__ == "__main__":
    main()
