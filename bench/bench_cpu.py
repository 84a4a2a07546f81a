#!/usr/bin/env python3
"""CPU benchmark: falcon-mlir beside transformers, the memory-bandwidth limit
and oneDNN's sgemm rate, in one script (docs/benchmarks.md).

usage (from the repository root, with the golden-data venv of tools/README.md):
  /opt/goldenvenv/bin/python bench/bench_cpu.py [--config examples/configs/falcon-rw-1b/config.json]
      [--work /work/bench-models] [--threads 2] [--prompt-len 128] [--decode-tokens 32] [--runs 3]

It creates a random-weight f32 checkpoint of the config (bench/make_model.py),
compiles it with build/bin/falcon-compile, and measures, each a median over
--runs:
  * falcon-mlir: falcon-run's prefill tokens/s (the whole prompt) and decode
    tokens/s (batch 1);
  * transformers on torch CPU, same weights, same thread count: one forward
    over the prompt, then greedy decode steps with the KV cache;
  * the read bandwidth of this machine (torch sum over 1 GiB) and the decode
    limit it implies: weight bytes streamed per token / bandwidth;
  * oneDNN's sgemm on the prefill's projection shapes (build/bin/onednn-sgemm)
    and the prefill rate those GEMMs alone would allow.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "bin")


def run(cmd, env=None):
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.exit(f"command failed: {' '.join(cmd)}\n{result.stdout}{result.stderr}")
    return result.stdout


def ours(artifact, prompt, new_tokens, threads, runs):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    prefill, decode = [], []
    ids = ",".join(map(str, prompt))
    for _ in range(runs + 1):  # the first run warms the page cache
        out = run([os.path.join(BIN, "falcon-run"), artifact, "--prompt-ids", ids,
                   "--max-new-tokens", str(new_tokens + 1), "--verify-checksum=false"], env)
        prefill.append(float(re.search(r"prefill: .*\(([0-9.]+) tokens/s\)", out).group(1)))
        decode.append(float(re.search(r"decode: .*\(([0-9.]+) tokens/s\)", out).group(1)))
    return statistics.median(prefill[1:]), statistics.median(decode[1:])


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
    import torch
    torch.set_num_threads(threads)
    x = torch.ones(1 << 28)  # 1 GiB of float32
    rates = []
    for _ in range(runs + 2):
        start = time.perf_counter()
        x.sum()
        rates.append(x.numel() * 4 / (time.perf_counter() - start))
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
    return layer, (m, h, config["vocab_size"])


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=os.path.join(ROOT, "examples/configs/falcon-rw-1b/config.json"))
    parser.add_argument("--work", default="/work/bench-models")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prompt-len", type=int, default=128)
    parser.add_argument("--decode-tokens", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    config = json.load(open(args.config))
    name = os.path.basename(os.path.dirname(os.path.abspath(args.config)))
    model_dir = os.path.join(args.work, f"{name}-f32")
    artifact = os.path.join(args.work, f"{name}-f32.artifact")
    run([sys.executable, os.path.join(ROOT, "bench/make_model.py"), args.config, model_dir])
    start = time.perf_counter()
    run([os.path.join(BIN, "falcon-compile"), model_dir, "-o", artifact, "--quiet"])
    compile_seconds = time.perf_counter() - start
    manifest = json.load(open(os.path.join(artifact, "manifest.json")))
    vocab, hidden = manifest["config"]["vocab_size"], manifest["config"]["hidden_size"]
    params = int(run([os.path.join(BIN, "falcon-compile"), args.config, "--print-stats"])
                 .split("parameters: ")[1].split()[0])
    # Decode streams every weight once per token, except the embedding table,
    # of which it reads one row (a tied head reads the table as the head).
    tied = config.get("tie_word_embeddings", True)
    streamed = 4 * (params - (0 if tied else vocab * hidden))

    prompt = [(7 * i + 3) % vocab for i in range(args.prompt_len)]
    our_prefill, our_decode = ours(artifact, prompt, args.decode_tokens, args.threads, args.runs)
    hf_prefill, hf_decode = transformers_cpu(model_dir, prompt, args.decode_tokens, args.threads, args.runs)
    bw = bandwidth(args.threads, args.runs)
    dnnl_prefill, dnnl_gflops = onednn_prefill_rate(config, args.prompt_len, args.threads, args.runs)

    print(f"model {name}: {params} parameters, f32, {streamed / 2**30:.2f} GiB streamed per decoded token;"
          f" {args.threads} threads; prompt {args.prompt_len}; {args.decode_tokens} decode steps;"
          f" medians of {args.runs} runs; compile {compile_seconds:.1f} s")
    print()
    print("| measure | falcon-mlir | transformers (torch CPU) | ratio | limit | of limit |")
    print("|---|---|---|---|---|---|")
    decode_limit = bw / streamed
    print(f"| decode tokens/s (batch 1) | {our_decode:.2f} | {hf_decode:.2f} | {our_decode / hf_decode:.2f}x |"
          f" {decode_limit:.2f} (read bandwidth {bw / 1e9:.1f} GB/s) | {our_decode / decode_limit:.0%} |")
    print(f"| prefill tokens/s ({args.prompt_len} tokens) | {our_prefill:.1f} | {hf_prefill:.1f} |"
          f" {our_prefill / hf_prefill:.2f}x | {dnnl_prefill:.1f} (oneDNN sgemm, {dnnl_gflops:.0f} GFLOP/s) |"
          f" {our_prefill / dnnl_prefill:.0%} |")


if __name__ == "__main__":
    main()
