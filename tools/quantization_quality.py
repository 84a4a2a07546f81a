#!/usr/bin/env python3
"""What weight-only quantization costs in quality, on a trained model (standard library only).

usage: quantization_quality.py MODEL WORKDIR [--windows N] [--check] [--decode-path]
       [--scheme "FALCON-COMPILE ARGS"]...

A scheme whose first word is @DIR compiles the checkpoint DIR (another encoding of MODEL, e.g.
tools/gptq_quantize.py's GPTQ checkpoint) with the rest of its arguments, against MODEL's f32.

Compiles MODEL (a checkpoint directory with tokenizer.json, by default
examples/falcon-mini) once in f32 and once per scheme (default: int8 and int4
at groups of 128 and 32, symmetric and asymmetric), with falcon-compile and
falcon-run from PATH, and for each reports:
  * the perplexity of MODEL/heldout.txt (falcon-run --perplexity: consecutive
    windows of max_position_embeddings tokens);
  * top-1 agreement with f32: the share of positions, over the first N
    windows of max_position_embeddings - 1 held-out tokens, whose most likely
    next token is f32's;
  * the largest |logit - f32 logit| over those positions.
Prints a markdown table. With --check, exits non-zero unless every int8
scheme keeps perplexity within 1% and top-1 agreement at least 97%, and every
int4 scheme within 10% and 85%; --dtype bf16 as int8, --dtype f16 within 0.2% and 99% (the bounds test/Parity/quantized-quality.test
asserts; docs/precision.md gives the measured figures).

--decode-path measures the decode path instead (where --int8-activations applies): every
artifact, f32 included, is compiled with --tile-rows 64, so that windows of 63 tokens run the
decode projections on all their rows; perplexity is then computed here from those windows'
logits (each window a fresh context of 63 tokens, so it is higher than over 256), over the
first N windows (default 16). The default schemes are int8 and int4 (groups of 128 and 32),
each with --int8-activations=off and on.
"""
import argparse
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test",
                                "Parity", "Inputs"))
from check_parity import load_npy  # noqa: E402

DEFAULT_SCHEMES = ["--quantize int8", "--quantize int8 --symmetric",
                   "--quantize int4", "--quantize int4 --symmetric",
                   "--quantize int4 --group-size 32", "--quantize int4 --group-size 32 --symmetric"]
DECODE_SCHEMES = [f"{s} --int8-activations={a}"
                  for s in ("--quantize int8", "--quantize int4", "--quantize int4 --group-size 32")
                  for a in ("off", "on")]
# (largest |perplexity change|, smallest top-1 agreement). --dtype rounds the projections'
# inputs instead of the weights: bf16 keeps 8 significant bits, about int8's relative error,
# so int8's bounds; f16 keeps 11, so tighter ones.
BOUNDS = {"int8": (0.01, 0.97), "int4": (0.10, 0.85), "bf16": (0.01, 0.97), "f16": (0.002, 0.99)}


def run(command):
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"FAIL: {' '.join(command)} exited {result.returncode}:\n"
                 f"{result.stdout}{result.stderr}")
    return result.stdout


def perplexity(artifact, text):
    out = run(["falcon-run", artifact, "--perplexity", text])
    match = re.search(r"perplexity: ([0-9.eE+-]+)", out)
    if not match:
        sys.exit(f"FAIL: no perplexity in {out!r}")
    return float(match.group(1))


def window_logits(artifact, windows, workdir, tag):
    rows = []
    for index, ids in enumerate(windows):
        out = os.path.join(workdir, f"{tag}.{index}.npy")
        run(["falcon-run", artifact, "--prompt-ids", ",".join(map(str, ids)),
             "--max-new-tokens", "0", "--logits-out", out])
        rows.extend(load_npy(out))
    return rows


def argmax(row):
    return max(range(len(row)), key=row.__getitem__)


def window_perplexity(logits, windows):
    """exp(mean -log p(next token)) over the windows' positions but each window's last."""
    import math
    total, count, row = 0.0, 0, 0
    for ids in windows:
        for j in range(len(ids)):
            if j + 1 < len(ids):
                values = logits[row]
                top = max(values)
                log_sum = top + math.log(sum(math.exp(v - top) for v in values))
                total += log_sum - values[ids[j + 1]]
                count += 1
            row += 1
    return math.exp(total / count)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model", nargs="?", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "examples", "falcon-mini"))
    parser.add_argument("workdir")
    parser.add_argument("--windows", type=int)
    parser.add_argument("--scheme", action="append", default=[])
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--decode-path", action="store_true")
    args = parser.parse_args()
    schemes = args.scheme or (DECODE_SCHEMES if args.decode_path else DEFAULT_SCHEMES)
    if args.windows is None:
        args.windows = 16 if args.decode_path else 4
    extra = ["--tile-rows", "64"] if args.decode_path else []
    os.makedirs(args.workdir, exist_ok=True)
    text = os.path.join(args.model, "heldout.txt")
    import json
    with open(os.path.join(args.model, "config.json")) as f:
        positions = json.load(f)["max_position_embeddings"]
    with open(text, "rb") as f:
        ids = [int(i) for i in subprocess.run(["falcon-tokenize", args.model], input=f.read(),
                                              capture_output=True, check=True).stdout.split()]
    width = 63 if args.decode_path else positions - 1
    windows = [ids[i * width:(i + 1) * width] for i in range(args.windows)
               if (i + 1) * width <= len(ids)]

    results = []
    reference = None
    for tag, scheme in [("f32", "")] + [(f"s{i}", s) for i, s in enumerate(schemes)]:
        artifact = os.path.join(args.workdir, tag + ".artifact")
        run(["rm", "-rf", artifact])
        words = scheme.split()
        source = args.model
        if words and words[0].startswith("@"):
            source, words = words[0][1:], words[1:]
        run(["falcon-compile", source, "-o", artifact, "--quiet"] + extra + words)
        size = os.path.getsize(os.path.join(artifact, "weights.bin"))
        logits = window_logits(artifact, windows, args.workdir, tag)
        ppl = window_perplexity(logits, windows) if args.decode_path else perplexity(artifact, text)
        if reference is None:
            reference = logits
            top1, worst = 1.0, 0.0
        else:
            agree = sum(argmax(a) == argmax(b) for a, b in zip(logits, reference))
            top1 = agree / len(reference)
            worst = max(abs(x - y) for a, b in zip(logits, reference) for x, y in zip(a, b))
        results.append((scheme or "f32", size, ppl, top1, worst))
        print(f"{scheme or 'f32'}: perplexity {ppl:.3f}, top-1 {top1:.4f}", file=sys.stderr)

    f32_ppl = results[0][2]
    kind = "perplexity over windows of 63 (decode path)" if args.decode_path else "perplexity"
    print(f"| falcon-compile | weights.bin | held-out {kind} | vs f32 | top-1 agreement with f32 "
          f"({len(reference)} positions) | max abs logit error |")
    print("|---|---:|---:|---:|---:|---:|")
    failed = []
    for scheme, size, ppl, top1, worst in results:
        change = ppl / f32_ppl - 1
        print(f"| `{scheme}` | {size / 2**20:.2f} MiB | {ppl:.3f} | {change:+.2%} | {top1:.2%} "
              f"| {worst:.3g} |")
        quantize = (re.search(r"--quantize[ =](int8|int4)", scheme) or
                    re.search(r"--dtype[ =](bf16|f16)", scheme))
        bits = quantize.group(1) if quantize else None
        if bits and (abs(change) > BOUNDS[bits][0] or top1 < BOUNDS[bits][1]):
            failed.append(f"{scheme}: perplexity {change:+.2%}, top-1 {top1:.2%} outside "
                          f"{BOUNDS[bits][0]:.0%} / {BOUNDS[bits][1]:.0%}")
    if args.check:
        if failed:
            sys.exit("FAIL: " + "; ".join(failed))
        print("every scheme within its bounds")


if __name__ == "__main__":
    main()
