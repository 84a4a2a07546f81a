#!/usr/bin/env python3
"""mutate_tokenizer.py SRC DST PATH=JSON ... : copies tokenizer.json SRC to DST
with each PATH (dotted keys and [index]es, e.g.
pre_tokenizer.pretokenizers[3].pattern) set to the JSON value, or deleted
for the value DELETE."""
import json
import re
import sys


def main():
    source, destination, *edits = sys.argv[1:]
    with open(source, encoding="utf-8") as f:
        root = json.load(f)
    for edit in edits:
        path, value = edit.split("=", 1)
        steps = [int(s[1:-1]) if s.startswith("[") else s
                 for s in re.findall(r"\[\d+\]|[^.\[\]]+", path)]
        node = root
        for step in steps[:-1]:
            node = node[step]
        if value == "DELETE":
            del node[steps[-1]]
        else:
            node[steps[-1]] = json.loads(value)
    with open(destination, "w", encoding="utf-8") as f:
        json.dump(root, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
