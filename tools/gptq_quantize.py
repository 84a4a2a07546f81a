#!/usr/bin/env python3
"""Quantizes a float Falcon checkpoint with GPTQ and writes it in the Hugging Face GPTQ format.

The "GPTQ int4" row of docs/precision.md: a checkpoint as AutoGPTQ/optimum would write it, made
here without them (they need a GPU build). GPTQ (Frantar et al., 2022), as AutoGPTQ's
fasterquant does it, asymmetric, groups of GROUP consecutive inputs, no act-order:

  for each decoder layer in order (its inputs computed through the layers already quantized):
    for each projection W [out, in] with the inputs X it sees on the calibration text:
      H = 2 X^T X / n + 1% of mean(diag) on the diagonal; U = chol(H^-1) (upper)
      column by column, in blocks of 128: at a group's first column the group's scale
      (f16, (max - min) / 15 with the range widened to 0) and zero point (from 1: AutoGPTQ's
      "gptq" format stores zero - 1) come from the current (already compensated) weights;
      the column is rounded, and its error / U[i, i] is spread over the later columns by U.

Packed by the rules tools/gen_prequantized_fixture.py follows (qweight, qzeros, scales, g_idx),
so that falcon-compile imports it as it is (lib/Import/QuantizedCheckpoint.cpp).

Usage (torch, transformers, safetensors, numpy):
  python tools/gptq_quantize.py MODEL CALIBRATION.txt OUT [--bits 4] [--group-size 128]
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np
import torch
import transformers
from safetensors.numpy import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_prequantized_fixture import PROJECTIONS, pack_columns, pack_rows  # noqa: E402


def gptq(weight, hessian, bits, group, block=128, damping=0.01):
    """weight [out, in] float64, hessian [in, in] -> codes [out, in], zeros and scales [out, groups]."""
    weight = weight.clone()
    out, inputs = weight.shape
    levels = 2 ** bits - 1
    hessian = hessian.clone()
    dead = torch.diag(hessian) == 0
    hessian[dead, dead] = 1
    weight[:, dead] = 0
    hessian += damping * torch.mean(torch.diag(hessian)) * torch.eye(inputs, dtype=hessian.dtype)
    upper = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(hessian)), upper=True)
    groups = inputs // group
    codes = torch.zeros((out, inputs), dtype=torch.int64)
    zeros = torch.zeros((out, groups), dtype=torch.int64)
    scales = torch.zeros((out, groups), dtype=torch.float16)
    for first in range(0, inputs, block):
        last = min(first + block, inputs)
        w = weight[:, first:last].clone()
        errors = torch.zeros_like(w)
        u = upper[first:last, first:last]
        for i in range(last - first):
            column = first + i
            if column % group == 0:
                g = column // group
                part = w[:, i:i + group]
                low = torch.clamp(part.min(dim=1).values, max=0)
                high = torch.clamp(part.max(dim=1).values, min=0)
                scales[:, g] = ((high - low) / levels).to(torch.float16)
                scale = torch.clamp(scales[:, g].double(), min=1e-8)
                zeros[:, g] = torch.clamp(torch.round(-low / scale), 1, levels).long()
            g = column // group
            scale = torch.clamp(scales[:, g].double(), min=1e-8)
            q = torch.clamp(torch.round(w[:, i] / scale) + zeros[:, g], 0, levels)
            codes[:, column] = q.long()
            error = (w[:, i] - (q - zeros[:, g]) * scale) / u[i, i]
            w[:, i:] -= error.unsqueeze(1) @ u[i, i:].unsqueeze(0)
            errors[:, i] = error
        weight[:, last:] -= errors @ upper[first:last, last:]
    return codes.numpy(), zeros.numpy(), scales.numpy()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("calibration")
    parser.add_argument("out")
    parser.add_argument("--bits", type=int, default=4)
    parser.add_argument("--group-size", type=int, default=128)
    args = parser.parse_args()

    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        args.model, dtype=torch.float32, attn_implementation="eager").eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(args.model)
    ids = tokenizer(open(args.calibration).read(), add_special_tokens=False)["input_ids"]
    window = model.config.max_position_embeddings
    windows = [ids[i:i + window] for i in range(0, len(ids), window)]
    print(f"calibration: {len(ids)} tokens in {len(windows)} windows", file=sys.stderr)

    stored = {}
    for index, layer in enumerate(model.transformer.h):
        modules = {name: layer.get_submodule(name) for name in PROJECTIONS}
        hessians = {name: torch.zeros((m.in_features, m.in_features), dtype=torch.float64)
                    for name, m in modules.items()}
        counts = dict.fromkeys(modules, 0)

        def hook(module, inputs, name):
            x = inputs[0].detach().double().reshape(-1, inputs[0].shape[-1])
            hessians[name] += 2 * x.T @ x
            counts[name] += x.shape[0]

        handles = [m.register_forward_pre_hook(lambda mod, inp, name=name: hook(mod, inp, name))
                   for name, m in modules.items()]
        with torch.no_grad():
            for w in windows:
                model(torch.tensor([w]))
        for handle in handles:
            handle.remove()
        for name, module in modules.items():
            weight = module.weight.detach().double()
            codes, zeros, scales = gptq(weight, hessians[name] / counts[name], args.bits,
                                        args.group_size)
            g_idx = np.arange(weight.shape[1]) // args.group_size
            dequantized = (codes - zeros[:, g_idx]) * scales.astype(np.float64)[:, g_idx]
            with torch.no_grad():
                module.weight.copy_(torch.from_numpy(dequantized).float())
            stem = f"transformer.h.{index}.{name}"
            stored[stem + ".qweight"] = pack_rows(codes.T, args.bits)
            stored[stem + ".qzeros"] = pack_columns(zeros.T - 1, args.bits)
            stored[stem + ".g_idx"] = g_idx.astype(np.int32)
            stored[stem + ".scales"] = np.ascontiguousarray(scales.T)
        print(f"layer {index}: quantized", file=sys.stderr)

    for name, tensor in model.state_dict().items():
        if not any(name.endswith(p + ".weight") for p in PROJECTIONS) and "rotary" not in name:
            stored[name] = tensor.detach().numpy()
    if model.config.tie_word_embeddings:
        stored.pop("lm_head.weight", None)
    os.makedirs(args.out, exist_ok=True)
    config = json.load(open(os.path.join(args.model, "config.json")))
    config["quantization_config"] = {"quant_method": "gptq", "bits": args.bits,
                                     "group_size": args.group_size, "desc_act": False,
                                     "sym": False, "checkpoint_format": "gptq"}
    json.dump(config, open(os.path.join(args.out, "config.json"), "w"), indent=2)
    save_file({k: np.ascontiguousarray(v) for k, v in stored.items()},
              os.path.join(args.out, "model.safetensors"))
    for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        if os.path.exists(os.path.join(args.model, name)):
            shutil.copy(os.path.join(args.model, name), args.out)


if __name__ == "__main__":
    main()
