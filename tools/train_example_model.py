#!/usr/bin/env python3
"""Train examples/falcon-mini: a small, real Falcon-7B-shaped model that writes English.

    /opt/goldenvenv/bin/python tools/train_example_model.py --out examples/falcon-mini

What it reads (offline, present on every Debian 12 machine with Python 3.11):
  /usr/lib/python3.11/pydoc_data/topics.py  (Debian package libpython3.11-stdlib; the file
  this was trained from came from 3.11.2-6+deb12u6, sha256 2d810803...8e518d). It holds the
  `topics` dict: the plain-text "help topics" of the Python 3.11 Language Reference and
  Library Reference (the prose behind `help("for")`). The file is loaded by path with
  importlib; only when that path is missing does the script fall back to the running
  Python's own `pydoc_data.topics` (then the data, and so the model, differ). The script
  prints which one it used and the file's sha256.

Data split (fixed, by topic name):
  * held out, never trained on: HELDOUT_TOPICS ("debugger", "typesmapping", ~31 kB); no
    paragraph of them occurs in any other topic. They are written, joined by blank lines, to
    heldout.txt.
  * training: every other topic, in sorted-name order, minus the topics whose every paragraph
    of > 80 characters also occurs in another kept topic (e.g. "for" is a section of
    "compound"), so the text is not trained on twice. Documents are separated by
    <|endoftext|>.

Pipeline: a byte-level BPE tokenizer (tokenizers library, vocab 4096) with Falcon's
tokenizer.json setup (no normalizer; pre-tokenizer Sequence[Punctuation(contiguous),
ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True), Digits(contiguous),
Split("[0-9][0-9][0-9]", isolated)]; ByteLevel post-processor and decoder; Falcon's 12
special tokens at ids 0..11 with <|endoftext|> = 11), then a FalconForCausalLM in float32
(parallel attention, multi-query, RoPE, no bias, tied embeddings; see CONFIG), trained with
AdamW and a warmup + cosine schedule on random 256-token windows of the token stream.
Everything is seeded and single-process; torch.use_deterministic_algorithms(True) and 2
threads, so a rerun in the same environment (tools/requirements-golden.txt) gives the same
weights.

It writes to --out: config.json, model.safetensors, generation_config.json, tokenizer.json,
tokenizer_config.json, heldout.txt, perplexity.json (via tools/perplexity_reference.py's
definition), golden.json (greedy continuations of fixed prompts, 32 new tokens, EOS
ignored), and train_log.json (loss curve, timings). README.md is written by hand.

Measured (2 cores of the development machine, shared with other builds): see
examples/falcon-mini/README.md and train_log.json ("train_seconds").
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import math
import os
import sys
import time

import numpy as np
import torch
import transformers
import tokenizers
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import FalconConfig, FalconForCausalLM, GenerationConfig

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import perplexity_reference as pr  # noqa: E402

DEBIAN_TOPICS = "/usr/lib/python3.11/pydoc_data/topics.py"
HELDOUT_TOPICS = ("debugger", "typesmapping")
# Falcon-7B's special tokens, in its id order (ids 0..11); <|endoftext|> is the EOS.
SPECIAL_TOKENS = [">>TITLE<<", ">>ABSTRACT<<", ">>INTRODUCTION<<", ">>SUMMARY<<", ">>COMMENT<<",
                  ">>ANSWER<<", ">>QUESTION<<", ">>DOMAIN<<", ">>PREFIX<<", ">>SUFFIX<<",
                  ">>MIDDLE<<", "<|endoftext|>"]
EOS = "<|endoftext|>"
VOCAB = 4096
N_CTX = 256
SEED = 20240601

CONFIG = dict(
    vocab_size=VOCAB, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
    new_decoder_architecture=False, multi_query=True, parallel_attn=True, alibi=False, bias=False,
    max_position_embeddings=N_CTX, tie_word_embeddings=True, hidden_dropout=0.1,
    attention_dropout=0.0, initializer_range=0.02,
)
PROMPTS = ["The for statement", "A class definition defines", "The return statement"]
GOLDEN_NEW_TOKENS = 32


# ----------------------------------------------------------------------------------- data
def load_topics():
    if os.path.exists(DEBIAN_TOPICS):
        path = DEBIAN_TOPICS
        spec = importlib.util.spec_from_file_location("debian_pydoc_topics", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        source = f"{path} (Debian package libpython3.11-stdlib)"
    else:
        import pydoc_data.topics as mod  # noqa: PLC0415
        path = mod.__file__
        source = f"{path} (fallback: the running Python's pydoc_data.topics; Debian path missing)"
    with open(path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    print(f"training text: {source}, sha256 {sha}, {len(mod.topics)} topics", flush=True)
    return dict(mod.topics), source, sha


def long_paragraphs(text):
    return {p.strip() for p in text.split("\n\n") if len(p.strip()) > 80}


def split_topics(topics):
    heldout = [topics[k] for k in HELDOUT_TOPICS]
    train_names = sorted(k for k in topics if k not in HELDOUT_TOPICS)
    paras = {k: long_paragraphs(topics[k]) for k in train_names}
    kept = list(train_names)
    # Drop, smallest first (ties by name), a topic all of whose long paragraphs occur in
    # another still-kept topic.
    for k in sorted(train_names, key=lambda k: (len(topics[k]), k)):
        others = set().union(*(paras[o] for o in kept if o != k))
        if paras[k] and paras[k] <= others:
            kept.remove(k)
    held_paras = set().union(*(long_paragraphs(t) for t in heldout))
    leak = held_paras & set().union(*(paras[k] for k in kept))
    assert not leak, f"held-out paragraphs occur in training topics: {len(leak)}"
    dropped = [k for k in train_names if k not in kept]
    return [topics[k] for k in kept], kept, dropped, heldout


# ------------------------------------------------------------------------------ tokenizer
def falcon_pre_tokenizer():
    return pre_tokenizers.Sequence([
        pre_tokenizers.Punctuation(behavior="contiguous"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
        pre_tokenizers.Digits(individual_digits=False),
        pre_tokenizers.Split(Regex("[0-9][0-9][0-9]"), behavior="isolated", invert=False),
    ])


def train_tokenizer(docs):
    tok = Tokenizer(models.BPE(dropout=None, unk_token=None, fuse_unk=False))
    tok.normalizer = None
    tok.pre_tokenizer = falcon_pre_tokenizer()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB, min_frequency=2, show_progress=False, special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(docs, trainer=trainer)
    assert tok.get_vocab_size() <= VOCAB, tok.get_vocab_size()
    for i, s in enumerate(SPECIAL_TOKENS):
        assert tok.token_to_id(s) == i, (s, tok.token_to_id(s))
    return tok


# -------------------------------------------------------------------------------- training
def set_determinism():
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)


def lr_at(step, steps, peak, warmup):
    if step < warmup:
        return peak * (step + 1) / warmup
    p = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * p)))


def train(model, stream, steps, batch, peak_lr, warmup, log_every, eval_fn=None):
    gen = torch.Generator().manual_seed(SEED + 1)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=peak_lr, betas=(0.9, 0.95), eps=1e-8)
    data = torch.from_numpy(stream)
    n = len(stream) - (N_CTX + 1)
    model.train()
    log = []
    t0 = time.time()
    ema = None
    for step in range(steps):
        starts = torch.randint(0, n, (batch,), generator=gen)
        x = torch.stack([data[s:s + N_CTX + 1] for s in starts.tolist()])
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, peak_lr, warmup)
        out = model(input_ids=x[:, :-1], labels=x[:, :-1], use_cache=False)
        # HF shifts labels by one inside the loss: position t is scored on x[t+1].
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss = out.loss.item()
        ema = loss if ema is None else 0.98 * ema + 0.02 * loss
        if step % log_every == 0 or step == steps - 1:
            rec = {"step": step, "loss": round(loss, 4), "loss_ema": round(ema, 4),
                   "lr": round(lr_at(step, steps, peak_lr, warmup), 6),
                   "seconds": round(time.time() - t0, 1)}
            if eval_fn is not None and step > 0 and (step % (log_every * 5) == 0 or step == steps - 1):
                rec["heldout_ppl_monitor"] = round(eval_fn(), 3)
                model.train()
            log.append(rec)
            print(json.dumps(rec), flush=True)
    model.eval()
    return log, time.time() - t0


def train_set_loss(model, stream, windows=64):
    """Mean next-token loss over fixed, evenly spaced 256-token windows of the training stream."""
    model.eval()
    n = len(stream) - (N_CTX + 1)
    starts = np.linspace(0, n, windows).astype(np.int64)
    tot, cnt = 0.0, 0
    with torch.no_grad():
        for s in starts:
            x = torch.from_numpy(stream[s:s + N_CTX])[None]
            logp = torch.log_softmax(model(input_ids=x, use_cache=False).logits[0].float(), -1)
            nll = -logp[:-1].gather(1, x[0, 1:, None])[:, 0]
            tot += nll.double().sum().item()
            cnt += nll.numel()
    return tot / cnt


# --------------------------------------------------------------------------------- outputs
def write_golden(model, tok, out_dir):
    model.eval()
    eos = tok.token_to_id(EOS)
    res = []
    for prompt in PROMPTS:
        ids = tok.encode(prompt, add_special_tokens=False).ids
        x = torch.tensor([ids])
        with torch.no_grad():
            g = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=GOLDEN_NEW_TOKENS,
                               min_new_tokens=0, do_sample=False, eos_token_id=None, pad_token_id=eos,
                               output_scores=True, return_dict_in_generate=True)
        new = g.sequences[0, len(ids):].tolist()
        gaps = [float(torch.topk(s[0].float(), 2).values.diff().abs()) for s in g.scores]
        res.append({"prompt": prompt, "prompt_ids": ids, "generated_ids": new,
                    "text": tok.decode(ids + new, skip_special_tokens=False),
                    "generated_text": tok.decode(new, skip_special_tokens=False),
                    "min_top2_logit_gap": round(min(gaps), 6)})
        print(f"golden: {res[-1]['text']!r}", flush=True)
    golden = {
        "description": "HF greedy continuations (model.generate, do_sample=False, float32, CPU, "
                       "default sdpa attention, EOS ignored: eos_token_id=None) of fixed prompts "
                       "encoded with tokenizer.json and no special tokens.",
        "new_tokens": GOLDEN_NEW_TOKENS, "eos_token_id": eos, "eos_ignored": True,
        "transformers_version": transformers.__version__, "torch_version": torch.__version__,
        "tokenizers_version": tokenizers.__version__, "prompts": res,
    }
    with open(os.path.join(out_dir, "golden.json"), "w") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")
    return golden


def sample_text(model, tok, prompt, n=120):
    ids = tok.encode(prompt, add_special_tokens=False).ids
    x = torch.tensor([ids])
    with torch.no_grad():
        g = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=n, do_sample=False,
                           repetition_penalty=None, pad_token_id=tok.token_to_id(EOS))
    return tok.decode(g[0].tolist(), skip_special_tokens=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="examples/falcon-mini")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--layers", type=int, default=CONFIG["num_hidden_layers"])
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--monitor-heldout", action="store_true",
                    help="print held-out perplexity during training (monitoring only; not used to pick anything)")
    args = ap.parse_args()
    t_start = time.time()
    set_determinism()
    os.makedirs(args.out, exist_ok=True)

    topics, source, sha = load_topics()
    train_docs, kept, dropped, heldout = split_topics(topics)
    heldout_text = "\n\n".join(t.strip("\n") for t in heldout) + "\n"
    heldout_path = os.path.join(args.out, "heldout.txt")
    with open(heldout_path, "w", encoding="utf-8", newline="") as f:
        f.write(heldout_text)
    print(f"train topics: {len(kept)} ({sum(map(len, train_docs))} chars), dropped as duplicates: "
          f"{dropped}; held out: {list(HELDOUT_TOPICS)} ({len(heldout_text)} chars)", flush=True)

    tok = train_tokenizer(train_docs)
    tok.save(os.path.join(args.out, "tokenizer.json"))
    tok = Tokenizer.from_file(os.path.join(args.out, "tokenizer.json"))
    eos = tok.token_to_id(EOS)
    stream = [eos]
    for d in train_docs:
        stream += tok.encode(d, add_special_tokens=False).ids + [eos]
    stream = np.asarray(stream, dtype=np.int64)
    print(f"tokenizer: vocab {tok.get_vocab_size()}, training stream {len(stream)} tokens", flush=True)

    cfg = FalconConfig(**{**CONFIG, "num_hidden_layers": args.layers}, bos_token_id=eos,
                       eos_token_id=eos, pad_token_id=None)
    torch.manual_seed(SEED)
    model = FalconForCausalLM(cfg).float()
    nparam = sum(p.numel() for p in model.parameters())
    print(f"model: {nparam} parameters ({nparam * 4 / 1e6:.1f} MB f32)", flush=True)

    held_ids = tok.encode(heldout_text, add_special_tokens=False).ids

    def monitor():
        return pr.perplexity(model, held_ids, N_CTX)["perplexity"]

    log, train_s = train(model, stream, args.steps, args.batch, args.lr, args.warmup, args.log_every,
                         monitor if args.monitor_heldout else None)
    print(f"training: {args.steps} steps x {args.batch} x {N_CTX} tokens in {train_s:.1f} s", flush=True)

    model.generation_config = GenerationConfig(bos_token_id=eos, eos_token_id=eos, pad_token_id=eos,
                                               max_new_tokens=64, do_sample=False)
    model.save_pretrained(args.out, safe_serialization=True)
    with open(os.path.join(args.out, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": EOS, "bos_token": EOS,
                   "model_max_length": N_CTX, "add_prefix_space": False, "clean_up_tokenization_spaces": False},
                  f, indent=2)
        f.write("\n")

    # Everything below is computed from the files just written, as a user would load them.
    model = FalconForCausalLM.from_pretrained(args.out, dtype=torch.float32).eval()
    train_loss = train_set_loss(model, stream)
    ppl = pr.main([args.out, heldout_path, "--json", os.path.join(args.out, "perplexity.json")])
    golden = write_golden(model, tok, args.out)
    samples = {p: sample_text(model, tok, p) for p in ("The for statement", "The try statement")}
    for p, s in samples.items():
        print(f"--- sample ({p!r}, greedy, 120 new tokens):\n{s}\n---", flush=True)
    with open(os.path.join(args.out, "train_log.json"), "w") as f:
        json.dump({"source": source, "source_sha256": sha, "train_topics": kept,
                   "dropped_duplicate_topics": dropped, "heldout_topics": list(HELDOUT_TOPICS),
                   "train_tokens": int(len(stream)), "heldout_tokens": len(held_ids),
                   "parameters": nparam, "steps": args.steps, "batch": args.batch, "n_ctx": N_CTX,
                   "peak_lr": args.lr, "warmup": args.warmup, "seed": SEED,
                   "train_seconds": round(train_s, 1), "total_seconds": round(time.time() - t_start, 1),
                   "train_loss_final_ema": log[-1]["loss_ema"], "train_set_loss_eval": round(train_loss, 4),
                   "train_set_ppl_eval": round(math.exp(train_loss), 3),
                   "heldout_perplexity": ppl["perplexity"], "samples": samples, "log": log,
                   "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                                "tokenizers": tokenizers.__version__}}, f, indent=1)
        f.write("\n")
    print(f"train-set loss {train_loss:.4f} (ppl {math.exp(train_loss):.2f}); held-out perplexity "
          f"{ppl['perplexity']:.3f}; training {train_s:.1f} s, total {time.time() - t_start:.1f} s", flush=True)


if __name__ == "__main__":
    main()
