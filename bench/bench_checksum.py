#!/usr/bin/env python3
"""Weights checksum throughput against the page-cache read rate, in one
script (docs/benchmarks.md).

usage (from the repository root, after building falcon-checksum-file):
  python3 bench/bench_checksum.py [--file /tmp/falcon-checksum-bench.bin]
      [--size-gib 2] [--runs 7] [--threads 0]

It writes --size-gib GiB of random bytes to --file (kept for the next run if
it has the right size), reads it once to bring it into the page cache, then
alternates, --runs times:
  * the page-cache read rate: `cat FILE > /dev/null` and
    `dd if=FILE of=/dev/null bs=1M`, each timed around the process; the
    faster of the two medians is the reference;
  * the checksum as the runtime verifies weights.bin: build/bin/
    falcon-checksum-file (map, MADV_SEQUENTIAL, XXH3 chunks on --threads
    threads, unmap), timed inside the process and around it;
  * the same on one thread, for scale.
Reported: medians in GB/s (10^9 bytes/s) and the checksum's share of the
reference. The target is at least 80 %.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(ROOT, "build", "bin", "falcon-checksum-file")


def timed(cmd, **kwargs):
    start = time.perf_counter()
    result = subprocess.run(cmd, check=True, **kwargs)
    return time.perf_counter() - start, result


def make_file(path, size):
    if os.path.exists(path) and os.path.getsize(path) == size:
        return
    block = 64 << 20
    with open(path, "wb") as f:
        for offset in range(0, size, block):
            f.write(os.urandom(min(block, size - offset)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--file", default="/tmp/falcon-checksum-bench.bin")
    parser.add_argument("--size-gib", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0,
                        help="checksum threads (0: one per hardware thread)")
    args = parser.parse_args()
    if not os.path.exists(TOOL):
        sys.exit(f"{TOOL} not found: ninja -C build falcon-checksum-file")
    size = int(args.size_gib * (1 << 30))
    make_file(args.file, size)

    def checksum(threads):
        wall, result = timed([TOOL, args.file, "--threads", str(threads), "--time"],
                             capture_output=True, text=True)
        spelling, inside = result.stdout.split()
        return spelling, float(inside), wall

    # Warm the page cache (and check the checksum is stable).
    subprocess.run(["cat", args.file], check=True, stdout=subprocess.DEVNULL)
    expected = checksum(args.threads)[0]

    cat, dd, inside, wall, single = [], [], [], [], []
    for _ in range(args.runs):
        cat.append(timed(["cat", args.file], stdout=subprocess.DEVNULL)[0])
        spelling, seconds, seconds_wall = checksum(args.threads)
        if spelling != expected:
            sys.exit(f"checksum changed between runs: {expected} then {spelling}")
        inside.append(seconds)
        wall.append(seconds_wall)
        dd.append(timed(["dd", f"if={args.file}", "of=/dev/null", "bs=1M"],
                        stderr=subprocess.DEVNULL)[0])
        single.append(checksum(1)[1])

    def rate(samples):
        return size / statistics.median(samples) / 1e9

    reference = max(rate(cat), rate(dd))
    print(f"file: {args.file}, {size} bytes ({size / (1 << 30):.2f} GiB), "
          f"{args.runs} runs, {os.cpu_count()} CPUs, checksum {expected}")
    print(f"page-cache read, cat:                 {rate(cat):6.2f} GB/s")
    print(f"page-cache read, dd bs=1M:            {rate(dd):6.2f} GB/s")
    threads = args.threads or os.cpu_count()
    for label, samples in [
            (f"checksum, {threads} threads (in process)", inside),
            (f"checksum, {threads} threads (wall)", wall),
            ("checksum, 1 thread (in process)", single)]:
        print(f"{label + ':':38s}{rate(samples):6.2f} GB/s  "
              f"{100 * rate(samples) / reference:5.1f} % of the read rate")


if __name__ == "__main__":
    main()
