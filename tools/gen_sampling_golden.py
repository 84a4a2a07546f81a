#!/usr/bin/env python3
"""Golden distributions of Hugging Face transformers' sampling logits processors.

    /opt/goldenvenv/bin/python tools/gen_sampling_golden.py \
        --out test/fixtures/sampling/golden.txt

Deterministic and offline (no hub access; checked with transformers 5.24.0, torch 2.15.0, CPU).
For every (logits row, previous ids, settings) case this builds the processor list exactly as
``generate()`` does -- ``model._get_logits_processor(GenerationConfig(...))`` on a tiny
random-weight ``FalconForCausalLM`` -- applies it to the float32 row and writes
``torch.softmax(scores)``: the distribution ``_sample`` hands to ``torch.multinomial``
(greedy cases: ``torch.argmax(scores)``). Before writing anything it checks, with a real
``model.generate(..., output_scores=True, output_logits=True)``, that the list it builds
turns each step's raw logits into exactly generate()'s processed scores.

Processor order in generate() (transformers/generation/utils.py, ``_get_logits_processor``):
RepetitionPenaltyLogitsProcessor, then (do_sample only) TemperatureLogitsWarper,
TopKLogitsWarper, TopPLogitsWarper, MinPLogitsWarper. The script prints the list it built for
the all-processors case.

TopPLogitsWarper sorts with ``torch.sort(stable=False)``; on the CPU that sort does not keep
equal logits in index order for rows longer than 16, so when a group of equal logits straddles
the top-p cut, *which* members HF removes depends on torch's sort internals. Such cases are
marked ``tie 1`` and carry a second distribution (``stable``) computed with the same processors
except that top-p sorts stably (among equal logits the lower ids are removed first) -- the rule
the runtime implements. The test requires equality with ``stable`` per element and with HF's
own output as a multiset (same kept-token count and probabilities).

File format (text, one record per line, floats in shortest round-trip float32 form except the
settings, which are the decimal Python floats given to transformers):
    row <r> <vocab> <logit>...
    ids <i> <n> <id>...
    case <name> row <r> ids <i> greedy <0|1> temperature <t> top_k <k> top_p <p> min_p <m> penalty <q> tie <0|1>
    probs <p>...          (sampling cases)
    stable <p>...         (tie 1 cases only)
    token <id>            (greedy cases)
"""

import argparse
import sys

import numpy as np
import torch
import transformers
from transformers import FalconConfig, FalconForCausalLM, GenerationConfig, LogitsProcessorList
from transformers.generation.logits_process import TopPLogitsWarper


def f32(x):
    """Shortest string that round-trips the float32 value x (strtof gives it back exactly)."""
    x = np.float32(x)
    if x == 0:
        return "0"
    if np.isinf(x):
        return "-inf" if x < 0 else "inf"
    return np.format_float_scientific(x, unique=True, trim="-")


class StableTopP(TopPLogitsWarper):
    """TopPLogitsWarper with a stable sort (index order among equal logits)."""

    def __call__(self, input_ids, scores):
        sorted_logits, sorted_indices = torch.sort(scores, descending=False, stable=True)
        cumulative_probs = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        sorted_indices_to_remove = cumulative_probs <= (1 - self.top_p)
        sorted_indices_to_remove[..., -self.min_tokens_to_keep :] = 0
        indices_to_remove = sorted_indices_to_remove.scatter(1, sorted_indices, sorted_indices_to_remove)
        return scores.masked_fill(indices_to_remove, self.filter_value)


def make_model(vocab):
    config = FalconConfig(vocab_size=vocab, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                          new_decoder_architecture=False, multi_query=True, parallel_attn=True, bias=False,
                          bos_token_id=0, eos_token_id=0)
    torch.manual_seed(1234)
    model = FalconForCausalLM(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.5)
    return model


def generation_config(s):
    """The GenerationConfig of settings s. Every knob is explicit (an unset top_k would become
    generate()'s default 50)."""
    if s["greedy"]:
        return GenerationConfig(do_sample=False, repetition_penalty=s["penalty"], top_k=0)
    kwargs = dict(do_sample=True, temperature=s["temperature"], top_k=s["top_k"], top_p=s["top_p"],
                  repetition_penalty=s["penalty"])
    if s["min_p"] != 0.0:
        kwargs["min_p"] = s["min_p"]
    return GenerationConfig(**kwargs)


def processors_for(model, s, prompt_len):
    return model._get_logits_processor(generation_config=generation_config(s), input_ids_seq_length=prompt_len,
                                       encoder_input_ids=None, prefix_allowed_tokens_fn=None,
                                       logits_processor=LogitsProcessorList(), device="cpu", model_kwargs={})


def check_against_generate(model, s):
    """The processors built here turn generate()'s raw logits into generate()'s scores, bit for bit."""
    vocab = model.config.vocab_size
    prompt = torch.tensor([[1, 5, 5, 7, 2, 9, 1, 3]]) % vocab
    torch.manual_seed(7)
    cfg = generation_config(s)
    out = model.generate(prompt, generation_config=cfg, max_new_tokens=4, min_new_tokens=4,
                         return_dict_in_generate=True, output_scores=True, output_logits=True,
                         pad_token_id=0, eos_token_id=None, attention_mask=torch.ones_like(prompt))
    processors = processors_for(model, s, prompt.shape[1])
    for step, (raw, scores) in enumerate(zip(out.logits, out.scores)):
        ids = out.sequences[:, : prompt.shape[1] + step]
        mine = processors(ids, raw.clone())
        if not torch.equal(mine, scores):
            sys.exit(f"processor list differs from generate() for {s} at step {step}")


def make_rows():
    rng = np.random.default_rng(20240601)
    rows = []
    rows.append(rng.normal(0, 3, 50))                                   # 0: plain
    rows.append(np.round(rng.normal(0, 2, 50) * 2) / 2)                 # 1: many ties (0.5 steps)
    r = rng.normal(0, 40, 50); r[[3, 17, 31]] = [85.0, -90.0, 84.5]     # 2: large magnitudes
    rows.append(r)
    rows.append(-np.abs(rng.normal(0, 5, 50)) - 10)                     # 3: all negative
    rows.append(rng.normal(0, 4, 1000))                                 # 4: plain, big vocab
    r = np.round(rng.normal(0, 3, 1000) * 4) / 4                        # 5: ties, max tied thrice
    r[[10, 500, 999]] = r.max() + 1.0
    rows.append(r)
    rows.append(np.zeros(10))                                           # 6: uniform (exact cut)
    r = rng.normal(0, 1, 1000) * 0.01; r[[40, 41, 700]] = [6.0, 6.0, 5.5]  # 7: flat tail, tied top
    rows.append(r)
    rows.append(np.array([2.0, 1.0, 1.0, 1.0, 0.0, -1.0, 3.0, 3.0, 0.5, 1.0, 1.0, -2.0, 0.0]))  # 8
    return [row.astype(np.float32) for row in rows]


def make_ids(vocab, rng, n, extra=()):
    ids = list(rng.integers(0, vocab, n)) + list(rng.integers(0, min(vocab, 8), n // 3)) + list(extra)
    rng.shuffle(ids)
    return [int(i) for i in ids]


SETTINGS = []


def setting(name, greedy=False, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, penalty=1.0):
    SETTINGS.append(dict(name=name, greedy=greedy, temperature=temperature, top_k=top_k, top_p=top_p,
                         min_p=min_p, penalty=penalty))


setting("softmax")
setting("t0.7", temperature=0.7)
setting("t1.3", temperature=1.3)
setting("k1", top_k=1)
setting("k5", top_k=5)
setting("k40", top_k=40)
setting("k2000", top_k=2000)
setting("p0.5", top_p=0.5)
setting("p0.9", top_p=0.9)
setting("p0.95", top_p=0.95)
setting("m0.05", min_p=0.05)
setting("m0.2", min_p=0.2)
setting("r1.3", penalty=1.3)
setting("r0.8", penalty=0.8)
setting("t0.7_k40_p0.9", temperature=0.7, top_k=40, top_p=0.9)
setting("t1.3_p0.95_m0.05", temperature=1.3, top_p=0.95, min_p=0.05)
setting("k5_p0.5", top_k=5, top_p=0.5)
setting("p0.9_m0.2", top_p=0.9, min_p=0.2)
setting("r1.3_t0.7_k40", penalty=1.3, temperature=0.7, top_k=40)
setting("all_r1.3_t1.3_k5_p0.95_m0.05", penalty=1.3, temperature=1.3, top_k=5, top_p=0.95, min_p=0.05)
setting("all_r0.8_t0.7_k40_p0.9_m0.2", penalty=0.8, temperature=0.7, top_k=40, top_p=0.9, min_p=0.2)
setting("all_r1.3_t0.7_k40_p0.95_m0.05", penalty=1.3, temperature=0.7, top_k=40, top_p=0.95, min_p=0.05)
setting("greedy", greedy=True)
setting("greedy_r1.3", greedy=True, penalty=1.3)
setting("greedy_r0.8", greedy=True, penalty=0.8)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)

    models = {}

    def model_for(vocab):
        if vocab not in models:
            models[vocab] = make_model(vocab)
        return models[vocab]

    # generate() itself, for the all-processors settings and the greedy ones.
    for s in SETTINGS:
        if s["name"].startswith("all_") or s["greedy"] or s["name"] == "p0.9":
            check_against_generate(model_for(50), s)
    every = next(s for s in SETTINGS if s["name"].startswith("all_"))
    print("processor order:", [type(p).__name__ for p in processors_for(model_for(50), every, 8)])

    rows = make_rows()
    rng = np.random.default_rng(99)
    id_lists = []
    for r, row in enumerate(rows):
        vocab = row.shape[0]
        # Repeats, and for row 4 ids past the vocabulary (HF ignores them).
        id_lists.append(make_ids(vocab, rng, max(4, min(24, vocab)), extra=(vocab, vocab + 3) if r == 4 else ()))

    lines = [f"# generated by tools/gen_sampling_golden.py (transformers {transformers.__version__}, "
             f"torch {torch.__version__}); do not edit"]
    for r, row in enumerate(rows):
        lines.append(f"row {r} {row.shape[0]} " + " ".join(f32(v) for v in row))
    for i, ids in enumerate(id_lists):
        lines.append(f"ids {i} {len(ids)} " + " ".join(str(v) for v in ids))

    cases = ties = 0
    for r, row in enumerate(rows):
        vocab = row.shape[0]
        model = model_for(vocab)
        for s in SETTINGS:
            ids = torch.tensor([id_lists[r]], dtype=torch.long)
            processors = processors_for(model, s, ids.shape[1])
            scores = processors(ids, torch.from_numpy(row.copy())[None, :])
            header = (f"case {s['name']}/row{r} row {r} ids {r} greedy {int(s['greedy'])} "
                      f"temperature {0.0 if s['greedy'] else s['temperature']!r} top_k {s['top_k']} "
                      f"top_p {s['top_p']!r} min_p {s['min_p']!r} penalty {s['penalty']!r}")
            if s["greedy"]:
                lines.append(header + " tie 0")
                lines.append(f"token {int(torch.argmax(scores, dim=-1)[0])}")
                cases += 1
                continue
            probs = torch.softmax(scores, dim=-1)[0].numpy()
            stable_list = LogitsProcessorList(
                StableTopP(p.top_p, min_tokens_to_keep=p.min_tokens_to_keep) if isinstance(p, TopPLogitsWarper) else p
                for p in processors)
            stable = torch.softmax(stable_list(ids, torch.from_numpy(row.copy())[None, :]), dim=-1)[0].numpy()
            tie = not np.array_equal(probs, stable)
            lines.append(header + f" tie {int(tie)}")
            lines.append("probs " + " ".join(f32(v) for v in probs))
            if tie:
                lines.append("stable " + " ".join(f32(v) for v in stable))
                ties += 1
            cases += 1

    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{cases} cases ({ties} with a tie group across the top-p cut) -> {args.out}")


if __name__ == "__main__":
    main()
