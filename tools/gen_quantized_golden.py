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
writes the reference logits [len(IDS), vocab] (float32) for the comma-separated token IDS.
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


def main() -> None:
    fixture, out, bits, group, kind, ids = sys.argv[1:7]
    import json
    with open(os.path.join(fixture, "config.json")) as f:
        config = json.load(f)
    weights = load_weights(fixture)
    for name in list(weights):
        if any(name.endswith(p + ".weight") for p in PROJECTIONS) and ".h." in name:
            weights[name] = quantize_dequantize(np.asarray(weights[name], np.float32), int(bits),
                                                int(group), kind == "symmetric")
    ref = FalconReference(config=config, weights=weights)
    logits = ref.forward_full([int(i) for i in ids.split(",")])
    np.save(out, np.asarray(logits, np.float32))


if __name__ == "__main__":
    main()
