#!/usr/bin/env python3
"""Creates a random-weight Falcon checkpoint of a given shape for benchmarks.

usage: make_model.py CONFIG_JSON OUT_DIR [--dtype float32|bfloat16|float16] [--numpy]

The weights are random (normal, std 0.02) -- the benchmark measures speed,
not quality. With torch and transformers installed it is saved with
save_pretrained (config.json + safetensors). Without them (or with --numpy)
the same tensors (names and shapes of FalconForCausalLM, its initialization:
normal linear and embedding weights, zero biases, LayerNorm weight 1 and bias 0)
are drawn with numpy and written one by one as a single model.safetensors,
next to the given config.json; only numpy is needed.
"""
import argparse
import importlib.util
import json
import os
import struct


def torch_model(config_path, out, dtype):
    import torch
    from transformers import FalconConfig, FalconForCausalLM
    torch.manual_seed(0)
    config = FalconConfig(**json.load(open(config_path)))
    with torch.no_grad():
        model = FalconForCausalLM(config).to(getattr(torch, dtype))
    model.save_pretrained(out, safe_serialization=True, max_shard_size="20GB")
    return sum(p.numel() for p in model.parameters())


def tensor_specs(config):
    """(name, shape, init) of FalconForCausalLM's parameters, as transformers names them."""
    h = config.get("hidden_size") or config["n_embed"]
    heads = config.get("num_attention_heads") or config["n_head"]
    layers = config.get("num_hidden_layers") or config["n_layer"]
    d = h // heads
    f = config.get("ffn_hidden_size") or 4 * h
    new_arch = config.get("new_decoder_architecture", "n_head_kv" in config)
    if new_arch:
        qkv = (heads + 2 * (config.get("num_kv_heads") or config.get("n_head_kv") or heads)) * d
    elif config.get("multi_query", True):
        qkv = h + 2 * d
    else:
        qkv = 3 * h
    if not config.get("parallel_attn", True):
        norms = ["input_layernorm", "post_attention_layernorm"]
    elif (config.get("num_ln_in_parallel_attn") or (2 if new_arch else 1)) == 2:
        norms = ["ln_attn", "ln_mlp"]
    else:
        norms = ["input_layernorm"]
    specs = [("transformer.word_embeddings.weight", (config["vocab_size"], h), "normal")]
    for i in range(layers):
        prefix = f"transformer.h.{i}."
        for norm in norms:
            specs += [(prefix + norm + ".weight", (h,), "ones"), (prefix + norm + ".bias", (h,), "zeros")]
        for module, rows, cols in [("self_attention.query_key_value", qkv, h), ("self_attention.dense", h, h),
                                   ("mlp.dense_h_to_4h", f, h), ("mlp.dense_4h_to_h", h, f)]:
            specs.append((prefix + module + ".weight", (rows, cols), "normal"))
            if config.get("bias", False):
                specs.append((prefix + module + ".bias", (rows,), "zeros"))
    specs += [("transformer.ln_f.weight", (h,), "ones"), ("transformer.ln_f.bias", (h,), "zeros")]
    if not config.get("tie_word_embeddings", True):
        specs.append(("lm_head.weight", (config["vocab_size"], h), "normal"))
    return specs


def numpy_model(config_path, out, dtype):
    """Writes the safetensors format by hand (8-byte header length, JSON header,
    data), one tensor at a time, so a 5 GB checkpoint never sits in memory."""
    import numpy as np
    config = json.load(open(config_path))
    std = config.get("initializer_range", 0.02)
    specs = tensor_specs(config)
    size = 4 if dtype == "float32" else 2
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shape, _ in specs:
        nbytes = size * int(np.prod(shape))
        header[name] = {"dtype": {"float32": "F32", "bfloat16": "BF16", "float16": "F16"}[dtype],
                        "shape": list(shape),
                        "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(0)
    with open(os.path.join(out, "model.safetensors.tmp"), "wb") as file:
        file.write(struct.pack("<Q", len(text)) + text)
        for _, shape, init in specs:
            if init == "normal":
                x = rng.standard_normal(shape, dtype=np.float32) * np.float32(std)
            else:
                x = np.full(shape, 1.0 if init == "ones" else 0.0, dtype=np.float32)
            if dtype == "float16":
                x = x.astype(np.float16)
            elif dtype == "bfloat16":  # round to nearest even bfloat16
                bits = x.view(np.uint32)
                x = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
            file.write(x.tobytes())
    os.rename(os.path.join(out, "model.safetensors.tmp"), os.path.join(out, "model.safetensors"))
    json.dump(dict(config, torch_dtype=dtype), open(os.path.join(out, "config.json"), "w"), indent=2)
    return sum(int(np.prod(shape)) for _, shape, _ in specs)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("out")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--numpy", action="store_true", help="write the checkpoint with numpy even if torch is installed")
    args = parser.parse_args()
    if os.path.exists(os.path.join(args.out, "config.json")):
        print(f"{args.out}: exists, reusing")
        return
    if not args.numpy and all(importlib.util.find_spec(m) for m in ("torch", "transformers")):
        n, how = torch_model(args.config, args.out, args.dtype), "transformers"
    else:
        n, how = numpy_model(args.config, args.out, args.dtype), "numpy"
    print(f"{args.out}: {n} parameters, {args.dtype} ({how})")


if __name__ == "__main__":
    main()
