#!/usr/bin/env python3
"""A checkpoint built to overflow f16, and its golden data, for the f16 precision guard
(falcon-compile --dtype f16, docs/precision.md "The f16 precision guard").

The checkpoint is falcon-rw-tiny with layer LAYER's MLP rescaled: dense_h_to_4h's weight and
bias times SCALE, dense_4h_to_h's weight divided by SCALE. GELU's output, the input of
dense_4h_to_h, is then about SCALE times larger, far past f16's largest value (65504) for
SCALE 1e5, and rounding it to f16 gives infinities; the model stays finite in f32 and bf16.

Writes CHECKPOINT/ (config.json, model.safetensors, tokenizer-free) and, in the layout of the
parity fixtures (tools/hf_golden.py):
  CHECKPOINT/f32/      transformers f32 (no rounding)
  CHECKPOINT/guarded/  every nn.Linear's input rounded to f16, except layer LAYER's to bf16:
                       what the guarded artifact computes once the runtime switched LAYER
  CHECKPOINT/f16/ is not written: its logits are not finite (the test checks ours are not).

Usage (transformers, torch, safetensors):
  python tools/gen_overflow_golden.py test/fixtures/falcon-rw-tiny test/fixtures/overflow-f16
      [--layer 1] [--scale 1e5]
"""
import argparse
import json
import os
import shutil
import sys

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_dtype_golden  # noqa: E402
import hf_golden  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("source")
    parser.add_argument("checkpoint")
    parser.add_argument("--layer", type=int, default=1)
    parser.add_argument("--scale", type=float, default=1e5)
    parser.add_argument("--prompt-ids", default="1,17,42,99,3,250,7")
    parser.add_argument("--max-new-tokens", type=int, default=20)
    args = parser.parse_args()

    os.makedirs(args.checkpoint, exist_ok=True)
    shutil.copy(os.path.join(args.source, "config.json"), args.checkpoint)
    tensors = load_file(os.path.join(args.source, "model.safetensors"))
    prefix = "transformer.h.%d.mlp." % args.layer
    for name in ("dense_h_to_4h.weight", "dense_h_to_4h.bias"):
        if prefix + name in tensors:
            tensors[prefix + name] = tensors[prefix + name] * args.scale
    tensors[prefix + "dense_4h_to_h.weight"] = (
        tensors[prefix + "dense_4h_to_h.weight"] / args.scale)
    save_file({k: v.contiguous() for k, v in sorted(tensors.items())},
              os.path.join(args.checkpoint, "model.safetensors"), metadata={"format": "pt"})

    prompt = [int(x) for x in args.prompt_ids.split(",")]
    layer_name = "transformer.h.%d." % args.layer
    for variant, type_of in (
            ("f32", lambda name: None),
            ("guarded", lambda name: torch.bfloat16 if name.startswith(layer_name)
             else torch.float16)):
        model = gen_dtype_golden.load(args.checkpoint)
        rounded = gen_dtype_golden.round_linear_inputs(model, type_of)
        with torch.no_grad():
            result = hf_golden.greedy(model, prompt, args.max_new_tokens)
        hf_golden.write(os.path.join(args.checkpoint, variant), prompt, args.max_new_tokens,
                        *result, {
                            "variant": os.path.basename(os.path.normpath(args.source)),
                            "overflow": {"layer": args.layer, "scale": args.scale},
                            "rounding": variant,
                            "rounded_linear_inputs": len(rounded),
                        })
        # How far past f16 the overflowing input goes (for the docs).
        if variant == "f32":
            seen = {}
            mlp = model.transformer.h[args.layer].mlp
            hook = mlp.dense_4h_to_h.register_forward_pre_hook(
                lambda m, i: seen.update(max=float(i[0].abs().max())))
            with torch.no_grad():
                model(torch.tensor([prompt]))
            hook.remove()
            print("layer %d dense_4h_to_h input: max |x| = %.4g (f16 max 65504)"
                  % (args.layer, seen["max"]))


if __name__ == "__main__":
    main()
