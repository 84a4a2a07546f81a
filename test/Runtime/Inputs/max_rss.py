"""Runs a command and fails unless it succeeded with a peak resident set
below LIMIT_MIB. usage: max_rss.py LIMIT_MIB -- COMMAND..."""
import resource
import subprocess
import sys

limit, separator, *command = sys.argv[1:]
assert separator == "--", "usage: max_rss.py LIMIT_MIB -- COMMAND..."
status = subprocess.run(command).returncode
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
if status != 0:
    sys.exit(f"FAIL: exit code {status}")
if peak >= float(limit):
    sys.exit(f"FAIL: peak resident set {peak:.1f} MiB, expected below {limit} MiB")
print(f"peak resident set below {limit} MiB")
