#!/usr/bin/env python3
"""Compares falcon-compile's pruning report (pruning.json) with a golden.json written by
tools/gen_pruning_golden.py (transformers' importance and selection).

  check_pruning.py PRUNING.json GOLDEN.json TOLERANCE

The removed heads and neurons of every layer must be the same, and every importance within
TOLERANCE of transformers' relative to the largest of its layer (f32 sums in another order).
Prints one line per check and exits 1 on the first difference. Standard library only.
"""
import json
import sys


def main():
    ours = json.load(open(sys.argv[1]))
    golden = json.load(open(sys.argv[2]))
    tolerance = float(sys.argv[3])
    if len(ours["layers"]) != len(golden["layers"]):
        print(f"FAIL: {len(ours['layers'])} layers, expected {len(golden['layers'])}")
        sys.exit(1)
    worst = 0.0
    for mine, theirs in zip(ours["layers"], golden["layers"]):
        for key in ("removed_heads", "removed_neurons"):
            if mine[key] != theirs[key]:
                print(f"FAIL: layer {mine['layer']} {key} {mine[key]}, expected {theirs[key]}")
                sys.exit(1)
        for key in ("head_importance", "neuron_importance"):
            scale = max(abs(x) for x in theirs[key]) or 1.0
            for a, b in zip(mine[key], theirs[key], strict=True):
                worst = max(worst, abs(a - b) / scale)
    print("selection: identical")
    verdict = "PASS" if worst <= tolerance else "FAIL"
    print(f"{verdict}: importance max relative difference {worst:.3g} (tolerance {tolerance:g})")
    sys.exit(0 if verdict == "PASS" else 1)


if __name__ == "__main__":
    main()
