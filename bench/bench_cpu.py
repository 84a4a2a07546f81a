#!/usr/bin/env python3
"""CPU benchmark: falcon-mlir beside transformers, the memory-bandwidth limit
and oneDNN's sgemm rate, in one script (docs/benchmarks.md).

usage (from the repository root, with the golden-data venv of tools/README.md):
  /opt/goldenvenv/bin/python bench/bench_cpu.py [--config examples/configs/falcon-rw-1b/config.json]
      [--work /work/bench-models] [--threads 2] [--prompt-len 128] [--decode-tokens 32] [--runs 3]
      [--baseline-build DIR] [--variant "FALCON-COMPILE ARGS"]... [--no-peer]

It creates a random-weight f32 checkpoint of the config (bench/make_model.py),
compiles it with build/bin/falcon-compile, and measures, each a median over
--runs:
  * falcon-mlir: falcon-run's prefill tokens/s (the whole prompt) and decode
    tokens/s (batch 1);
  * transformers on torch CPU, same weights, same thread count: one forward
    over the prompt, then greedy decode steps with the KV cache;
  * the read bandwidth of this machine (torch sum over 1 GiB) and the decode
    limit it implies: weight bytes streamed per token / bandwidth (for each
    artifact its own weights.bin but the embedding table, of which decode
    reads one row: a --variant "--quantize int4" streams less);
  * oneDNN's sgemm on the prefill's projection shapes (build/bin/onednn-sgemm)
    and the prefill rate those GEMMs alone would allow.

Comparing builds: --baseline-build DIR (another build directory, e.g. of an
older commit's worktree) compiles the same checkpoint with DIR/bin/falcon-compile
into its own artifact, run only by DIR/bin/falcon-run; each --variant ARGS adds
an artifact of this build compiled with those extra falcon-compile arguments.
The artifacts' falcon-run processes then alternate run by run (the order
rotating each round), so that a shared machine's load falls on all of them
alike; each gets one untimed warm-up run, and the table gives medians with the
spread (min-max) of --runs runs.

--no-peer skips transformers and oneDNN; transformers is also skipped (with a
message) when torch is not importable, oneDNN when build/bin/onednn-sgemm was
not built, and the bandwidth is then a numpy sum (one thread per --threads over
its share of the 1 GiB). The checkpoint needs only numpy without torch
(bench/make_model.py).
"""
import argparse
import importlib.util
import json
import os
import re
import statistics
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "bin")


def run(cmd, env=None):
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.exit(f"command failed: {' '.join(cmd)}\n{result.stdout}{result.stderr}")
    return result.stdout


def falcon_run(bin_dir, artifact, ids, new_tokens, env):
    out = run([os.path.join(bin_dir, "falcon-run"), artifact, "--prompt-ids", ids,
               "--max-new-tokens", str(new_tokens + 1), "--verify-checksum=false"], env)
    rates = []
    for phase in ("prefill", "decode"):  # tokens / ms: the printed rate has one decimal
        tokens, ms = re.search(phase + r": ([0-9]+) tokens in ([0-9.]+) ms", out).groups()
        rates.append(int(tokens) / float(ms) * 1e3)
    return tuple(rates)


def ours(artifacts, prompt, new_tokens, threads, runs):
    """artifacts: [(bin_dir, artifact)]; per artifact, the prefill and decode
    tokens/s of --runs runs, the artifacts alternating run by run."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    ids = ",".join(map(str, prompt))
    for bin_dir, artifact in artifacts:  # one run each warms the page cache
        falcon_run(bin_dir, artifact, ids, new_tokens, env)
    prefill, decode = [[] for _ in artifacts], [[] for _ in artifacts]
    for r in range(runs):
        for k in range(len(artifacts)):
            i = (r + k) % len(artifacts)
            p, d = falcon_run(*artifacts[i], ids, new_tokens, env)
            prefill[i].append(p)
            decode[i].append(d)
    return prefill, decode


def transformers_cpu(model_dir, prompt, new_tokens, threads, runs):
    import torch
    from transformers import FalconForCausalLM
    torch.set_num_threads(threads)
    model = FalconForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
    model.eval()
    ids = torch.tensor([prompt])
    prefill, decode = [], []
    with torch.no_grad():
        for _ in range(runs + 1):
            start = time.perf_counter()
            out = model(ids, use_cache=True)
            prefill.append(len(prompt) / (time.perf_counter() - start))
            past = out.past_key_values
            token = out.logits[:, -1:].argmax(-1)
            start = time.perf_counter()
            for _ in range(new_tokens):
                out = model(token, past_key_values=past, use_cache=True)
                past = out.past_key_values
                token = out.logits[:, -1:].argmax(-1)
            decode.append(new_tokens / (time.perf_counter() - start))
    return statistics.median(prefill[1:]), statistics.median(decode[1:])


def bandwidth(threads, runs):
    try:
        import torch
    except ImportError:
        return bandwidth_numpy(threads, runs), "numpy"
    torch.set_num_threads(threads)
    x = torch.ones(1 << 28)  # 1 GiB of float32
    rates = []
    for _ in range(runs + 2):
        start = time.perf_counter()
        x.sum()
        rates.append(x.numel() * 4 / (time.perf_counter() - start))
    return statistics.median(rates[1:]), "torch"


def bandwidth_numpy(threads, runs):
    import numpy as np
    x = np.ones(1 << 28, dtype=np.float32)  # 1 GiB; numpy's sum releases the GIL
    parts = np.array_split(x, threads)
    rates = []
    with ThreadPoolExecutor(threads) as pool:
        for _ in range(runs + 2):
            start = time.perf_counter()
            list(pool.map(np.sum, parts))
            rates.append(x.nbytes / (time.perf_counter() - start))
    return statistics.median(rates[1:])


def gemm_shapes(config, m):
    h = config.get("hidden_size") or config["n_embed"]
    heads = config.get("num_attention_heads") or config["n_head"]
    d = h // heads
    f = config.get("ffn_hidden_size") or 4 * h
    if config.get("new_decoder_architecture"):
        qkv = (heads + 2 * config["num_kv_heads"]) * d
    elif config.get("multi_query", True):
        qkv = h + 2 * d
    else:
        qkv = 3 * h
    layer = [(m, h, qkv), (m, h, h), (m, h, f), (m, f, h)]
    # The prefill's LM head runs on the last position alone (falcon-run's
    # default, logit_positions in docs/artifact-format.md).
    return layer, (1, h, config["vocab_size"])


def onednn_prefill_rate(config, prompt_len, threads, runs):
    layer, head = gemm_shapes(config, prompt_len)
    shapes = layer + [head]
    out = run([os.path.join(BIN, "onednn-sgemm"), str(runs)] +
              [",".join(map(str, s)) for s in shapes],
              dict(os.environ, OMP_NUM_THREADS=str(threads)))
    seconds = {}
    for line in out.splitlines():
        shape, median, _ = line.split()
        seconds[tuple(int(x) for x in shape.split(","))] = float(median)
    layers = config.get("num_hidden_layers") or config["n_layer"]
    total = layers * sum(seconds[s] for s in layer) + seconds[head]
    flops = 2 * sum(a * b * c for a, b, c in layer) * layers + 2 * head[0] * head[1] * head[2]
    return prompt_len / total, flops / total / 1e9


def spread(values, digits):
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def drop_from_page_cache(path):
    """So that the artifacts, not the checkpoint they were compiled from, stay cached."""
    for name in os.listdir(path):
        fd = os.open(os.path.join(path, name), os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=os.path.join(ROOT, "examples/configs/falcon-rw-1b/config.json"))
    parser.add_argument("--work", default="/work/bench-models")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prompt-len", type=int, default=128)
    parser.add_argument("--decode-tokens", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline-build", metavar="DIR",
                        help="another build directory, compiled and run alternately with this one's")
    parser.add_argument("--variant", action="append", default=[], metavar="ARGS",
                        help="also this build with these extra falcon-compile arguments (repeatable)")
    parser.add_argument("--no-peer", action="store_true", help="skip transformers and oneDNN")
    args = parser.parse_args()

    config = json.load(open(args.config))
    name = os.path.basename(os.path.dirname(os.path.abspath(args.config)))
    model_dir = os.path.join(args.work, f"{name}-f32")
    artifact = os.path.join(args.work, f"{name}-f32.artifact")
    run([sys.executable, os.path.join(ROOT, "bench/make_model.py"), args.config, model_dir])
    # (label, bin directory, artifact, extra falcon-compile arguments)
    builds = [("current", BIN, artifact, [])]
    if args.baseline_build:
        builds.insert(0, ("baseline", os.path.join(os.path.abspath(args.baseline_build), "bin"),
                          os.path.join(args.work, f"{name}-f32.baseline.artifact"), []))
    for i, extra in enumerate(args.variant):
        builds.append((f"current {extra}", BIN, os.path.join(args.work, f"{name}-f32.variant{i + 1}.artifact"),
                       shlex.split(extra)))
    compile_seconds = []
    for _, bin_dir, path, extra in builds:
        start = time.perf_counter()
        run([os.path.join(bin_dir, "falcon-compile"), model_dir, "-o", path, "--quiet"] + extra)
        compile_seconds.append(time.perf_counter() - start)
    compile_seconds = dict(zip([b[0] for b in builds], compile_seconds))
    if len(builds) > 1:
        drop_from_page_cache(model_dir)
    vocab = config["vocab_size"]
    hidden = config.get("hidden_size") or config["n_embed"]
    params = int(run([os.path.join(BIN, "falcon-compile"), args.config, "--print-stats"])
                 .split("parameters: ")[1].split()[0])
    # Decode streams every weight once per token, except the embedding table,
    # of which it reads one row (a tied head reads the table as the head).
    tied = config.get("tie_word_embeddings", True)
    streamed = 4 * (params - (0 if tied else vocab * hidden))

    prompt = [(7 * i + 3) % vocab for i in range(args.prompt_len)]
    prefill, decode = ours([(b[1], b[2]) for b in builds], prompt, args.decode_tokens, args.threads, args.runs)
    current = [b[0] for b in builds].index("current")
    our_prefill, our_decode = statistics.median(prefill[current]), statistics.median(decode[current])
    hf_prefill = hf_decode = None
    if args.no_peer:
        pass
    elif importlib.util.find_spec("torch") is None:
        print("transformers skipped: torch is not importable", file=sys.stderr)
    else:
        hf_prefill, hf_decode = transformers_cpu(model_dir, prompt, args.decode_tokens, args.threads, args.runs)
    bw, bw_how = bandwidth(args.threads, args.runs)
    dnnl_prefill = None
    if args.no_peer:
        pass
    elif not os.path.exists(os.path.join(BIN, "onednn-sgemm")):
        print("oneDNN skipped: build/bin/onednn-sgemm was not built (apt install libdnnl-dev)", file=sys.stderr)
    else:
        dnnl_prefill, dnnl_gflops = onednn_prefill_rate(config, args.prompt_len, args.threads, args.runs)

    print(f"model {name}: {params} parameters, f32, {streamed / 2**30:.2f} GiB streamed per decoded token;"
          f" {args.threads} threads; prompt {args.prompt_len}; {args.decode_tokens} decode steps;"
          f" medians of {args.runs} runs; compile {compile_seconds['current']:.1f} s")
    decode_limit = bw / streamed
    if len(builds) > 1:
        print()
        print(f"read bandwidth {bw / 1e9:.1f} GB/s ({bw_how} sum over 1 GiB, {args.threads} threads):"
              f" decode limit {decode_limit:.2f} tokens/s")
        print()
        print("| build | falcon-compile s | prefill tokens/s, median (min-max) | decode tokens/s, median (min-max) |"
              " GiB streamed per token | decode of its limit | prefill vs current | decode vs current |")
        print("|---|---|---|---|---|---|---|---|")
        for i, (label, bin_dir, path, _) in enumerate(builds):
            where = os.path.dirname(bin_dir) if label == "baseline" else ""
            # Each artifact's own limit: its weights.bin (quantized or not)
            # but the embedding table, of which decode reads one row (f32).
            own = os.path.getsize(os.path.join(path, "weights.bin")) - 4 * vocab * hidden
            print(f"| {label}{f' ({where})' if where else ''} | {compile_seconds[label]:.1f} |"
                  f" {spread(prefill[i], 1)} | {spread(decode[i], 2)} | {own / 2**30:.2f} |"
                  f" {statistics.median(decode[i]) / (bw / own):.0%} |"
                  f" {statistics.median(prefill[i]) / our_prefill:.3f} | {statistics.median(decode[i]) / our_decode:.3f} |")
        print()
        print("runs (alternating, prefill / decode tokens/s):")
        for i, (label, _, _, _) in enumerate(builds):
            print(f"  {label}: " + ", ".join(f"{p:.1f}/{d:.2f}" for p, d in zip(prefill[i], decode[i])))
    if hf_prefill is None and dnnl_prefill is None:
        if len(builds) == 1:
            print(f"falcon-mlir: prefill {our_prefill:.1f} tokens/s, decode {our_decode:.2f} tokens/s"
                  f" ({our_decode / decode_limit:.0%} of {decode_limit:.2f}, read bandwidth {bw / 1e9:.1f} GB/s)")
        return

    def hf(value, digits):
        return "skipped" if value is None else f"{value:.{digits}f}"

    def ratio(ours, peer):
        return "" if peer is None else f"{ours / peer:.2f}x"

    print()
    print("| measure | falcon-mlir | transformers (torch CPU) | ratio | limit | of limit |")
    print("|---|---|---|---|---|---|")
    print(f"| decode tokens/s (batch 1) | {our_decode:.2f} | {hf(hf_decode, 2)} | {ratio(our_decode, hf_decode)} |"
          f" {decode_limit:.2f} (read bandwidth {bw / 1e9:.1f} GB/s) | {our_decode / decode_limit:.0%} |")
    limit = ("skipped |" if dnnl_prefill is None else
             f"{dnnl_prefill:.1f} (oneDNN sgemm, {dnnl_gflops:.0f} GFLOP/s) | {our_prefill / dnnl_prefill:.0%} |")
    print(f"| prefill tokens/s ({args.prompt_len} tokens) | {our_prefill:.1f} | {hf(hf_prefill, 1)} |"
          f" {ratio(our_prefill, hf_prefill)} | {limit}")


if __name__ == "__main__":
    main()
