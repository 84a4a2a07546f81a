#!/usr/bin/env python3
"""CPU decode and prefill per precision: falcon-mlir beside llama.cpp, in one
script (docs/benchmarks.md, issue 11 item 8).

usage (from the repository root, in the golden-data venv of tools/README.md
with llama-cpp-python and gguf installed: see docs/benchmarks.md):
  /opt/goldenvenv/bin/python bench/bench_llamacpp.py [--config examples/configs/falcon-7b/config.json]
      [--layers 4] [--work /work/bench-models] [--threads 2] [--prompt-len 128]
      [--decode-tokens 32] [--runs 3] [--precisions f32,bf16,f16,int8,int4] [--svg FILE]

One random-weight falcon-7b-style checkpoint (the config with --layers
decoder layers: 1.12 B parameters at 4) is written in f32, and rounded from
the same values to bf16 and f16 (bench/make_model.py --numpy). For each
precision:

  falcon-mlir  compiles the checkpoint of that type (f32, bf16 and f16 with --dtype of
               that type; int8 and
               int4 from the bf16 one with --quantize ... --group-size 32
               --symmetric, q8_0's and q4_0's grouping, and --quantize-lm-head:
               the head int8, as llama.cpp's q8_0 output tensor) and runs
               falcon-run;
  llama.cpp    (llama-cpp-python's low-level API) loads a GGUF written from
               the same f32 safetensors with the gguf package, converted by
               llama.cpp's own quantizer to bf16, f16, q8_0 and q4_0 (its
               default mix of tensor types).

Both run --threads threads on the same prompt: prefill of --prompt-len tokens
(the first new token's logits only), then --decode-tokens greedy steps at
batch 1, timed separately. The two systems alternate run by run, each with an
untimed warm-up first; the table gives medians of --runs runs. The limit of a
decode is the bytes of weights it streams per token (falcon-mlir: weights.bin,
the tied head reads the whole table; llama.cpp: the GGUF's tensors) divided by
the read bandwidth measured in the same script (torch sum over 1 GiB).
falcon-mlir's weights.bin holds the embedding table besides the tied head's
transposed copy of it: the table is not counted (decode reads one row).
"""
import argparse
import ctypes
import json
import os
import statistics
import struct
import shutil
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cpu import BIN, ROOT, bandwidth, falcon_run, run  # noqa: E402

PRECISIONS = {
    # name: (checkpoint dtype, extra falcon-compile arguments, llama.cpp ftype name)
    "f32": ("float32", [], None),
    # --dtype: the projections' inputs in the checkpoint's type, as llama.cpp multiplies them
    # (bf16 pairs with vdpbf16ps on AVX512-BF16), and the KV cache too.
    "bf16": ("bfloat16", ["--dtype", "bf16"], "LLAMA_FTYPE_MOSTLY_BF16"),
    "f16": ("float16", ["--dtype", "f16"], "LLAMA_FTYPE_MOSTLY_F16"),
    "int8": ("bfloat16", ["--quantize", "int8", "--group-size", "32", "--symmetric", "--quantize-lm-head"],
             "LLAMA_FTYPE_MOSTLY_Q8_0"),
    "int4": ("bfloat16", ["--quantize", "int4", "--group-size", "32", "--symmetric", "--quantize-lm-head"],
             "LLAMA_FTYPE_MOSTLY_Q4_0"),
}
LLAMA_NAMES = {"f32": "f32", "bf16": "bf16", "f16": "f16", "int8": "q8_0", "int4": "q4_0"}


def read_safetensors(path):
    """name -> read-only numpy view of a single-file checkpoint."""
    with open(path, "rb") as file:
        (length,) = struct.unpack("<Q", file.read(8))
        header = json.loads(file.read(length))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + length)
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", f"{name}: expects an f32 checkpoint"
        begin, end = info["data_offsets"]
        tensors[name] = data[begin:end].view(np.float32).reshape(info["shape"])
    return tensors


def write_gguf(config, model_dir, out):
    """The f32 checkpoint as llama.cpp's falcon GGUF (the names, keys and fused
    QKV order of llama.cpp's convert_hf_to_gguf.py FalconModel), with no
    tokenizer (tokenizer model "none": the benchmark feeds token ids)."""
    import gguf
    if os.path.exists(out):
        return
    h, heads = config["hidden_size"], config["num_attention_heads"]
    kv = config.get("num_kv_heads") or 1
    if config.get("new_decoder_architecture") or config.get("bias") or config.get("alibi"):
        sys.exit("bench_llamacpp: expects a falcon-7b-style config (multi-query, no bias, RoPE)")
    d, layers = h // heads, config["num_hidden_layers"]
    tensors = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    writer = gguf.GGUFWriter(out + ".tmp", "falcon")
    writer.add_context_length(2048)
    writer.add_tensor_data_layout("jploski")
    writer.add_embedding_length(h)
    writer.add_feed_forward_length(4 * h)
    writer.add_block_count(layers)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv)
    writer.add_layer_norm_eps(config["layer_norm_epsilon"])
    writer.add_file_type(0)  # all f32
    writer.add_tokenizer_model("none")
    writer.add_vocab_size(config["vocab_size"])
    writer.add_tensor("token_embd.weight", tensors["transformer.word_embeddings.weight"])
    for i in range(layers):
        prefix = f"transformer.h.{i}."
        qkv = tensors[prefix + "self_attention.query_key_value.weight"]
        # [kv groups, heads per group + 2, d, h] -> every q, then k, then v.
        grouped = qkv.reshape(kv, heads // kv + 2, d, h)
        qkv = np.concatenate([grouped[:, :-2].reshape(-1, h), grouped[:, -2].reshape(-1, h),
                              grouped[:, -1].reshape(-1, h)])
        for name, source in [("attn_norm.weight", "input_layernorm.weight"),
                             ("attn_norm.bias", "input_layernorm.bias"),
                             ("attn_output.weight", "self_attention.dense.weight"),
                             ("ffn_up.weight", "mlp.dense_h_to_4h.weight"),
                             ("ffn_down.weight", "mlp.dense_4h_to_h.weight")]:
            writer.add_tensor(f"blk.{i}.{name}", tensors[prefix + source])
        writer.add_tensor(f"blk.{i}.attn_qkv.weight", np.ascontiguousarray(qkv))
    writer.add_tensor("output_norm.weight", tensors["transformer.ln_f.weight"])
    writer.add_tensor("output_norm.bias", tensors["transformer.ln_f.bias"])
    if "lm_head.weight" in tensors:
        writer.add_tensor("output.weight", tensors["lm_head.weight"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.rename(out + ".tmp", out)


def gguf_tensor_bytes(path):
    import gguf
    return sum(int(t.n_bytes) for t in gguf.GGUFReader(path).tensors)


class LlamaCpp:
    """One loaded GGUF and its generation loop, through llama-cpp-python's C API."""

    def __init__(self, path, threads, context):
        import llama_cpp
        self.lib = llama_cpp
        llama_cpp.llama_backend_init()
        # Quiet: llama.cpp logs every load to stderr.
        self._log = llama_cpp.llama_log_callback(lambda level, text, data: None)
        llama_cpp.llama_log_set(self._log, ctypes.c_void_p())
        params = llama_cpp.llama_model_default_params()
        self.model = llama_cpp.llama_model_load_from_file(path.encode(), params)
        if not self.model:
            sys.exit(f"llama.cpp cannot load {path}")
        self.vocab = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(self.model))
        self.threads, self.context = threads, context

    def generate(self, prompt, new_tokens):
        """(prefill tokens/s, decode tokens/s, ids): a fresh context each call."""
        lib = self.lib
        params = lib.llama_context_default_params()
        params.n_ctx = self.context
        params.n_batch = params.n_ubatch = len(prompt)
        params.n_threads = params.n_threads_batch = self.threads
        ctx = lib.llama_init_from_model(self.model, params)
        batch = lib.llama_batch_init(len(prompt), 0, 1)
        try:
            def step(tokens, first):
                batch.n_tokens = len(tokens)
                for i, token in enumerate(tokens):
                    batch.token[i] = token
                    batch.pos[i] = first + i
                    batch.n_seq_id[i] = 1
                    batch.seq_id[i][0] = 0
                    batch.logits[i] = i == len(tokens) - 1
                if lib.llama_decode(ctx, batch) != 0:
                    sys.exit("llama_decode failed")
                logits = np.ctypeslib.as_array(lib.llama_get_logits_ith(ctx, -1), shape=(self.vocab,))
                return int(np.argmax(logits))

            start = time.perf_counter()
            ids = [step(prompt, 0)]
            prefill = len(prompt) / (time.perf_counter() - start)
            start = time.perf_counter()
            for i in range(new_tokens):
                ids.append(step([ids[-1]], len(prompt) + i))
            decode = new_tokens / (time.perf_counter() - start)
        finally:
            lib.llama_batch_free(batch)
            lib.llama_free(ctx)
        return prefill, decode, ids

    def close(self):
        self.lib.llama_model_free(self.model)


def quantize(source, out, ftype_name, threads):
    import llama_cpp
    if os.path.exists(out):
        return
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, ftype_name)
    params.nthread = threads
    if llama_cpp.llama_model_quantize(source.encode(), (out + ".tmp").encode(), ctypes.byref(params)) != 0:
        sys.exit(f"llama.cpp could not quantize {source} to {ftype_name}")
    os.rename(out + ".tmp", out)


def svg_chart(rows, path):
    """Grouped bars of decode tokens/s per precision, both systems."""
    width, height, left, bottom, top = 560, 300, 50, 40, 30
    peak = max(max(r["ours_decode"], r["llama_decode"]) for r in rows) * 1.15
    group = (width - left - 10) / len(rows)
    bar = group * 0.35
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
             f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13">decode tokens/s, batch 1, 2 threads (median)</text>',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" stroke="black"/>']
    scale = (height - bottom - top) / peak
    for i, r in enumerate(rows):
        x = left + i * group + group * 0.12
        for j, (key, color) in enumerate([("ours_decode", "#1f77b4"), ("llama_decode", "#ff7f0e")]):
            value = r[key]
            y = height - bottom - value * scale
            parts.append(f'<rect x="{x + j * bar:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{value * scale:.1f}" fill="{color}"/>')
            parts.append(f'<text x="{x + j * bar + bar / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle">{value:.1f}</text>')
        parts.append(f'<text x="{x + bar:.1f}" y="{height - bottom + 15}" text-anchor="middle">{r["precision"]} / {LLAMA_NAMES[r["precision"]]}</text>')
    parts += [f'<rect x="{left}" y="{height - 16}" width="10" height="10" fill="#1f77b4"/>',
              f'<text x="{left + 14}" y="{height - 7}">falcon-mlir</text>',
              f'<rect x="{left + 100}" y="{height - 16}" width="10" height="10" fill="#ff7f0e"/>',
              f'<text x="{left + 114}" y="{height - 7}">llama.cpp</text>', "</svg>"]
    with open(path, "w") as file:
        file.write("\n".join(parts) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=os.path.join(ROOT, "examples/configs/falcon-7b/config.json"))
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--work", default="/work/bench-models")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prompt-len", type=int, default=128)
    parser.add_argument("--decode-tokens", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--precisions", default="f32,bf16,f16,int8,int4")
    parser.add_argument("--svg", help="write the decode chart here")
    args = parser.parse_args()
    precisions = args.precisions.split(",")
    for p in precisions:
        if p not in PRECISIONS:
            sys.exit(f"bench_llamacpp: unknown precision '{p}' (one of {', '.join(PRECISIONS)})")

    config = dict(json.load(open(args.config)), num_hidden_layers=args.layers)
    name = f"{os.path.basename(os.path.dirname(os.path.abspath(args.config)))}-{args.layers}l"
    os.makedirs(args.work, exist_ok=True)
    config_path = os.path.join(args.work, f"{name}.config.json")
    json.dump(config, open(config_path, "w"), indent=2)
    checkpoints = {}
    for dtype in sorted({PRECISIONS[p][0] for p in precisions} | {"float32"}):
        checkpoints[dtype] = os.path.join(args.work, f"{name}-{dtype}")
        run([sys.executable, os.path.join(ROOT, "bench/make_model.py"), config_path, checkpoints[dtype],
             "--dtype", dtype, "--numpy"])
    f32_gguf = os.path.join(args.work, f"{name}-f32.gguf")
    print(f"writing {f32_gguf}", file=sys.stderr)
    write_gguf(config, checkpoints["float32"], f32_gguf)

    vocab = config["vocab_size"]
    prompt = [(7 * i + 3) % vocab for i in range(args.prompt_len)]
    ids = ",".join(map(str, prompt))
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    bw, bw_how = bandwidth(args.threads, args.runs)
    rows = []
    for p in precisions:
        dtype, extra, ftype = PRECISIONS[p]
        artifact = os.path.join(args.work, f"{name}-{p}.artifact")
        # Compiled again when the options differ from the cached artifact's.
        stamp = os.path.join(artifact, "bench-options.json")
        if os.path.exists(stamp) and json.load(open(stamp)) != extra:
            shutil.rmtree(artifact)
        if not os.path.exists(os.path.join(artifact, "manifest.json")):
            print(f"compiling {artifact}", file=sys.stderr)
            run([os.path.join(BIN, "falcon-compile"), checkpoints[dtype], "-o", artifact, "--quiet"] + extra)
            json.dump(extra, open(stamp, "w"))
        model_gguf = f32_gguf if ftype is None else os.path.join(args.work, f"{name}-{LLAMA_NAMES[p]}.gguf")
        if ftype is not None:
            print(f"quantizing {model_gguf}", file=sys.stderr)
            quantize(f32_gguf, model_gguf, ftype, args.threads)
        llama = LlamaCpp(model_gguf, args.threads, args.prompt_len + args.decode_tokens + 8)
        falcon_run(BIN, artifact, ids, args.decode_tokens, env)  # warm-ups
        llama.generate(prompt, args.decode_tokens)
        ours, theirs = [], []
        for r in range(args.runs):
            order = [0, 1] if r % 2 == 0 else [1, 0]
            for k in order:
                if k == 0:
                    ours.append(falcon_run(BIN, artifact, ids, args.decode_tokens, env))
                else:
                    prefill, decode, _ = llama.generate(prompt, args.decode_tokens)
                    theirs.append((prefill, decode))
        llama.close()
        # weights.bin holds the embedding table and the tied head's own
        # transposed copy of it; decode reads one row of the table.
        table = config["vocab_size"] * config["hidden_size"] * (4 if dtype == "float32" else 2)
        our_bytes = os.path.getsize(os.path.join(artifact, "weights.bin")) - table
        llama_bytes = gguf_tensor_bytes(model_gguf)
        row = {"precision": p,
               "ours_prefill": statistics.median(x[0] for x in ours),
               "ours_decode": statistics.median(x[1] for x in ours),
               "llama_prefill": statistics.median(x[0] for x in theirs),
               "llama_decode": statistics.median(x[1] for x in theirs),
               "ours_bytes": our_bytes, "llama_bytes": llama_bytes,
               "runs": (ours, theirs)}
        rows.append(row)
        print(f"{p}: ours {row['ours_prefill']:.1f}/{row['ours_decode']:.2f}, "
              f"llama.cpp {row['llama_prefill']:.1f}/{row['llama_decode']:.2f} tokens/s", file=sys.stderr)

    params = sum(int(np.prod(t.shape)) for t in read_safetensors(
        os.path.join(checkpoints["float32"], "model.safetensors")).values())
    print(f"model {name}: {params} parameters (falcon-7b shape, {args.layers} layers, tied head);"
          f" {args.threads} threads; prompt {args.prompt_len}; {args.decode_tokens} decode steps;"
          f" medians of {args.runs} alternating runs; read bandwidth {bw / 1e9:.1f} GB/s ({bw_how} sum over 1 GiB)")
    print()
    print("| precision (ours / llama.cpp) | decode tok/s ours | llama.cpp | ratio | ours of limit | llama.cpp of limit |"
          " GB/token ours | llama.cpp | prefill tok/s ours | llama.cpp | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['precision']} / {LLAMA_NAMES[r['precision']]} | {r['ours_decode']:.2f} | {r['llama_decode']:.2f} |"
              f" {r['ours_decode'] / r['llama_decode']:.2f}x | {r['ours_decode'] / (bw / r['ours_bytes']):.0%} |"
              f" {r['llama_decode'] / (bw / r['llama_bytes']):.0%} | {r['ours_bytes'] / 1e9:.2f} |"
              f" {r['llama_bytes'] / 1e9:.2f} | {r['ours_prefill']:.1f} | {r['llama_prefill']:.1f} |"
              f" {r['ours_prefill'] / r['llama_prefill']:.2f}x |")
    print()
    print("runs (prefill / decode tokens/s):")
    for r in rows:
        ours, theirs = r["runs"]
        print(f"  {r['precision']}: ours " + ", ".join(f"{a:.1f}/{b:.2f}" for a, b in ours) +
              "; llama.cpp " + ", ".join(f"{a:.1f}/{b:.2f}" for a, b in theirs))
    if args.svg:
        svg_chart(rows, args.svg)
        print(f"\nchart: {args.svg}")


if __name__ == "__main__":
    main()
