#!/usr/bin/env python3
"""Creates a random-weight Falcon checkpoint of a given shape for benchmarks.

usage: make_model.py CONFIG_JSON OUT_DIR [--dtype float32|bfloat16]

The weights are random (normal, std 0.02) -- the benchmark measures speed,
not quality. Saved with save_pretrained (config.json + safetensors).
"""
import argparse
import json
import os

import torch
from transformers import FalconConfig, FalconForCausalLM


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("out")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    args = parser.parse_args()
    if os.path.exists(os.path.join(args.out, "config.json")):
        print(f"{args.out}: exists, reusing")
        return
    torch.manual_seed(0)
    config = FalconConfig(**json.load(open(args.config)))
    with torch.no_grad():
        model = FalconForCausalLM(config).to(getattr(torch, args.dtype))
    model.save_pretrained(args.out, safe_serialization=True, max_shard_size="20GB")
    n = sum(p.numel() for p in model.parameters())
    print(f"{args.out}: {n} parameters, {args.dtype}")


if __name__ == "__main__":
    main()
