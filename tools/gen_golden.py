#!/usr/bin/env python3
"""Generate tiny random-weight Falcon checkpoints and golden outputs for falcon-mlir tests.

    /opt/goldenvenv/bin/python tools/gen_golden.py --out test/fixtures

For every variant this builds a ``transformers.FalconForCausalLM`` from a ``FalconConfig``
(no hub access), initialises it deterministically with a large-ish std so logits are not
flat, saves it with ``save_pretrained(safe_serialization=True)`` (config.json +
model.safetensors; generation_config.json is removed), reloads it from disk in float32 and
computes, on CPU with the default (sdpa) attention:

  logits.npy       float32 [prompt_len, vocab]  logits of every prompt position (one forward)
  full_logits.npy  float32 [prompt_len + new_tokens, vocab]  one forward over prompt +
                   generated ids; row i predicts token i+1, so rows prompt_len-1 .. end-2 are
                   the logits that chose generated_ids (checks the KV-cache path at logit level)
  golden.json      prompt_ids, generated_ids (20 greedy tokens, prompt excluded), versions...

It then checks the independent numpy reference ``tools/falcon_reference.py`` against HF
(full-sequence logits max|diff| <= 1e-4, and incremental decode with a KV cache reproducing
the greedy tokens) and runs extra diagnostics (ALiBi bf16 formula, HF eager-vs-sdpa ALiBi,
long-context ALiBi, RoPE scaling) that are printed but not saved.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import torch
import transformers
from transformers import FalconConfig, FalconForCausalLM, GenerationConfig

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import falcon_reference as fr  # noqa: E402

PROMPT = [1, 17, 42, 99, 3, 250, 7]
NEW_TOKENS = 20
TOL = 1e-4
SEED = 1234

# Non-default ffn_hidden_size keeps the 40b/11b/rw fixtures under 1 MB (4*h would not fit) and
# exercises the ffn_hidden_size field; falcon-7b-tiny keeps the default 4*h.
VARIANTS = {
    "falcon-7b-tiny": dict(
        vocab_size=256, hidden_size=80, num_hidden_layers=2, num_attention_heads=5,
        new_decoder_architecture=False, multi_query=True, parallel_attn=True, alibi=False, bias=False,
        tie_word_embeddings=True,
    ),
    "falcon-40b-tiny": dict(
        vocab_size=256, hidden_size=128, num_hidden_layers=2, num_attention_heads=8, num_kv_heads=2,
        new_decoder_architecture=True, num_ln_in_parallel_attn=None, parallel_attn=True, alibi=False,
        bias=False, ffn_hidden_size=160, tie_word_embeddings=False,
    ),
    "falcon-11b-tiny": dict(
        vocab_size=256, hidden_size=128, num_hidden_layers=2, num_attention_heads=8, num_kv_heads=4,
        new_decoder_architecture=True, num_ln_in_parallel_attn=1, parallel_attn=True, alibi=False,
        bias=False, rope_theta=500042.0, ffn_hidden_size=160, tie_word_embeddings=True,
    ),
    "falcon-rw-tiny": dict(
        vocab_size=256, hidden_size=96, num_hidden_layers=2, num_attention_heads=6,
        new_decoder_architecture=False, multi_query=False, parallel_attn=False, alibi=True, bias=True,
        ffn_hidden_size=256, tie_word_embeddings=True,
    ),
    # Same config and weights as falcon-7b-tiny, stored as bfloat16.
    "falcon-7b-tiny-bf16": "falcon-7b-tiny",
    # Extra ALiBi fixture (not in the original list): 20 heads -> n=16 slopes 2^(-k/2) plus 4 extra
    # 2^(-k/4), which are NOT exact in bf16 (falcon-rw-tiny's 6 heads all have power-of-two slopes,
    # so there the bf16 rounding is a no-op), head_dim 4, vocab 128, and a 300-token prompt
    # (PROMPTS) so that the bf16 rounding of key positions > 256 is exercised too.
    "falcon-rw-h20-tiny": dict(
        vocab_size=128, hidden_size=80, num_hidden_layers=2, num_attention_heads=20,
        new_decoder_architecture=False, multi_query=False, parallel_attn=False, alibi=True, bias=True,
        ffn_hidden_size=128, tie_word_embeddings=True,
    ),
    # RoPE scaling (the 7b-tiny shape). Dynamic NTK with max_position_embeddings 12: the prompt (7)
    # uses the original frequencies, generation grows past 12 and rescales theta every step. HF's
    # cache keeps each key rotated as it was when cached, so for this fixture the incremental logits
    # differ from a full forward; step_logits.npy (HF generate's own per-step logits) is the golden.
    "falcon-7b-tiny-rope-linear": dict(
        vocab_size=256, hidden_size=80, num_hidden_layers=2, num_attention_heads=5,
        new_decoder_architecture=False, multi_query=True, parallel_attn=True, alibi=False, bias=False,
        tie_word_embeddings=True,
        rope_parameters={"rope_type": "linear", "factor": 2.5, "rope_theta": 10000.0},
    ),
    "falcon-7b-tiny-rope-dynamic": dict(
        vocab_size=256, hidden_size=80, num_hidden_layers=2, num_attention_heads=5,
        new_decoder_architecture=False, multi_query=True, parallel_attn=True, alibi=False, bias=False,
        tie_word_embeddings=True, max_position_embeddings=12,
        rope_parameters={"rope_type": "dynamic", "factor": 2.0, "rope_theta": 10000.0},
    ),
}


def is_dynamic_rope(kw) -> bool:
    return isinstance(kw, dict) and (kw.get("rope_parameters") or {}).get("rope_type") == "dynamic"

# Per-variant prompt (default PROMPT).  falcon-rw-h20-tiny uses a 300-token prompt so that ALiBi key
# positions exceed 256, where HF's bf16 cast of the int64 positions starts rounding (257 -> 256).
LONG_PROMPT = [int(t) for t in np.random.default_rng(2024).integers(0, 128, size=300)]
PROMPTS = {"falcon-rw-h20-tiny": LONG_PROMPT}

# Not saved: used only by the in-memory diagnostics.
EXTRA_CONFIGS = {
    "7b-rope-linear": dict(
        vocab_size=256, hidden_size=80, num_hidden_layers=2, num_attention_heads=5,
        rope_parameters={"rope_type": "linear", "factor": 2.5, "rope_theta": 10000.0},
    ),
    "7b-rope-dynamic": dict(
        vocab_size=256, hidden_size=80, num_hidden_layers=2, num_attention_heads=5,
        max_position_embeddings=12,
        rope_parameters={"rope_type": "dynamic", "factor": 2.0, "rope_theta": 10000.0},
    ),
}


def make_config(kw: dict) -> FalconConfig:
    kw = dict(kw)
    theta = kw.pop("rope_theta", None)
    if theta is not None:
        kw["rope_parameters"] = {"rope_type": "default", "rope_theta": theta}
    return FalconConfig(**kw)


def build_model(kw: dict, seed: int = SEED) -> FalconForCausalLM:
    """FalconForCausalLM with deterministic large-std random weights (float32)."""
    torch.manual_seed(seed)
    model = FalconForCausalLM(make_config(kw)).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):  # tied lm_head appears once (as embedding)
            if "layernorm" in name or name.startswith("transformer.ln_") or ".ln_" in name:
                if name.endswith(".weight"):
                    p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
                else:
                    p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:  # Linear weights, word embeddings, untied lm_head
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
    if model.config.tie_word_embeddings:
        assert model.lm_head.weight.data_ptr() == model.transformer.word_embeddings.weight.data_ptr()
    else:
        assert model.lm_head.weight.data_ptr() != model.transformer.word_embeddings.weight.data_ptr()
    return model


def save_model(model: FalconForCausalLM, out_dir: str):
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    os.makedirs(out_dir)
    model.save_pretrained(out_dir, safe_serialization=True)
    gc = os.path.join(out_dir, "generation_config.json")
    if os.path.exists(gc):
        os.remove(gc)
    assert sorted(os.listdir(out_dir)) == ["config.json", "model.safetensors"], os.listdir(out_dir)
    os.chmod(os.path.join(out_dir, "model.safetensors"), 0o644)  # HF writes it 0600


def greedy_config() -> GenerationConfig:
    # eos_token_id=None: generation never stops early AND min_new_tokens does not mask any token
    # (with an eos id, MinNewTokensLengthLogitsProcessor would set its logit to -inf, so the result
    # would no longer be a plain argmax continuation).
    return GenerationConfig(
        do_sample=False, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
        eos_token_id=None, pad_token_id=0, bos_token_id=None, num_beams=1,
        return_dict_in_generate=True, output_logits=True,
    )


@torch.no_grad()
def hf_forward(model, ids) -> np.ndarray:
    x = torch.tensor([ids], dtype=torch.long)
    return model(input_ids=x, attention_mask=torch.ones_like(x), use_cache=False).logits[0].float().numpy()


@torch.no_grad()
def hf_generate(model, prompt, return_logits: bool = False):
    """HF greedy generate (KV cache); optionally also its raw per-step logits [NEW_TOKENS, V]."""
    x = torch.tensor([prompt], dtype=torch.long)
    out = model.generate(input_ids=x, attention_mask=torch.ones_like(x), generation_config=greedy_config())
    gen = out.sequences[0, len(prompt):].tolist()
    assert len(gen) == NEW_TOKENS, gen
    if return_logits:
        return gen, torch.cat(out.logits, dim=0).float().numpy()
    return gen


@torch.no_grad()
def hf_manual_greedy(model, prompt) -> list[int]:
    """Greedy decode by re-running the full sequence each step (no cache) - cross-check of generate()."""
    seq = list(prompt)
    for _ in range(NEW_TOKENS):
        seq.append(int(np.argmax(hf_forward(model, seq)[-1])))
    return seq[len(prompt):]


def load_f32(model_dir: str, attn: str = "sdpa") -> FalconForCausalLM:
    m = FalconForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation=attn).eval()
    assert m.config._attn_implementation == attn
    return m


def ref_incremental_logits(ref: fr.FalconReference, prompt, gen) -> np.ndarray:
    """Logits from prefill(prompt) then one token at a time; rows align with full_logits.npy."""
    cache = ref.new_cache()
    rows = [ref.forward(prompt, cache)]
    for t in gen:
        rows.append(ref.forward([t], cache))
    return np.concatenate(rows, axis=0)


def margin(logits_row: np.ndarray) -> float:
    s = np.sort(logits_row)
    return float(s[-1] - s[-2])


def write_fixture(name: str, model_dir: str, variant_kw, stored_dtype: str, report: dict):
    prompt = PROMPTS.get(name, PROMPT)
    hf = load_f32(model_dir)  # golden is computed from the files on disk (bf16 upcast to f32)
    logits = hf_forward(hf, prompt).astype(np.float32)
    gen, gen_logits = hf_generate(hf, prompt, return_logits=True)
    dynamic = is_dynamic_rope(variant_kw)
    if not dynamic:  # dynamic NTK: cached keys keep older scalings, a no-cache loop differs
        manual = hf_manual_greedy(hf, prompt)
        assert gen == manual, f"{name}: generate() {gen} != no-cache argmax loop {manual}"
    full = hf_forward(hf, prompt + gen).astype(np.float32)
    if not dynamic:  # dynamic NTK rescales every position once the sequence exceeds its limit
        assert np.abs(full[: len(prompt)] - logits).max() <= 1e-5
    n_distinct = len(set(gen))
    assert n_distinct >= 4, f"{name}: greedy continuation too repetitive: {gen}"

    # ---- independent numpy reference -------------------------------------------------------------
    ref = fr.FalconReference(model_dir, dtype=np.float64)
    ref_logits = ref.forward_full(prompt)
    d_prompt = float(np.abs(ref_logits - logits).max())
    ref_full = ref.forward_full(prompt + gen)
    d_full = float(np.abs(ref_full - full).max())
    inc = ref_incremental_logits(ref, prompt, gen)
    d_inc = float(np.abs(inc - full).max())
    # HF's own KV-cache decode logits (generate) vs the reference's incremental decode
    steps = slice(len(prompt) - 1, len(prompt) - 1 + NEW_TOKENS)
    d_inc_hf = float(np.abs(inc[steps] - gen_logits).max())
    ref_gen = ref.generate_greedy(prompt, NEW_TOKENS)
    ref32 = fr.FalconReference(model_dir, dtype=np.float32)
    d_ref32 = float(np.abs(ref32.forward_full(prompt + gen) - full).max())
    min_margin = min(margin(full[i]) for i in range(len(prompt) - 1, len(prompt) + NEW_TOKENS - 1))
    print(f"  [{name}] max|ref64-HF| prompt={d_prompt:.3e} prompt+gen={d_full:.3e} incremental={d_inc:.3e} "
          f"ref-incremental-vs-HF-generate-logits={d_inc_hf:.3e} "
          f"ref32={d_ref32:.3e}; logit scale std={logits.std():.2f}; min top1-top2 margin={min_margin:.3f}")
    print(f"  [{name}] generated={gen} ({n_distinct} distinct)")
    checked = [d_prompt, d_inc_hf] + ([] if dynamic else [d_full, d_inc])
    assert max(checked) <= TOL, (name, d_prompt, d_full, d_inc, d_inc_hf)
    assert ref_gen == gen, f"{name}: reference incremental greedy {ref_gen} != HF {gen}"

    extra = {}
    if ref.spec.alibi:
        ref_exact = fr.FalconReference(model_dir, dtype=np.float64, alibi_hf_bf16=False)
        extra["alibi_exact_vs_hf"] = float(np.abs(ref_exact.forward_full(prompt + gen) - full).max())
        ref_s54 = fr.FalconReference(model_dir, dtype=np.float64, alibi_round_positions=False)
        extra["alibi_unrounded_pos_vs_hf"] = float(np.abs(ref_s54.forward_full(prompt + gen) - full).max())
        hf_eager = load_f32(model_dir, "eager")
        eager_full = hf_forward(hf_eager, prompt + gen)
        extra["hf_eager_vs_sdpa"] = float(np.abs(eager_full - full).max())
        ref_dbl = fr.FalconReference(model_dir, dtype=np.float64, alibi_multiplier=2.0)
        extra["hf_eager_vs_ref_double_alibi"] = float(np.abs(ref_dbl.forward_full(prompt + gen) - eager_full).max())
        print(f"  [{name}] ALiBi: ref(exact slope*pos) vs HF={extra['alibi_exact_vs_hf']:.3e}; "
              f"ref(bf16(bf16(slope)*pos), spec 5.4 text) vs HF={extra['alibi_unrounded_pos_vs_hf']:.3e}; "
              f"HF eager vs sdpa={extra['hf_eager_vs_sdpa']:.3e}; "
              f"HF eager vs ref with doubled ALiBi={extra['hf_eager_vs_ref_double_alibi']:.3e}")
        assert extra["hf_eager_vs_ref_double_alibi"] <= TOL  # HF eager == single-add formula with 2x slopes
        if name == "falcon-rw-h20-tiny":  # this fixture must exercise both bf16 roundings
            assert extra["alibi_exact_vs_hf"] > 1e-2 and extra["alibi_unrounded_pos_vs_hf"] > 1e-2, extra
    else:
        hf_eager = load_f32(model_dir, "eager")
        extra["hf_eager_vs_sdpa"] = float(np.abs(hf_forward(hf_eager, prompt + gen) - full).max())
        print(f"  [{name}] HF eager vs sdpa={extra['hf_eager_vs_sdpa']:.3e}")

    np.save(os.path.join(model_dir, "logits.npy"), logits)
    np.save(os.path.join(model_dir, "full_logits.npy"), full)
    np.save(os.path.join(model_dir, "step_logits.npy"), gen_logits.astype(np.float32))
    golden = {
        "variant": name,
        "prompt_ids": prompt,
        "generated_ids": gen,
        "max_new_tokens": NEW_TOKENS,
        "decoding": "greedy argmax, eos ignored (config eos_token_id is not a stop token here)",
        "stored_dtype": stored_dtype,
        "compute_dtype": "float32",
        "attn_implementation": "sdpa",
        "seed": SEED,
        "config_overrides": variant_kw,
        "files": {
            "logits.npy": f"float32 [{len(prompt)}, vocab]: one forward over prompt_ids",
            "full_logits.npy": f"float32 [{len(prompt) + NEW_TOKENS}, vocab]: one forward over "
            "prompt_ids + generated_ids; row i predicts token i+1",
            "step_logits.npy": f"float32 [{NEW_TOKENS}, vocab]: the logits generate() chose each new "
            "token from (prefill, then KV-cache decode steps)",
        },
        "reference_max_abs_diff": {"prompt_logits": d_prompt, "full_logits": d_full,
                                   "incremental_logits": d_inc, "incremental_vs_hf_generate": d_inc_hf},
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
    }
    with open(os.path.join(model_dir, "golden.json"), "w") as f:
        json.dump(golden, f, indent=2)
        f.write("\n")
    report[name] = dict(prompt=d_prompt, full=d_full, incremental=d_inc, inc_hf=d_inc_hf, ref32=d_ref32,
                        distinct=n_distinct, **extra)


# ------------------------------------------------------------------------------------------------
# diagnostics (not saved)
# ------------------------------------------------------------------------------------------------


def check_alibi_formula():
    from transformers.models.falcon.modeling_falcon import build_alibi_tensor

    T = 5000
    worst = 0.0
    for H in list(range(1, 257)):
        mask = torch.ones(1, T if H in (6, 20, 32, 71, 128, 232) else 64, dtype=torch.long)
        hf = build_alibi_tensor(mask, H, torch.float32).reshape(H, -1).numpy().astype(np.float64)
        mine = fr.alibi_bias(H, np.arange(hf.shape[1]))
        worst = max(worst, float(np.abs(hf - mine).max()))
    assert worst == 0.0, f"ALiBi formula mismatch vs build_alibi_tensor: {worst}"
    mask = torch.ones(1, 2048, dtype=torch.long)
    hf = build_alibi_tensor(mask, 32, torch.float32).reshape(32, -1).numpy().astype(np.float64)
    dev = float(np.abs(hf - fr.alibi_bias(32, np.arange(2048), hf_bf16=False)).max())
    print(f"  ALiBi: bf16(bf16(slope)*bf16(pos)) == HF build_alibi_tensor bit-exactly for H=1..256 "
          f"(positions up to {T - 1} for H in 6,20,32,71,128,232); HF vs exact slope*pos at T=2048, "
          f"H=32: {dev:.3f}")
    return dev


def check_extra_models(tmp: str) -> dict:
    out = {}
    # RoPE scaling variants (HF stateful dynamic NTK: prompt 7 + 20 > max_position_embeddings 12)
    for key in ("7b-rope-linear", "7b-rope-dynamic"):
        m = build_model(EXTRA_CONFIGS[key], seed=11)
        d = os.path.join(tmp, key)
        save_model(m, d)
        ids = PROMPT + [5, 9, 200, 31, 64, 128, 255, 0]
        hfl = hf_forward(load_f32(d), ids)
        ref = fr.FalconReference(d)
        out[f"{key} ref"] = float(np.abs(ref.forward_full(ids) - hfl).max())
        unscaled = fr.FalconReference(d)
        unscaled.spec.rope_type = "default"
        out[f"{key} ref with scaling ignored"] = float(np.abs(unscaled.forward_full(ids) - hfl).max())
        # fresh model: dynamic RoPE state starts at mpe and grows during generation
        gen, gen_logits = hf_generate(load_f32(d), PROMPT, return_logits=True)
        out[f"{key} greedy match"] = ref.generate_greedy(PROMPT, NEW_TOKENS) == gen
        inc = ref_incremental_logits(ref, PROMPT, gen)[len(PROMPT) - 1 : len(PROMPT) - 1 + NEW_TOKENS]
        out[f"{key} ref incremental vs HF generate logits"] = float(np.abs(inc - gen_logits).max())
    # legacy (v4 / hub-style) config keys parse to the same spec
    with open(os.path.join(tmp, "7b-rope-linear", "config.json")) as f:
        cfg = json.load(f)
    legacy = dict(cfg)
    legacy.pop("rope_parameters", None)
    legacy["rope_theta"] = 10000.0
    legacy["rope_scaling"] = {"type": "linear", "factor": 2.5}
    legacy["n_head"] = legacy.pop("num_attention_heads")
    legacy["n_layer"] = legacy.pop("num_hidden_layers")
    a, b = fr.parse_config(cfg), fr.parse_config(legacy)
    a.raw = b.raw = {}
    out["legacy config keys parse identically"] = a == b
    for k, v in out.items():
        print(f"  {k}: {v}")
    for key in ("7b-rope-linear", "7b-rope-dynamic"):
        assert out[f"{key} ref"] <= TOL and out[f"{key} greedy match"], key
        assert out[f"{key} ref incremental vs HF generate logits"] <= TOL, key
        assert out[f"{key} ref with scaling ignored"] > 1e-3, key  # the scaling really mattered
    assert out["legacy config keys parse identically"]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="test/fixtures")
    ap.add_argument("--examples", default=None,
                    help="copy falcon-7b-tiny (config.json + model.safetensors) to this dir; default: "
                         "<repo>/examples/tiny-falcon-7b when --out is <repo>/test/fixtures, else none; "
                         "'none' disables")
    ap.add_argument("--skip-diagnostics", action="store_true")
    args = ap.parse_args()
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if args.examples is None and os.path.abspath(args.out) == os.path.join(repo, "test", "fixtures"):
        args.examples = os.path.join(repo, "examples", "tiny-falcon-7b")
    if args.examples == "none":
        args.examples = None

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, numpy {np.__version__}")
    os.makedirs(args.out, exist_ok=True)
    report = {}
    for name, kw in VARIANTS.items():
        d = os.path.join(args.out, name)
        if isinstance(kw, str):  # bf16 copy of another variant
            base_kw = VARIANTS[kw]
            model = build_model(base_kw).to(torch.bfloat16)
            save_model(model, d)
            with open(os.path.join(d, "config.json")) as f:
                cfg = json.load(f)
            assert (cfg.get("dtype") or cfg.get("torch_dtype")) == "bfloat16", cfg
            print(f"{name}: bf16 copy of {kw}")
            write_fixture(name, d, base_kw, "bfloat16", report)
        else:
            model = build_model(kw)
            save_model(model, d)
            print(f"{name}")
            write_fixture(name, d, kw, "float32", report)
        size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
        report[name]["bytes"] = size
        assert size < 1_000_000, f"{name}: fixture too large ({size} bytes)"

    # bf16 fixture really is the rounded 7b-tiny
    w32 = fr.load_weights(os.path.join(args.out, "falcon-7b-tiny"))
    w16 = fr.load_weights(os.path.join(args.out, "falcon-7b-tiny-bf16"))
    assert w32.keys() == w16.keys()
    assert all(np.array_equal(fr.bf16_round(w32[k]), w16[k]) for k in w32)

    if args.examples:
        os.makedirs(args.examples, exist_ok=True)
        for f in ("config.json", "model.safetensors"):
            # a real copy, not a symlink
            shutil.copyfile(os.path.join(args.out, "falcon-7b-tiny", f), os.path.join(args.examples, f))

    if not args.skip_diagnostics:
        print("diagnostics:")
        check_alibi_formula()
        with tempfile.TemporaryDirectory() as tmp:
            check_extra_models(tmp)

    print("summary: max|ref64 - HF| for prompt logits / prompt+generated logits (one HF forward) / "
          "reference incremental decode vs that / vs HF generate() step logits")
    for name, r in report.items():
        print(f"  {name:22s} {r['prompt']:.2e} / {r['full']:.2e} / {r['incremental']:.2e} / {r['inc_hf']:.2e}  "
              f"bytes={r['bytes']}  distinct_greedy={r['distinct']}")
    print("OK")


if __name__ == "__main__":
    main()
