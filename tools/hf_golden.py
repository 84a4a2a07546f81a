"""What the transformers-based golden generators share (tools/gen_pruning_golden.py,
tools/gen_dtype_golden.py): greedy decoding of a modified model and the parity fixtures'
files, in the layout test/Parity/Inputs/check_parity.py reads.
"""
import json
import os

import numpy as np
import torch
import transformers

FILES = {"full_logits.npy": "float32 [len(prompt_ids) + generated, vocab]: one forward "
                            "over prompt_ids + generated_ids",
         "logits.npy": "float32 [len(prompt_ids), vocab]: one forward over prompt_ids",
         "step_logits.npy": "float32 [max_new_tokens, vocab]: the logits each new token "
                            "was chosen from (one full forward per step)"}


def greedy(model, prompt, max_new_tokens):
    """(tokens, step logits, full logits, prompt logits) of greedy argmax decoding, each step a
    full forward; call under torch.no_grad()."""
    tokens = list(prompt)
    steps = []
    for _ in range(max_new_tokens):
        logits = model(torch.tensor([tokens])).logits[0, -1]
        steps.append(logits.float().numpy())
        tokens.append(int(torch.argmax(logits)))
    full = model(torch.tensor([tokens])).logits[0].float().numpy()
    prompt_logits = model(torch.tensor([prompt])).logits[0].float().numpy()
    return tokens, steps, full, prompt_logits


def write(out, prompt, max_new_tokens, tokens, steps, full, prompt_logits, golden):
    """OUT/{full_logits,logits,step_logits}.npy and OUT/golden.json: `golden`'s keys plus the
    prompt, the generated ids and the versions."""
    os.makedirs(out, exist_ok=True)
    np.save(os.path.join(out, "full_logits.npy"), full.astype(np.float32))
    np.save(os.path.join(out, "logits.npy"), prompt_logits.astype(np.float32))
    np.save(os.path.join(out, "step_logits.npy"), np.stack(steps).astype(np.float32))
    golden = dict(golden)
    golden.update({
        "prompt_ids": prompt,
        "generated_ids": tokens[len(prompt):],
        "max_new_tokens": max_new_tokens,
        "compute_dtype": "float32",
        "attn_implementation": "eager",
        "files": FILES,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
    })
    with open(os.path.join(out, "golden.json"), "w") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")
