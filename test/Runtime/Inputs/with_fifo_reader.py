"""Runs a command that writes into a FIFO while this script holds its read end.

with_fifo_reader.py FIFO OUT -- COMMAND...: creates the FIFO, opens its read
end without blocking (so that the command finds a reader from the start),
runs the command, then copies what it wrote (less than a pipe buffer) to OUT.
Exits with the command's status.
"""
import os
import subprocess
import sys

fifo, out, separator, *command = sys.argv[1:]
assert separator == "--", "usage: with_fifo_reader.py FIFO OUT -- COMMAND..."
os.mkfifo(fifo)
reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
status = subprocess.run(command).returncode
chunks = []
while True:
    try:
        chunk = os.read(reader, 65536)
    except BlockingIOError:
        break
    if not chunk:
        break
    chunks.append(chunk)
os.close(reader)
with open(out, "wb") as f:
    f.write(b"".join(chunks))
sys.exit(status)
