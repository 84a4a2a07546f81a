#!/usr/bin/env python3
"""A GPTQ or AWQ checkpoint packed from a float fixture, and transformers' logits for it.

Quantizes every decoder-layer projection of FIXTURE by round to nearest (asymmetric, f16 scales,
groups of GROUP consecutive inputs), packs the codes, zero points and scales by the format's
published rules with NumPy, and writes:

  OUT_DIR/config.json         FIXTURE's config plus a `quantization_config` as transformers
                              writes it (quant_method gptq or awq)
  OUT_DIR/model.safetensors   the other tensors as they are; each projection P as P.qweight,
                              P.qzeros, P.scales (and GPTQ's P.g_idx) in place of P.weight
  OUT_DIR/golden.json         FIXTURE's prompt and the 20 greedy tokens that transformers'
                              FalconForCausalLM (float32, sdpa, CPU) generates from it, run on
                              the dequantized weights (code - zero) * scale
  OUT_DIR/full_logits.npy     its logits [prompt + 20, vocab] over prompt and tokens,
  OUT_DIR/logits.npy          over the prompt alone [prompt, vocab], and
  OUT_DIR/step_logits.npy     the logits [20, vocab] each token was chosen from (the files
                              test/Parallel/Inputs/plan_parity.py reads, as gen_golden.py's)

Packings (b bits, p = 32 / b values per int32, value t of a word in bits [b t, b t + b)):
  GPTQ  qweight [in / p, out]: word [i / p, o] holds input i of output o at t = i % p;
        qzeros [groups, out / p]: word [g, o / p] holds o's zero point minus 1 at t = o % p
        (checkpoint_format "gptq", AutoGPTQ's offset); g_idx [in] = i / group (no act-order).
  AWQ   qweight [in, out / 8]: word [i, j] holds output 8 j + order[t] at nibble t,
        order = 0, 2, 4, 6, 1, 3, 5, 7; qzeros [groups, out / 8] likewise (no offset).
  Both: scales [groups, out] float16.

--act-order groups each projection's inputs in a random order (GPTQ desc_act: g_idx is then not
i / group, and the config says desc_act).

Usage (numpy, safetensors, torch, transformers):
  python3 tools/gen_prequantized_fixture.py FIXTURE gptq|awq BITS GROUP OUT_DIR [--act-order]
"""
import json
import os
import shutil
import sys
import tempfile

import numpy as np
from safetensors.numpy import load_file, save_file

PROJECTIONS = ("self_attention.query_key_value", "self_attention.dense",
               "mlp.dense_h_to_4h", "mlp.dense_4h_to_h")
AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)


def quantize(weight, bits, group, order, lowest_zero=0):
    """weight [out, in] -> codes [out, in], zeros [out, groups] (ints), scales [out, groups] f16,
    g_idx [in]. Input order[k] is the k-th input of the grouping: groups are runs of `group` of
    them, the last one shorter when `group` does not divide the inputs (AutoGPTQ's ceil)."""
    out, inputs = weight.shape
    levels = 2 ** bits - 1
    groups = -(-inputs // group)
    codes = np.empty((out, inputs), np.int64)
    zeros = np.empty((out, groups), np.int64)
    scales = np.empty((out, groups), np.float16)
    g_idx = np.empty(inputs, np.int64)
    for g in range(groups):
        members = order[g * group:(g + 1) * group]
        w = weight[:, members]
        low = np.minimum(w.min(axis=1), 0)
        high = np.maximum(w.max(axis=1), 0)
        scales[:, g] = ((high - low) / levels).astype(np.float16)
        scale = np.maximum(scales[:, g].astype(np.float32), np.float32(1e-8))
        zeros[:, g] = np.clip(np.rint(-low / scale), lowest_zero, levels)
        codes[:, members] = np.clip(np.rint(w / scale[:, None]) + zeros[:, g:g + 1], 0, levels)
        g_idx[members] = g
    return codes, zeros, scales, g_idx


def pack_rows(values, bits):
    """[n, m] ints -> [n / p, m] int32: value i of a column in word i / p at slot i % p."""
    per_word = 32 // bits
    n, m = values.shape
    words = np.zeros((n // per_word, m), np.uint32)
    for t in range(per_word):
        words |= values[t::per_word].astype(np.uint32) << np.uint32(bits * t)
    return words.view(np.int32)


def pack_columns(values, bits, order=None):
    """[n, m] ints -> [n, m / p] int32: column p j + order[t] in word j at slot t."""
    per_word = 32 // bits
    order = order or tuple(range(per_word))
    n, m = values.shape
    words = np.zeros((n, m // per_word), np.uint32)
    for t in range(per_word):
        words |= values[:, order[t]::per_word].astype(np.uint32) << np.uint32(bits * t)
    return words.view(np.int32)


def main():
    args = sys.argv[1:]
    act_order = "--act-order" in args
    args = [a for a in args if a != "--act-order"]
    fixture, method, bits, group, out_dir = args
    bits, group, new_tokens = int(bits), int(group), 20
    with open(os.path.join(fixture, "config.json")) as f:
        config = json.load(f)
    tensors = load_file(os.path.join(fixture, "model.safetensors"))
    rng = np.random.default_rng(7)
    stored, dequantized = {}, {}
    for name, tensor in tensors.items():
        projection = next((p for p in PROJECTIONS if name.endswith(p + ".weight")), None)
        if not projection or ".h." not in name:
            stored[name] = tensor
            dequantized[name] = tensor
            continue
        weight = tensor.astype(np.float32)
        out, inputs = weight.shape
        order = rng.permutation(inputs) if act_order else np.arange(inputs)
        # GPTQ's "gptq" format stores zero - 1, which has no room for a zero of 0 (AutoGPTQ's
        # packer wraps it around to 2^bits - 1, read back as 2^bits): zero points from 1.
        codes, zeros, scales, g_idx = quantize(weight, bits, group, order,
                                               lowest_zero=1 if method == "gptq" else 0)
        stem = name[:-len(".weight")]
        per_input_zero = zeros[:, g_idx]
        per_input_scale = scales.astype(np.float32)[:, g_idx]
        dequantized[name] = ((codes - per_input_zero) * per_input_scale).astype(np.float32)
        if method == "gptq":
            stored[stem + ".qweight"] = pack_rows(codes.T, bits)
            stored[stem + ".qzeros"] = pack_columns(zeros.T - 1, bits)
            stored[stem + ".g_idx"] = g_idx.astype(np.int32)
        else:
            stored[stem + ".qweight"] = pack_columns(codes.T, bits, AWQ_ORDER)
            stored[stem + ".qzeros"] = pack_columns(zeros.T, bits, AWQ_ORDER)
        stored[stem + ".scales"] = np.ascontiguousarray(scales.T)
    quantization = ({"quant_method": "gptq", "bits": bits, "group_size": group,
                     "desc_act": act_order, "sym": False, "checkpoint_format": "gptq"}
                    if method == "gptq" else
                    {"quant_method": "awq", "bits": bits, "group_size": group,
                     "version": "gemm", "zero_point": True})
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(dict(config, quantization_config=quantization), f, indent=2)
    # safetensors.numpy writes an array's memory as it lies: C order first.
    contiguous = lambda tensors: {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    save_file(contiguous(stored), os.path.join(out_dir, "model.safetensors"))

    # Greedy tokens from FIXTURE's prompt, then the logits over prompt + tokens, all by
    # transformers on the dequantized weights.
    import torch
    from transformers import FalconForCausalLM
    with open(os.path.join(fixture, "golden.json")) as f:
        prompt = json.load(f)["prompt_ids"]
    with tempfile.TemporaryDirectory() as work:
        shutil.copy(os.path.join(fixture, "config.json"), work)
        save_file(contiguous(dequantized), os.path.join(work, "model.safetensors"))
        model = FalconForCausalLM.from_pretrained(work, torch_dtype=torch.float32,
                                                  attn_implementation="sdpa").eval()
        ids, steps = list(prompt), []
        with torch.no_grad():
            for _ in range(new_tokens):
                steps.append(model(torch.tensor([ids])).logits[0, -1])
                ids.append(int(steps[-1].argmax()))
            logits = model(torch.tensor([ids])).logits[0]
            prefill = model(torch.tensor([prompt])).logits[0]
    for name, array in (("full_logits", logits), ("logits", prefill),
                        ("step_logits", torch.stack(steps))):
        np.save(os.path.join(out_dir, name + ".npy"), array.numpy().astype(np.float32))
    with open(os.path.join(out_dir, "golden.json"), "w") as f:
        json.dump({"variant": os.path.basename(out_dir.rstrip("/")), "prompt_ids": prompt,
                   "generated_ids": ids[len(prompt):], "max_new_tokens": new_tokens,
                   "decoding": "greedy argmax over full forwards, eos ignored",
                   "reference": "transformers FalconForCausalLM, float32, sdpa, CPU, on the "
                                "dequantized weights (code - zero) * scale",
                   "transformers_version": __import__("transformers").__version__,
                   "torch_version": torch.__version__}, f, indent=2)

if __name__ == "__main__":
    main()
