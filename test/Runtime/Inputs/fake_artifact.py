#!/usr/bin/env python3
"""Helpers for the falcon-run lit tests around the fake host library.

  fake_artifact.py make OUT LIBRARY [--truncate N] [--flip BYTE] [--set KEY=JSON]   (KEY: dotted, e.g. plan.ranks[0].entry_point)
      Writes an artifact directory OUT: manifest.json, weights.bin (with the
      matching size and checksum, unless --truncate/--flip break the file
      afterwards) and LIBRARY copied to OUT/libfalcon_model.so.
  fake_artifact.py expect-ids PROMPT N
      Prints the N ids the fake generates greedily after PROMPT (1,2,3).
  fake_artifact.py check-npy FILE PROMPT
      Checks that FILE is a float32 .npy 1.0 of the fake's prefill logits.
  fake_artifact.py assert-empty DIR
      Fails unless DIR has no entries (no partial or temporary outputs).

The fake's math mirrors test/unit/runtime/FakeModel.h. The weights checksum
comes from falcon-checksum-file (bench/checksum_file.cpp, on the lit PATH):
the test Python has no xxhash module.
"""

import ast
import json
import os
import platform
import shutil
import struct
import subprocess
import sys

VOCAB, LAYERS, KV_HEADS, HEAD_DIM, MAX_POSITIONS = 256, 2, 2, 4, 64
WEIGHTS = bytes(((i * 37 + 11) & 0xFF) for i in range(1000))
SALT = WEIGHTS[0] + WEIGHTS[-1]


def checksum(path):
    """The manifest spelling of the weights checksum of the file at path."""
    tool = shutil.which("falcon-checksum-file")
    if tool is None:
        sys.exit("falcon-checksum-file is not on PATH (build falcon-test-depends)")
    return subprocess.run([tool, path], check=True, capture_output=True,
                          text=True).stdout.strip()


def next_token(tokens):
    position = len(tokens) - 1
    return (sum(tokens) * 31 + position * position * 7 + SALT) % VOCAB


def logits(tokens):
    target = next_token(tokens)
    return [-float((v - target) % VOCAB) for v in range(VOCAB)]


def parse_ids(text):
    return [int(x) for x in text.split(",")]


def make(args):
    out, library = args[0], args[1]
    os.makedirs(out, exist_ok=True)
    weights_path = os.path.join(out, "weights.bin")
    with open(weights_path, "wb") as f:
        f.write(WEIGHTS)
    manifest = {
        "format_version": 6,
        "model": "fake-tiny",
        # This machine, needing no ISA feature: the fake is plain C.
        "target": {"kind": "cpu",
                   "triple": platform.machine() + "-unknown-linux-gnu",
                   "cpu": "generic", "required_features": [],
                   "vector_bits": 128},
        "activation_dtype": "f32",
        "plan": {"tp": 1, "pp": 1, "threads": 1,
                 "ranks": [{"rank": 0, "stage": 0, "slot": 0,
                            "first_layer": 0, "num_layers": LAYERS,
                            "host_library": "libfalcon_model.so",
                            "entry_point": "_mlir_ciface_forward",
                            "weights": {"file": "weights.bin",
                                        "size": len(WEIGHTS),
                                        "checksum": checksum(weights_path),
                                        "alignment": 64, "tensors": []}}]},
        "config": {"vocab_size": VOCAB, "hidden_size": 16,
                   "num_hidden_layers": LAYERS, "num_attention_heads": 4,
                   "num_kv_heads": KV_HEADS, "head_dim": HEAD_DIM,
                   "max_position_embeddings": MAX_POSITIONS, "alibi": False},
        "kv_cache": {"layers": LAYERS, "kv_heads": KV_HEADS,
                     "head_dim": HEAD_DIM, "dtype": "f32"},
    }
    weights = bytearray(WEIGHTS)
    rest = args[2:]
    while rest:
        flag, value = rest[0], rest[1]
        rest = rest[2:]
        if flag == "--truncate":
            weights = weights[: int(value)]
        elif flag == "--flip":
            weights[int(value)] ^= 0x40
        elif flag == "--set":
            key, raw = value.split("=", 1)
            *parents, last = key.split(".")
            node = manifest
            for parent in parents:
                # "ranks[0]" steps into an array element.
                name, _, index = parent.partition("[")
                node = node[name]
                if index:
                    node = node[int(index.rstrip("]"))]
            node[last] = json.loads(raw)
        else:
            sys.exit("unknown flag " + flag)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    with open(weights_path, "wb") as f:
        f.write(weights)
    shutil.copyfile(library, os.path.join(out, "libfalcon_model.so"))


def expect_ids(args):
    tokens, count = parse_ids(args[0]), int(args[1])
    generated = []
    for _ in range(count):
        generated.append(next_token(tokens))
        tokens.append(generated[-1])
    print(" ".join(str(i) for i in generated))


def check_npy(args):
    path, prompt = args[0], parse_ids(args[1])
    with open(path, "rb") as f:
        data = f.read()
    assert data[:6] == b"\x93NUMPY", "bad magic"
    major, minor = data[6], data[7]
    assert (major, minor) == (1, 0), "version %d.%d" % (major, minor)
    (header_length,) = struct.unpack("<H", data[8:10])
    header_end = 10 + header_length
    assert header_end % 64 == 0, "data not 64-byte aligned"
    header_text = data[10:header_end].decode("latin1")
    assert header_text.endswith("\n"), "header does not end in a newline"
    header = ast.literal_eval(header_text.strip())
    shape = tuple(header["shape"])
    assert header["descr"] == "<f4", header["descr"]
    assert header["fortran_order"] is False
    assert shape == (len(prompt), VOCAB), shape
    body = data[header_end:]
    assert len(body) == 4 * len(prompt) * VOCAB, "data size %d" % len(body)
    values = struct.unpack("<%df" % (len(prompt) * VOCAB), body)
    for position in range(len(prompt)):
        row = list(values[position * VOCAB:(position + 1) * VOCAB])
        assert row == logits(prompt[: position + 1]), "row %d differs" % position
    print("npy ok: version %d.%d, descr %r, fortran_order %r, shape %r"
          % (major, minor, header["descr"], header["fortran_order"], shape))


def assert_empty(args):
    entries = os.listdir(args[0])
    if entries:
        sys.exit("unexpected files: " + " ".join(sorted(entries)))


if __name__ == "__main__":
    commands = {"make": make, "expect-ids": expect_ids, "check-npy": check_npy,
                "assert-empty": assert_empty}
    commands[sys.argv[1]](sys.argv[2:])
