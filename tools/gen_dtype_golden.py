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
import json
import os

import numpy as np
import torch
import transformers

TYPES = {"bf16": torch.bfloat16, "f16": torch.float16}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("fixture")
    parser.add_argument("out")
    parser.add_argument("--dtype", choices=sorted(TYPES), required=True)
    parser.add_argument("--prompt-ids", default="1,17,42,99,3,250,7")
    parser.add_argument("--max-new-tokens", type=int, default=20)
    args = parser.parse_args()

    model = transformers.AutoModelForCausalLM.from_pretrained(
        args.fixture, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    narrow = TYPES[args.dtype]

    def round_input(module, inputs):
        return (inputs[0].to(narrow).to(torch.float32),) + tuple(inputs[1:])

    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    for module in linears:
        module.register_forward_pre_hook(round_input)

    with torch.no_grad():
        prompt = [int(x) for x in args.prompt_ids.split(",")]
        tokens = list(prompt)
        steps = []
        for _ in range(args.max_new_tokens):
            logits = model(torch.tensor([tokens])).logits[0, -1]
            steps.append(logits.float().numpy())
            tokens.append(int(torch.argmax(logits)))
        full = model(torch.tensor([tokens])).logits[0].float().numpy()
        prompt_logits = model(torch.tensor([prompt])).logits[0].float().numpy()

    os.makedirs(args.out, exist_ok=True)
    np.save(os.path.join(args.out, "full_logits.npy"), full.astype(np.float32))
    np.save(os.path.join(args.out, "logits.npy"), prompt_logits.astype(np.float32))
    np.save(os.path.join(args.out, "step_logits.npy"), np.stack(steps).astype(np.float32))
    golden = {
        "variant": os.path.basename(os.path.normpath(args.fixture)),
        "dtype": args.dtype,
        "rounded_linear_inputs": len(linears),
        "prompt_ids": prompt,
        "generated_ids": tokens[len(prompt):],
        "max_new_tokens": args.max_new_tokens,
        "decoding": "greedy argmax, every nn.Linear's input rounded to " + args.dtype,
        "compute_dtype": "float32",
        "attn_implementation": "eager",
        "files": {"full_logits.npy": "float32 [len(prompt_ids) + generated, vocab]: one forward "
                                     "over prompt_ids + generated_ids",
                  "logits.npy": "float32 [len(prompt_ids), vocab]: one forward over prompt_ids",
                  "step_logits.npy": "float32 [max_new_tokens, vocab]: the logits each new token "
                                     "was chosen from (one full forward per step)"},
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
    }
    with open(os.path.join(args.out, "golden.json"), "w") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
