#!/usr/bin/env python3
"""Tokenizer encode throughput: the runtime's tokenizer against Hugging Face
`tokenizers`, one thread each (docs/benchmarks.md, docs/tokenizer.md).

usage (from the repository root, after building falcon-tokenizer-bench):
  /opt/goldenvenv/bin/python bench/bench_tokenizer.py [--tokenizer falcon]
      [--megabytes 10] [--runs 5]

The text is test/fixtures/tokenizer/corpus.txt repeated to --megabytes MB
(10^6 bytes), written to a temporary file. Both sides first encode it once
(each keeps a word cache, as a server would), then the two alternate --runs
times, each timing only the encode of the whole text inside its process:
  * build/bin/falcon-tokenizer-bench (falcon_tokenizer_encode);
  * tokenizers' Tokenizer.encode(text, add_special_tokens=False) with
    RAYON_NUM_THREADS=1 and TOKENIZERS_PARALLELISM=false;
  * tokenizers' encode_batch over the text's lines (its fast path for large
    inputs; the ids differ slightly where whitespace spans lines), same
    thread settings.
Ours and tokenizers' encode must produce the same number of ids (checked). Reported: medians in MB/s and
the ratio.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

from tokenizers import Tokenizer  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(ROOT, "build", "bin", "falcon-tokenizer-bench")
FIXTURES = os.path.join(ROOT, "test", "fixtures", "tokenizer")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokenizer", default="falcon",
                        help="a fixture name (falcon, gpt2) or a tokenizer.json path")
    parser.add_argument("--megabytes", type=float, default=10)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    path = args.tokenizer
    if not os.path.exists(path):
        path = os.path.join(FIXTURES, args.tokenizer, "tokenizer.json")

    with open(os.path.join(FIXTURES, "corpus.txt"), encoding="utf-8") as f:
        corpus = f.read()
    target = int(args.megabytes * 1e6)
    text = corpus * max(1, round(target / len(corpus.encode("utf-8"))))
    data = text.encode("utf-8")
    with tempfile.NamedTemporaryFile(suffix=".txt", delete=False) as f:
        f.write(data)
        text_path = f.name
    try:
        hf = Tokenizer.from_file(path)
        hf_ids = hf.encode(text, add_special_tokens=False).ids  # warm-up
        lines = text.splitlines(keepends=True)
        hf.encode_batch(lines, add_special_tokens=False)  # warm-up
        ours, theirs, batched = [], [], []
        for run in range(args.runs):
            out = subprocess.run([TOOL, path, text_path, "--runs", "1"], check=True,
                                 stdout=subprocess.PIPE, text=True).stdout.split()
            size, count, seconds = int(out[0]), int(out[1]), float(out[2])
            if count != len(hf_ids):
                sys.exit("id counts differ: falcon %d, tokenizers %d" % (count, len(hf_ids)))
            ours.append(size / seconds / 1e6)
            start = time.perf_counter()
            hf.encode(text, add_special_tokens=False)
            theirs.append(len(data) / (time.perf_counter() - start) / 1e6)
            start = time.perf_counter()
            hf.encode_batch(lines, add_special_tokens=False)
            batched.append(len(data) / (time.perf_counter() - start) / 1e6)
        ours_median, theirs_median = statistics.median(ours), statistics.median(theirs)
        batched_median = statistics.median(batched)
        print("text: %.1f MB (corpus.txt x %d), %d ids, tokenizer %s" % (
            len(data) / 1e6, len(text) // len(corpus), len(hf_ids), args.tokenizer))
        print("falcon_tokenizer_encode : %7.2f MB/s  (runs: %s)" % (
            ours_median, ", ".join("%.2f" % v for v in ours)))
        print("tokenizers 0.23 encode  : %7.2f MB/s  (runs: %s)" % (
            theirs_median, ", ".join("%.2f" % v for v in theirs)))
        print("tokenizers encode_batch : %7.2f MB/s  (runs: %s; %d lines)" % (
            batched_median, ", ".join("%.2f" % v for v in batched), len(lines)))
        print("ratio falcon / tokenizers encode: %.2fx, / encode_batch: %.2fx" % (
            ours_median / theirs_median, ours_median / batched_median))
    finally:
        os.unlink(text_path)


if __name__ == "__main__":
    main()
