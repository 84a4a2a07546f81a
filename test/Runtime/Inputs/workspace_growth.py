"""Compares the workspace peaks falcon-run printed for two prompts, the second
FACTOR times longer, and fails unless the peak grew less than
1.5 x FACTOR (linear; n^2 attention scores would grow it FACTOR^2).
usage: workspace_growth.py SHORT_RUN_OUTPUT LONG_RUN_OUTPUT FACTOR"""
import re
import sys

short_path, long_path, factor = sys.argv[1], sys.argv[2], float(sys.argv[3])


def peak(path):
    match = re.search(r"workspace peak ([0-9.]+) MiB", open(path).read())
    if not match:
        sys.exit(f"FAIL: no workspace peak in {path}")
    return float(match.group(1))


ratio = peak(long_path) / peak(short_path)
if not ratio < 1.5 * factor:
    sys.exit(f"FAIL: the workspace grew {ratio:.1f}x for {factor:g}x the prompt")
print(f"linear: the workspace grew {ratio:.1f}x for {factor:g}x the prompt")
