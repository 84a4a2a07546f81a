#!/usr/bin/env python3
"""Golden logits for weight-only quantized artifacts (falcon-compile --quantize).

For a fixture and a scheme, quantizes every decoder layer's projection weight by the rule of
include/falcon/Support/WeightTransform.h (round to nearest in f32, f16 scales and zero points,
groups of inputs halved until they divide the inputs), dequantizes it, and runs the numpy
reference (tools/falcon_reference.py, float64) on the dequantized weights. A quantized artifact
must then match these logits as an f32 artifact matches transformers': the same weights,
summed in another order (tolerance 1e-4, test/Parity/quantized.test).

The quantizer is written from the rule, not from the C++ code: a disagreement on one code shows
as a logit error far above 1e-4 on these fixtures.

Usage (numpy only):
  python3 tools/gen_quantized_golden.py FIXTURE OUT.npy BITS GROUP symmetric|asymmetric IDS
      [--split PROJECTION=I1,I2,...]... [--int8-activations] [--append-ids FILE] [--lm-head]
writes the reference logits [len(IDS), vocab] (float32) for the comma-separated token IDS
(followed by the whitespace-separated ids of FILE, e.g. falcon-run --output-ids').
--split quantizes the named projection (e.g. self_attention.dense) as a tensor-parallel plan
does: its inputs cut at I1, I2, ... (the row-parallel shards), each piece on its own (its own
effective group size).
--lm-head also quantizes the LM head to int8 (falcon-compile --quantize-lm-head: same groups and
symmetry; a tied table's embedding lookup keeps the stored rows).
--int8-activations also quantizes each decoder projection's input row as the integer decode
does (falcon-compile --int8-activations, docs/precision.md): in blocks of min(16, group)
inputs for int8 weights and min(32, group) for int4 ones (16 rows of code bytes), code = round_even(x * (127 / max|x|)) in f32, value = code * (max|x| / 127). Every row
on its own, so one full-sequence forward gives the logits of each decode step.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from falcon_reference import FalconReference, load_weights  # noqa: E402

PROJECTIONS = ("self_attention.query_key_value", "self_attention.dense",
               "mlp.dense_h_to_4h", "mlp.dense_4h_to_h")


def effective_group(inputs: int, group: int) -> int:
    while group >= 8 and inputs % group:
        group //= 2
    if group < 8:
        raise ValueError(f"no group divides {inputs} inputs")
    return group


def quantize_dequantize(weight: np.ndarray, bits: int, group: int, symmetric: bool) -> np.ndarray:
    """weight: [outputs, inputs] float32 -> the values the quantized weight stands for."""
    w = np.ascontiguousarray(weight.astype(np.float32).T)  # [inputs, outputs]
    inputs, outputs = w.shape
    g = effective_group(inputs, group)
    grouped = w.reshape(inputs // g, g, outputs)
    low = np.minimum(grouped.min(axis=1), np.float32(0))
    high = np.maximum(grouped.max(axis=1), np.float32(0))
    if symmetric:
        limit = np.float32(2 ** (bits - 1) - 1)
        span = np.maximum(-low, high) / limit
    else:
        levels = np.float32(2 ** bits - 1)
        span = (high - low) / levels
    scale = span.astype(np.float16).astype(np.float32)
    with np.errstate(divide="ignore"):
        inverse = np.where(scale > 0, np.float32(1) / scale, np.float32(0)).astype(np.float32)
    codes = np.rint(grouped * inverse[:, None, :])
    if symmetric:
        codes = np.clip(codes, -limit, limit)
        values = codes * scale[:, None, :]
    else:
        zero = np.clip(np.rint(-low * inverse), 0, levels)
        codes = np.clip(codes + zero[:, None, :], 0, levels)
        values = (codes - zero[:, None, :]).astype(np.float32) * scale[:, None, :]
    return values.astype(np.float32).reshape(inputs, outputs).T


def quantize_activations(x: np.ndarray, block: int) -> np.ndarray:
    """x: [..., inputs] -> the values its int8 codes stand for (blocks of `block` inputs)."""
    x32 = np.asarray(x, np.float32)
    blocks = x32.reshape(*x32.shape[:-1], x32.shape[-1] // block, block)
    amax = np.abs(blocks).max(axis=-1, keepdims=True)
    with np.errstate(divide="ignore"):
        inverse = np.where(amax > 0, np.float32(127) / amax, np.float32(0)).astype(np.float32)
    codes = np.rint((blocks * inverse).astype(np.float32))
    scale = (amax / np.float32(127)).astype(np.float32)
    return (codes.astype(np.float64) * scale.astype(np.float64)).reshape(x.shape)


class Int8ActivationsReference(FalconReference):
    """The reference with every decoder projection's input quantized per row (int8 decode)."""

    def __init__(self, *args, group: int, bits: int, lm_head: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.group = group
        self.lm_head = lm_head
        self.block = 16 * 8 // bits

    def _lin(self, x, name, has_bias):
        if ".h." in name and name.endswith(PROJECTIONS):
            block = min(self.block, effective_group(x.shape[-1], self.group))
            x = quantize_activations(x, block).astype(self.dtype)
        return super()._lin(x, name, has_bias)

    def _head(self, x):
        if self.lm_head:  # an int8 head: blocks of 16 rows of codes, as the layers' int8 weights
            x = quantize_activations(x, min(16, effective_group(x.shape[-1], self.group)))
            x = x.astype(self.dtype)
        return super()._head(x)


def main() -> None:
    fixture, out, bits, group, kind, ids = sys.argv[1:7]
    splits = {}
    rest = sys.argv[7:]
    int8_activations = "--int8-activations" in rest
    lm_head = "--lm-head" in rest
    rest = [a for a in rest if a not in ("--int8-activations", "--lm-head")]
    token_ids = [int(i) for i in ids.split(",")]
    if "--append-ids" in rest:
        at = rest.index("--append-ids")
        with open(rest[at + 1]) as f:
            token_ids += [int(i) for i in f.read().split()]
        rest = rest[:at] + rest[at + 2:]
    while rest:
        if rest[0] != "--split" or len(rest) < 2:
            sys.exit(f"unexpected arguments {rest}")
        name, cuts = rest[1].split("=")
        splits[name] = [int(c) for c in cuts.split(",")]
        rest = rest[2:]
    import json
    with open(os.path.join(fixture, "config.json")) as f:
        config = json.load(f)
    weights = load_weights(fixture)
    for name in list(weights):
        projection = next((p for p in PROJECTIONS if name.endswith(p + ".weight")), None)
        if projection and ".h." in name:
            weight = np.asarray(weights[name], np.float32)
            bounds = [0] + splits.get(projection, []) + [weight.shape[1]]
            weights[name] = np.concatenate(
                [quantize_dequantize(weight[:, a:b], int(bits), int(group), kind == "symmetric")
                 for a, b in zip(bounds, bounds[1:])], axis=1)
    if lm_head:
        head = "transformer.word_embeddings.weight" if config.get("tie_word_embeddings", True) \
            else "lm_head.weight"
        weights["lm_head.weight"] = quantize_dequantize(np.asarray(weights[head], np.float32), 8,
                                                        int(group), kind == "symmetric")
        config = dict(config, tie_word_embeddings=False)
    if int8_activations and splits:
        sys.exit("--int8-activations with --split is not supported")
    if int8_activations:
        ref = Int8ActivationsReference(config=config, weights=weights, group=int(group),
                                       bits=int(bits), lm_head=lm_head)
    else:
        ref = FalconReference(config=config, weights=weights)
    logits = ref.forward_full(token_ids)
    np.save(out, np.asarray(logits, np.float32))


if __name__ == "__main__":
    main()
