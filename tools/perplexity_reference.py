#!/usr/bin/env python3
"""Reference perplexity of a Falcon checkpoint on a text file, with transformers.

    /opt/goldenvenv/bin/python tools/perplexity_reference.py EXAMPLE_DIR TEXT_FILE [--json OUT]

EXAMPLE_DIR holds config.json, model.safetensors and tokenizer.json (e.g. examples/falcon-mini).
The definition (the C++ runtime implements the same one):

  1. Read TEXT_FILE as UTF-8 bytes, no newline translation, and encode the whole text with
     tokenizer.json (the `tokenizers` library), adding no special tokens.
  2. Split the token list into consecutive, non-overlapping windows of
     n_ctx = config.max_position_embeddings tokens; the last window may be shorter, and a window
     of fewer than 2 tokens is dropped.
  3. In each window every token after the first is scored given the previous tokens of that
     window only (a fresh context per window): nll = -log_softmax(logits)[token], the logits and
     the log-softmax in float32 (the model runs in float32 on CPU, default sdpa attention).
  4. perplexity = exp(sum of nll / number of scored tokens), the sum and exp in float64.

Prints `perplexity: X (tokens T, scored S, windows W)` as its last line; --json OUT writes
{"perplexity", "tokens", "scored_tokens", "windows", "nll_sum"}.
"""

from __future__ import annotations

import argparse
import json
import math
import os

import torch


def perplexity(model, ids, n_ctx):
    """The definition above on an already encoded token list; returns the JSON dict."""
    was_training = model.training
    model.eval()
    nll_sum, scored, windows = 0.0, 0, 0
    with torch.no_grad():
        for start in range(0, len(ids), n_ctx):
            w = ids[start:start + n_ctx]
            if len(w) < 2:
                continue
            x = torch.tensor([w], dtype=torch.long)
            logits = model(input_ids=x, use_cache=False).logits[0].to(torch.float32)
            logp = torch.log_softmax(logits, dim=-1)
            nll = -logp[:-1].gather(1, x[0, 1:, None])[:, 0]
            nll_sum += float(nll.to(torch.float64).sum())
            scored += nll.numel()
            windows += 1
    if was_training:
        model.train()
    ppl = math.exp(nll_sum / scored) if scored else float("nan")
    return {"perplexity": ppl, "tokens": len(ids), "scored_tokens": scored, "windows": windows,
            "nll_sum": nll_sum}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("example_dir")
    ap.add_argument("text_file")
    ap.add_argument("--json", metavar="OUT", help="write the figures as JSON to OUT")
    args = ap.parse_args(argv)

    from tokenizers import Tokenizer  # noqa: PLC0415
    from transformers import FalconForCausalLM  # noqa: PLC0415

    torch.set_num_threads(min(2, torch.get_num_threads()))
    tok = Tokenizer.from_file(os.path.join(args.example_dir, "tokenizer.json"))
    with open(args.text_file, "rb") as f:
        text = f.read().decode("utf-8")
    ids = tok.encode(text, add_special_tokens=False).ids
    model = FalconForCausalLM.from_pretrained(args.example_dir, dtype=torch.float32).eval()
    n_ctx = model.config.max_position_embeddings
    res = perplexity(model, ids, n_ctx)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
            f.write("\n")
    print(f"perplexity: {res['perplexity']:.6f} (tokens {res['tokens']}, scored {res['scored_tokens']}, "
          f"windows {res['windows']}, n_ctx {n_ctx})", flush=True)
    return res


if __name__ == "__main__":
    main()
