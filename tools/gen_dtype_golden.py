#!/usr/bin/env python3
"""Golden data for bf16/f16 compute (falcon-compile --dtype bf16|f16, docs/precision.md).

What --dtype computes: every float projection (the decoder layers' nn.Linear modules and the LM
head) reads its input rounded to bf16 or f16 (round to nearest even), multiplies it by its
weight as stored and sums in f32; everything else (residual stream, LayerNorm, attention,
logits) stays f32. This script runs transformers (f32, eager attention) with a forward
pre-hook on every nn.Linear that rounds the input exactly so, which is that definition in
transformers' own modules, independently of the compiler.

Writes OUT/golden.json (prompt, greedy ids), OUT/full_logits.npy (float32
[len(prompt) + generated, vocab]), OUT/logits.npy (the prompt's) and OUT/step_logits.npy (each
greedy step's) in the layout of the parity fixtures (test/Parity/Inputs/check_parity.py).

Usage (transformers, torch):
  python tools/gen_dtype_golden.py FIXTURE OUT --dtype bf16|f16 [--prompt-ids 1,17,...]
      [--max-new-tokens 20]
"""
import argparse
import os
import sys

import torch
import transformers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_golden  # noqa: E402

TYPES = {"bf16": torch.bfloat16, "f16": torch.float16}


def load(fixture):
    model = transformers.AutoModelForCausalLM.from_pretrained(
        fixture, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    return model


def round_linear_inputs(model, type_of):
    """Rounds every nn.Linear's input to type_of(module name) (a torch dtype; None: f32) with
    a forward pre-hook; returns the rounded modules."""
    rounded = []
    for name, module in model.named_modules():
        narrow = type_of(name) if isinstance(module, torch.nn.Linear) else None
        if narrow is None:
            continue

        def round_input(module, inputs, narrow=narrow):
            return (inputs[0].to(narrow).to(torch.float32),) + tuple(inputs[1:])

        module.register_forward_pre_hook(round_input)
        rounded.append(name)
    return rounded


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("fixture")
    parser.add_argument("out")
    parser.add_argument("--dtype", choices=sorted(TYPES), required=True)
    parser.add_argument("--prompt-ids", default="1,17,42,99,3,250,7")
    parser.add_argument("--max-new-tokens", type=int, default=20)
    args = parser.parse_args()

    model = load(args.fixture)
    linears = round_linear_inputs(model, lambda name: TYPES[args.dtype])

    prompt = [int(x) for x in args.prompt_ids.split(",")]
    with torch.no_grad():
        result = hf_golden.greedy(model, prompt, args.max_new_tokens)
    hf_golden.write(args.out, prompt, args.max_new_tokens, *result, {
        "variant": os.path.basename(os.path.normpath(args.fixture)),
        "dtype": args.dtype,
        "rounded_linear_inputs": len(linears),
        "decoding": "greedy argmax, every nn.Linear's input rounded to " + args.dtype,
    })


if __name__ == "__main__":
    main()
