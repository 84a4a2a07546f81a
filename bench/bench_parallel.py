#!/usr/bin/env python3
"""Parallel plans on this machine: sharded loading and tp x pp speed.

usage:
  bench_parallel.py load  [--layers 2] [--runs 3] [--work DIR]
  bench_parallel.py speed [--runs 3] [--work DIR]

load: a falcon-40b-shaped checkpoint (hidden 8192, 128 heads, 8 KV heads,
ffn 32768, vocab 65024, bf16) cut to --layers layers is compiled for tp 1, 2
and 4. Each plan is opened under mpirun (every rank maps and checksums only
its own weights.rankR.bin, all ranks at once; one rank on its own) and each
rank reports how long falcon_model_open spent mapping its weights and
checksumming every byte of them (MPI's start-up is not counted), and the
bytes. The peer: the page-cache read rate of this
machine, measured in the same run by reading the tp 1 weight file (cached)
with one thread into one reused buffer.
The figure is load time / (bytes of the largest rank / read rate): 1.0 means
a rank loads its share as fast as one thread reads the same bytes from the
page cache. The principle is the seed's 42 -> 9 minutes for falcon-180B:
each rank reads 1/N of the bytes, in parallel.

speed: the tiny fixtures are too small to time, so a falcon-7b-shaped model
(hidden 1024, 16 heads, 1 KV head, 4 layers, vocab 16384, f32) is compiled
for tp x pp in {1x1, 2x1, 1x2, 2x2} and run with 64 prompt tokens and 32 new
tokens, one OpenMP thread per rank, plans alternated run by run, medians
reported: prefill and decode tokens/s and rank 0's time in collectives per
generated token. This machine has 2 cores: more ranks than cores only add
overhead; the table shows that overhead, not a speed-up. Then pp 2 with a
batch of 4 rows, 1, 2 and 4 micro-batches: the prefill time shows the
stages overlapping.

Needs numpy (bench/make_model.py --numpy), mpirun and build/bin on PATH.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none"]


def sh(command, **kwargs):
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, **kwargs)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout}")
    return result.stdout


def make_checkpoint(config, directory):
    if os.path.exists(os.path.join(directory, "model.safetensors")):
        return
    # make_model.py writes a new directory next to the config it reads.
    os.makedirs(os.path.dirname(directory), exist_ok=True)
    path = directory + ".config.json"
    with open(path, "w") as f:
        json.dump(config, f)
    dtype = "bfloat16" if config.get("torch_dtype") == "bfloat16" else "float32"
    sh([sys.executable, os.path.join(HERE, "make_model.py"), path, directory,
        "--dtype", dtype, "--numpy"])


def compile_plan(checkpoint, artifact, tp, pp):
    if not os.path.exists(os.path.join(artifact, "manifest.json")):
        sh(["falcon-compile", checkpoint, "-o", artifact, "--quiet",
            "--tp", str(tp), "--pp", str(pp), "--parallel-chunks", "1"])


def run(artifact, ranks, arguments):
    command = ["falcon-run", artifact] + arguments
    if ranks > 1:
        command = MPIRUN + ["-np", str(ranks)] + command
    return sh(command, env=dict(os.environ, OMP_NUM_THREADS="1"))


def page_cache_rate(path):
    """Bytes per second one thread reads `path` from the page cache."""
    with open(path, "rb") as f:  # warm the cache
        while f.read(64 << 20):
            pass
    buffer = bytearray(64 << 20)
    view = memoryview(buffer)
    start = time.perf_counter()
    total = 0
    with open(path, "rb", buffering=0) as f:
        while True:
            count = f.readinto(view)
            if not count:
                break
            total += count
    return total / (time.perf_counter() - start)


def load(args):
    config = {"architectures": ["FalconForCausalLM"], "model_type": "falcon",
              "hidden_size": 8192, "num_attention_heads": 128, "num_kv_heads": 8,
              "num_hidden_layers": args.layers, "vocab_size": 65024,
              "ffn_hidden_size": 32768, "new_decoder_architecture": True,
              "parallel_attn": True, "bias": False, "alibi": False,
              "tie_word_embeddings": False, "layer_norm_epsilon": 1e-5,
              "torch_dtype": "bfloat16"}
    checkpoint = os.path.join(args.work, f"falcon-40b-{args.layers}l")
    make_checkpoint(config, checkpoint)
    plans = [1, 2, 4]
    for tp in plans:
        compile_plan(checkpoint, os.path.join(args.work, f"load-tp{tp}"), tp, 1)
    single = os.path.join(args.work, "load-tp1", "weights.bin")
    rates, times = [], {tp: [] for tp in plans}
    sizes = {}
    for _ in range(args.runs):
        rates.append(page_cache_rate(single))
        for tp in plans:  # alternated run by run
            artifact = os.path.join(args.work, f"load-tp{tp}")
            # The weights' part of the open (MPI's start-up is not loading).
            # mpirun can drop the last stderr line of a rank that exits at
            # once: a run missing a report is run again.
            for _attempt in range(3):
                output = run(artifact, tp, ["--prompt-ids", "1", "--max-new-tokens", "0"])
                opened = [(float(t), int(b)) for b, t in re.findall(
                    r"opened in [0-9.]+ s, (\d+) bytes of weights verified in ([0-9.]+) s",
                    output)]
                if len(opened) == tp:
                    break
            else:
                sys.exit(f"expected {tp} open reports:\n{output}")
            times[tp].append(max(t for t, _ in opened))
            sizes[tp] = max(b for _, b in opened)
    rate = statistics.median(rates)
    print(f"page-cache read rate (1 thread): {rate / 2**30:.2f} GiB/s (median of {args.runs})")
    print("| tp | bytes per rank | load time (slowest rank, median) | bytes / read rate | ratio "
          "| all ranks together |")
    print("| --- | --- | --- | --- | --- | --- |")
    for tp in plans:
        seconds = statistics.median(times[tp])
        ideal = sizes[tp] / rate
        print(f"| {tp} | {sizes[tp]:,} | {seconds:.3f} s | {ideal:.3f} s | {seconds / ideal:.2f} "
              f"| {tp * sizes[tp] / seconds / 2**30:.1f} GiB/s |")


def speed(args):
    config = {"architectures": ["FalconForCausalLM"], "model_type": "falcon",
              "hidden_size": 1024, "num_attention_heads": 16, "num_kv_heads": 1,
              "num_hidden_layers": 4, "vocab_size": 16384, "ffn_hidden_size": 4096,
              "new_decoder_architecture": False, "multi_query": True,
              "parallel_attn": True, "bias": False, "alibi": False,
              "tie_word_embeddings": True, "layer_norm_epsilon": 1e-5}
    checkpoint = os.path.join(args.work, "falcon-7b-shaped")
    make_checkpoint(config, checkpoint)
    plans = [(1, 1), (2, 1), (1, 2), (2, 2)]
    for tp, pp in plans:
        compile_plan(checkpoint, os.path.join(args.work, f"speed-tp{tp}-pp{pp}"), tp, pp)
    prompt = ",".join(str(7 * i % 16384) for i in range(1, 65))
    pattern = {key: re.compile(rf"{key}: \d+ tokens in [0-9.]+ ms \(([0-9.]+) tokens/s\)")
               for key in ("prefill", "decode")}
    collective = re.compile(r"(\d+) all-reduces in ([0-9.]+) ms, transfers ([0-9.]+) ms")
    results = {plan: {"prefill": [], "decode": [], "collective": []} for plan in plans}
    new_tokens = 32
    for _ in range(args.runs):
        for tp, pp in plans:  # alternated run by run
            output = run(os.path.join(args.work, f"speed-tp{tp}-pp{pp}"), tp * pp,
                         ["--prompt-ids", prompt, "--max-new-tokens", str(new_tokens)])
            for key in ("prefill", "decode"):
                results[(tp, pp)][key].append(float(pattern[key].search(output).group(1)))
            match = collective.search(output)
            per_token = 0.0
            if match:
                per_token = (float(match.group(2)) + float(match.group(3))) / (64 + new_tokens)
            results[(tp, pp)]["collective"].append(per_token)
    print("| plan | prefill tokens/s | decode tokens/s | rank 0 in collectives, ms per token |")
    print("| --- | --- | --- | --- |")
    for tp, pp in plans:
        r = results[(tp, pp)]
        print(f"| tp {tp} x pp {pp} | {statistics.median(r['prefill']):.0f} | "
              f"{statistics.median(r['decode']):.0f} | {statistics.median(r['collective']):.3f} |")

    # Micro-batches: pp 2, 4 rows.
    artifact = os.path.join(args.work, "speed-tp1-pp2")
    counts = [1, 2, 4]
    prefill = {count: [] for count in counts}
    for _ in range(args.runs):
        for count in counts:
            output = run(artifact, 2, sum([["--prompt-ids", prompt] for _ in range(4)], []) +
                         ["--max-new-tokens", "1", "--micro-batches", str(count)])
            prefill[count].append(float(re.search(r"prefill: \d+ tokens in ([0-9.]+) ms",
                                                  output).group(1)))
    print("| pp 2, batch 4: micro-batches | prefill ms (median) |")
    print("| --- | --- |")
    for count in counts:
        print(f"| {count} | {statistics.median(prefill[count]):.1f} |")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["load", "speed"])
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", default="/tmp/falcon-bench-parallel")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    (load if args.what == "load" else speed)(args)


if __name__ == "__main__":
    main()
