#!/usr/bin/env python3
"""Writes a rewritten (usually corrupted) copy of a checkpoint directory.

usage: rewrite_checkpoint.py SRC_DIR DST_DIR MODE

Modes: shard (a valid two-shard checkpoint with model.safetensors.index.json),
truncate, header-past-end, offsets-past-end, overlap, unknown-dtype,
transpose-qkv (a consistent header whose qkv shape disagrees with config.json),
drop-qkv (a missing tensor), bf16-layer0 (one layer stored in another dtype),
gap (bytes between two tensors that no tensor owns),
deep-header (metadata nested 100,000 arrays deep: a recursive parser would
overflow its stack), nan-qkv (layer 0's fused QKV weight's first value NaN: a
valid file with a value no quantizer can take); for a GPTQ checkpoint
(config.json quantization_config): drop-qweight (layer 0's fused QKV codes
missing), gidx-out-of-range (its g_idx sends input 0 to group 99),
gidx-unbalanced (input 0 to group 1: groups of 31 and 33 inputs),
desc-act (the config claims act-order), scales-i32 (its scales' dtype I32).
Only the standard library is used.
"""
import json
import shutil
import struct
import sys

src, dst, mode = sys.argv[1:4]
shutil.copytree(src, dst)
path = f"{dst}/model.safetensors"
blob = open(path, "rb").read()
(length,) = struct.unpack("<Q", blob[:8])
header = json.loads(blob[8:8 + length])
data = blob[8 + length:]
tensors = sorted((k for k in header if k != "__metadata__"),
                 key=lambda k: header[k]["data_offsets"][0])
qkv = "transformer.h.0.self_attention.query_key_value.weight"


def cut(begin, end):
    """The data without bytes [begin, end), every later tensor moved down, so
    that the data section stays tiled exactly (no gap) as the format requires."""
    for name in tensors:
        b, e = header[name]["data_offsets"]
        if b >= end:
            header[name]["data_offsets"] = [b - (end - begin), e - (end - begin)]
    return data[:begin] + data[end:]


def write(header_obj, data_bytes, length_override=None):
    raw = json.dumps(header_obj).encode()
    size = len(raw) if length_override is None else length_override
    open(path, "wb").write(struct.pack("<Q", size) + raw + data_bytes)


if mode == "shard":
    import os
    os.remove(path)
    halves = [tensors[: len(tensors) // 2], tensors[len(tensors) // 2:]]
    weight_map = {}
    for i, names in enumerate(halves):
        shard = f"model-{i + 1:05d}-of-00002.safetensors"
        sub, chunks, offset = {}, [], 0
        for name in names:
            begin, end = header[name]["data_offsets"]
            sub[name] = dict(header[name], data_offsets=[offset, offset + end - begin])
            chunks.append(data[begin:end])
            offset += end - begin
            weight_map[name] = shard
        raw = json.dumps(sub).encode()
        open(f"{dst}/{shard}", "wb").write(struct.pack("<Q", len(raw)) + raw + b"".join(chunks))
    json.dump({"metadata": {}, "weight_map": weight_map},
              open(f"{dst}/model.safetensors.index.json", "w"))
elif mode == "truncate":
    open(path, "wb").write(blob[:len(blob) - 100])
elif mode == "header-past-end":
    write(header, data, length_override=len(blob) * 4)
elif mode == "offsets-past-end":
    last = tensors[-1]
    begin, end = header[last]["data_offsets"]
    header[last]["data_offsets"] = [begin + 64, end + 64]
    write(header, data)
elif mode == "overlap":
    a, b = tensors[0], tensors[1]
    size = header[b]["data_offsets"][1] - header[b]["data_offsets"][0]
    start = header[a]["data_offsets"][0]
    header[b]["data_offsets"] = [start, start + size]
    write(header, data)
elif mode == "unknown-dtype":
    header[qkv]["dtype"] = "Q4_K"
    write(header, data)
elif mode == "transpose-qkv":
    header[qkv]["shape"] = list(reversed(header[qkv]["shape"]))
    write(header, data)
elif mode == "drop-qkv":
    begin, end = header[qkv]["data_offsets"]
    del header[qkv]
    tensors.remove(qkv)
    write(header, cut(begin, end))
elif mode == "bf16-layer0":
    entry = header[qkv]
    begin, end = entry["data_offsets"]
    entry["dtype"] = "BF16"
    entry["data_offsets"] = [begin, begin + (end - begin) // 2]
    write(header, cut(begin + (end - begin) // 2, end))
elif mode == "gap":
    # 16 bytes no tensor owns between the first two tensors.
    for name in tensors[1:]:
        b, e = header[name]["data_offsets"]
        header[name]["data_offsets"] = [b + 16, e + 16]
    split = header[tensors[0]]["data_offsets"][1]
    write(header, data[:split] + bytes(16) + data[split:])
elif mode == "nan-qkv":
    begin = header[qkv]["data_offsets"][0]
    assert header[qkv]["dtype"] == "F32"
    write(header, data[:begin] + struct.pack("<f", float("nan")) + data[begin + 4:])
elif mode == "deep-header":
    header.pop("__metadata__", None)  # replaced by the deep one, not repeated
    raw = json.dumps(header).encode()
    raw = raw[:-1] + b', "__metadata__": {"x": ' + b"[" * 100000 + b"]" * 100000 + b"}}"
    open(path, "wb").write(struct.pack("<Q", len(raw)) + raw + data)
elif mode == "drop-qweight":
    name = qkv.replace(".weight", ".qweight")
    begin, end = header[name]["data_offsets"]
    del header[name]
    tensors.remove(name)
    write(header, cut(begin, end))
elif mode == "gidx-out-of-range":
    begin = header[qkv.replace(".weight", ".g_idx")]["data_offsets"][0]
    write(header, data[:begin] + struct.pack("<i", 99) + data[begin + 4:])
elif mode == "gidx-unbalanced":
    begin = header[qkv.replace(".weight", ".g_idx")]["data_offsets"][0]
    write(header, data[:begin] + struct.pack("<i", 1) + data[begin + 4:])
elif mode == "scales-i32":
    entry = header[qkv.replace(".weight", ".scales")]
    begin, end = entry["data_offsets"]
    entry["dtype"] = "I32"
    entry["data_offsets"] = [begin, begin + 2 * (end - begin)]
    for name in tensors:
        b, e = header[name]["data_offsets"]
        if b >= end:
            header[name]["data_offsets"] = [b + (end - begin), e + (end - begin)]
    write(header, data[:end] + bytes(end - begin) + data[end:])
elif mode == "desc-act":
    config = json.load(open(f"{dst}/config.json"))
    config["quantization_config"]["desc_act"] = True
    json.dump(config, open(f"{dst}/config.json", "w"))
else:
    sys.exit(f"unknown mode {mode}")
