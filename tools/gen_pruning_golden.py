#!/usr/bin/env python3
"""Golden data for structured pruning (falcon-compile --prune-heads/--prune-ffn).

For a fixture, ratios and calibration token ids, runs transformers (f32) over the calibration
ids and measures what docs/precision.md ("Structured pruning") defines as importance, from the
model's own modules (forward hooks), independently of the C++ calibration pass:
  head h:   sum over tokens of |dense[:, head h] . context_h|^2  (context: dense's input)
  neuron j: sum over tokens of act(dense_h_to_4h x)_j^2 * |dense_4h_to_h[:, j]|^2
selects what to remove by the documented rule, and computes the pruned model's reference by
zeroing the removed heads' dense columns and the removed neurons' dense_4h_to_h columns: a
head or neuron whose output columns are zero contributes nothing, which is exactly removing it.
Writes OUT/golden.json (selection, importance, prompt, greedy ids), OUT/full_logits.npy
(float32 [len(prompt) + generated, vocab]) OUT/logits.npy (the prompt's) and OUT/step_logits.npy (each greedy step's) in the layout of
the parity fixtures, so that
test/Parity/Inputs/check_parity.py reads them.

Usage (transformers, torch):
  python tools/gen_pruning_golden.py FIXTURE OUT --prune-heads R --prune-ffn R
      --calibration-ids FILE [--prompt-ids 1,17,...] [--max-new-tokens 20]
"""
import argparse
import math
import os
import sys

import numpy as np
import torch
import transformers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_golden  # noqa: E402

WINDOW = 512  # kPruningCalibrationWindow in include/falcon/Import/Pruning.h


def keep_most_important(importance, first, count, remove):
    """Indices first..first+count-1 minus the `remove` least important (ties: higher index goes)."""
    order = sorted(range(first, first + count), key=lambda i: (importance[i], -i))
    return sorted(order[remove:])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("fixture")
    parser.add_argument("out")
    parser.add_argument("--prune-heads", type=float, default=0.0)
    parser.add_argument("--prune-ffn", type=float, default=0.0)
    parser.add_argument("--calibration-ids", required=True)
    parser.add_argument("--prompt-ids", default="1,17,42,99,3,250,7")
    parser.add_argument("--max-new-tokens", type=int, default=20)
    args = parser.parse_args()

    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        args.fixture, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    cfg = model.config
    layers = model.transformer.h
    num_heads = cfg.num_attention_heads
    head_dim = cfg.hidden_size // num_heads
    if cfg.new_decoder_architecture:
        groups = cfg.num_kv_heads
    elif cfg.multi_query:
        groups = 1
    else:
        groups = num_heads
    per_group = num_heads // groups
    ffn = layers[0].mlp.dense_h_to_4h.out_features

    ids = [int(x) for x in open(args.calibration_ids).read().replace(",", " ").split()]
    head_energy = np.zeros((len(layers), num_heads))
    neuron_energy = np.zeros((len(layers), ffn))
    hooks = []
    for index, layer in enumerate(layers):
        dense = layer.self_attention.dense.weight.detach().double()
        down_columns = (layer.mlp.dense_4h_to_h.weight.detach().double() ** 2).sum(dim=0)

        def on_dense(module, inputs, index=index, dense=dense):
            context = inputs[0][0].detach().double()  # [T, H * d]
            for h in range(num_heads):
                part = slice(h * head_dim, (h + 1) * head_dim)
                share = context[:, part] @ dense[:, part].T
                head_energy[index, h] += float((share ** 2).sum())

        def on_act(module, inputs, output, index=index, down_columns=down_columns):
            a = output[0].detach().double()  # [T, F]
            neuron_energy[index] += ((a ** 2).sum(dim=0) * down_columns).numpy()

        hooks.append(layer.self_attention.dense.register_forward_pre_hook(on_dense))
        hooks.append(layer.mlp.act.register_forward_hook(on_act))
    window = min(WINDOW, cfg.max_position_embeddings)
    with torch.no_grad():
        for start in range(0, len(ids), window):
            model(torch.tensor([ids[start:start + window]]))
    for hook in hooks:
        hook.remove()

    remove_heads = min(max(math.floor(args.prune_heads * per_group + 0.5), 0), per_group - 1)
    kept_neurons = ffn - math.floor(args.prune_ffn * ffn + 0.5)
    if ffn % 16 == 0:
        kept_neurons = min(ffn, (kept_neurons + 15) // 16 * 16)
    kept_neurons = max(kept_neurons, 1)
    selection = []
    with torch.no_grad():
        for index, layer in enumerate(layers):
            heads = []
            for group in range(groups):
                heads += keep_most_important(head_energy[index], group * per_group, per_group,
                                             remove_heads)
            neurons = keep_most_important(neuron_energy[index], 0, ffn, ffn - kept_neurons)
            for h in sorted(set(range(num_heads)) - set(heads)):
                layer.self_attention.dense.weight[:, h * head_dim:(h + 1) * head_dim] = 0
            for j in sorted(set(range(ffn)) - set(neurons)):
                layer.mlp.dense_4h_to_h.weight[:, j] = 0
            selection.append({
                "layer": index,
                "kept_heads": heads,
                "removed_heads": sorted(set(range(num_heads)) - set(heads)),
                "head_importance": head_energy[index].tolist(),
                "removed_neurons": sorted(set(range(ffn)) - set(neurons)),
                "neuron_importance": neuron_energy[index].tolist(),
            })

        prompt = [int(x) for x in args.prompt_ids.split(",")]
        result = hf_golden.greedy(model, prompt, args.max_new_tokens)

    hf_golden.write(args.out, prompt, args.max_new_tokens, *result, {
        "variant": os.path.basename(os.path.normpath(args.fixture)),
        "prune_heads": args.prune_heads,
        "prune_ffn": args.prune_ffn,
        "calibration_ids": ids,
        "decoding": "greedy argmax over the pruned model (removed heads' dense columns and "
                    "removed neurons' dense_4h_to_h columns zeroed)",
        "layers": selection,
    })

if __name__ == "__main__":
    main()
