#!/usr/bin/env python3
"""decode_lines.py TOOL TOKENIZER IDS OUT: runs `TOOL TOKENIZER --decode` on
each line of IDS and writes each text followed by "\\0\\n" to OUT (the
layout of the generator's random.txt)."""
import subprocess
import sys


def main():
    tool, tokenizer, ids_path, out_path = sys.argv[1:]
    with open(ids_path, "rb") as f, open(out_path, "wb") as out:
        for line in f:
            text = subprocess.run([tool, tokenizer, "--decode"], input=line,
                                  stdout=subprocess.PIPE, check=True).stdout
            out.write(text + b"\0\n")


if __name__ == "__main__":
    main()
