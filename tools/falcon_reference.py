#!/usr/bin/env python3
"""Independent pure-numpy reference implementation of the Falcon forward pass.

This file is the *executable specification* that the falcon-mlir C++ compiler mirrors.
It follows the project's Falcon architecture notes (sections referenced as "spec §N"; the
facts are those of transformers' modeling_falcon.py) and was
checked against Hugging Face ``transformers`` 5.24.0 / torch 2.15.0 (``FalconForCausalLM``,
default ``sdpa`` attention, float32, CPU) by ``tools/gen_golden.py``.  It deliberately does
NOT import torch or transformers: only numpy, json and (optionally) ``safetensors.numpy``.

Supported (all variants of spec §2):
  * fused-QKV layouts: grouped / new_decoder_architecture, multi-query, per-head MHA (spec §5.2)
  * block residual orders (a) 7b parallel, (b) 40b two-LN parallel, (b') 11B one-LN parallel,
    (c) rw sequential (spec §4)
  * RoPE with rotate_half (GPT-NeoX halves), angles computed in float32 as HF does (spec §5.3),
    rope scaling "default", "linear" and "dynamic" (HF's *stateful* dynamic-NTK semantics)
  * ALiBi with HF's bfloat16 quantisation (see ``alibi_bias`` for the exact formula, which
    differs from the spec §5.4 text for key positions > 256), added to the *unscaled* score
  * exact erf GELU (spec §6), biased-variance LayerNorm, tied / untied LM head (spec §3)
  * a full-sequence forward and an incremental decode with a KV cache (spec §7)

Numerical model of HF's default (sdpa, float32) path, which this reference reproduces:

  logits_ij = (q_i . k_j) / sqrt(d) + alibi_j / sqrt(d)        (+ causal mask)
  alibi_j   = bf16( bf16(slope_h) * bf16(pos_j) )               (pos_j = key index 0..T-1)

HF's *eager* ALiBi path (attn_implementation="eager" or output_attentions=True) in
transformers 5.24 adds the ALiBi bias TWICE: ``FalconModel.forward`` folds
``alibi / sqrt(d)`` into the 4-D causal mask for every attention implementation, and the eager
branch of ``FalconAttention.forward`` then computes ``(scores + alibi) * inv_norm_factor +
attention_mask``.  The eager result therefore equals the sdpa/reference result with every
slope doubled.  We follow the single-add formula (sdpa default path, original TII
``modelling_RW.py``); ``gen_golden.py`` measures and reports the eager discrepancy.

Usage as a library:
    ref = FalconReference("test/fixtures/falcon-7b-tiny")
    logits = ref.forward_full([1, 17, 42])           # [S, V], no cache
    cache = ref.new_cache()
    logits = ref.forward([1, 17, 42], cache)         # prefill, fills cache
    logits = ref.forward([5], cache)                 # one decode step
    ids = ref.generate_greedy([1, 17, 42], 20)       # incremental greedy decode

Usage as a script:
    python tools/falcon_reference.py MODEL_DIR --prompt 1,17,42 --new-tokens 20
"""

from __future__ import annotations

import argparse
import json
import math
import os
import struct
from dataclasses import dataclass, field

import numpy as np

# ----------------------------------------------------------------------------------------------
# bfloat16 helpers
# ----------------------------------------------------------------------------------------------


def bf16_round(x) -> np.ndarray:
    """Round to the nearest bfloat16 (round-half-to-even), returned as float32.

    Matches torch's float32 -> bfloat16 conversion for finite values (torch uses
    round-to-nearest-even: ``u + 0x7FFF + ((u >> 16) & 1)`` then truncation).
    Inputs are first converted to float32 (float64 inputs are rounded to float32 first,
    which is what torch does when it casts a wider type through float).
    """
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    u = x.view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    return u.astype(np.uint32).view(np.float32)


def bf16_bits_to_f32(raw: np.ndarray) -> np.ndarray:
    """Decode little-endian bfloat16 bit patterns (uint16) to float32 exactly."""
    return (raw.astype(np.uint32) << 16).view(np.float32)


# ----------------------------------------------------------------------------------------------
# checkpoint loading
# ----------------------------------------------------------------------------------------------

_ST_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}


def _read_safetensors_raw(path: str) -> dict[str, np.ndarray]:
    """Minimal safetensors parser (format: u64 LE header size, JSON header, raw data).

    Used for BF16 tensors, which numpy (and therefore ``safetensors.numpy``) cannot represent.
    BF16 is decoded exactly to float32.
    """
    out = {}
    with open(path, "rb") as f:
        (hlen,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(hlen))
        data = f.read()
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        buf = data[b:e]
        dt = info["dtype"]
        if dt == "BF16":
            arr = bf16_bits_to_f32(np.frombuffer(buf, dtype="<u2"))
        elif dt in _ST_DTYPES:
            arr = np.frombuffer(buf, dtype=np.dtype(_ST_DTYPES[dt]).newbyteorder("<")).copy()
        else:
            raise ValueError(f"unsupported safetensors dtype {dt} for {name}")
        out[name] = arr.reshape(info["shape"])
    return out


def load_safetensors(path: str) -> dict[str, np.ndarray]:
    """Load every tensor of a .safetensors file as numpy (BF16/F16 upcast exactly to float32)."""
    with open(path, "rb") as f:
        (hlen,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(hlen))
    dtypes = {v["dtype"] for k, v in header.items() if k != "__metadata__"}
    if "BF16" in dtypes:
        tensors = _read_safetensors_raw(path)
    else:
        try:
            from safetensors.numpy import load_file  # the safetensors numpy API
        except ImportError:  # pragma: no cover - fallback keeps the reference dependency-free
            tensors = _read_safetensors_raw(path)
        else:
            tensors = load_file(path)
    return {k: (v.astype(np.float32) if v.dtype == np.float16 else v) for k, v in tensors.items()}


def load_weights(model_dir: str) -> dict[str, np.ndarray]:
    single = os.path.join(model_dir, "model.safetensors")
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(single):
        return load_safetensors(single)
    if os.path.exists(index):
        with open(index) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        out = {}
        for s in shards:
            out.update(load_safetensors(os.path.join(model_dir, s)))
        return out
    raise FileNotFoundError(f"no model.safetensors(.index.json) in {model_dir}")


# ----------------------------------------------------------------------------------------------
# configuration (spec §1, §2)
# ----------------------------------------------------------------------------------------------


@dataclass
class FalconSpec:
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    head_dim: int
    layout: str  # "grouped" | "multi_query" | "per_head"
    num_kv: int  # K/V heads actually computed (groups for grouped, 1 for multi-query, H per-head)
    parallel_attn: bool
    num_ln: int  # 2 (ln_attn + ln_mlp) or 1 (input_layernorm) for parallel blocks
    alibi: bool
    bias: bool
    eps: float
    ffn: int
    activation: str
    tie: bool
    rope_theta: float
    rope_type: str  # "default" | "linear" | "dynamic"
    rope_factor: float
    max_pos: int
    new_decoder_architecture: bool = False
    raw: dict = field(default_factory=dict, repr=False)

    @property
    def queries_per_kv(self) -> int:
        return self.num_heads // self.num_kv


def _get(cfg: dict, *names, default=None):
    for n in names:
        if n in cfg and cfg[n] is not None:
            return cfg[n]
    return default


def parse_config(cfg: dict) -> FalconSpec:
    """Interpret an HF Falcon config.json (accepts v4 and v5 key spellings, and RW legacy keys)."""
    h = int(_get(cfg, "hidden_size", "n_embed", default=4544))
    H = int(_get(cfg, "num_attention_heads", "n_head", default=71))
    L = int(_get(cfg, "num_hidden_layers", "n_layer", default=32))
    V = int(_get(cfg, "vocab_size", default=65024))
    if h % H:
        raise ValueError(f"hidden_size {h} not divisible by num_attention_heads {H}")
    d = h // H
    nda = bool(_get(cfg, "new_decoder_architecture", default=False))
    # RW-era 40b configs have n_head_kv instead of new_decoder_architecture (convert script sets it)
    if "n_head_kv" in cfg and "new_decoder_architecture" not in cfg:
        nda = True
    mq = bool(_get(cfg, "multi_query", default=True))
    n_kv_cfg = _get(cfg, "num_kv_heads", "n_head_kv", default=None)
    n_kv_cfg = H if n_kv_cfg is None else int(n_kv_cfg)
    parallel = bool(_get(cfg, "parallel_attn", default=True))
    alibi = bool(_get(cfg, "alibi", default=False))
    n_ln = _get(cfg, "num_ln_in_parallel_attn", default=None)
    if n_ln is None and nda:
        n_ln = 2

    if nda:
        layout, kv = "grouped", n_kv_cfg
        if H % kv:
            raise ValueError(f"num_attention_heads {H} not divisible by num_kv_heads {kv}")
        if not parallel:
            raise ValueError("new_decoder_architecture=True with parallel_attn=False crashes in HF (spec §2)")
        if n_ln not in (1, 2):
            raise ValueError(f"num_ln_in_parallel_attn must be 1 or 2 with new_decoder_architecture, got {n_ln}")
    elif mq:
        layout, kv = "multi_query", 1
    else:
        layout, kv = "per_head", H
        if n_kv_cfg != H:
            raise ValueError("per-head layout requires num_kv_heads == num_attention_heads (spec §2)")
    if parallel and not nda and n_ln == 2:
        raise ValueError("num_ln_in_parallel_attn=2 without new_decoder_architecture crashes in HF (spec §2)")
    if n_ln is None:
        n_ln = 1

    # RoPE parameters: v5 "rope_parameters", v4 "rope_theta" + "rope_scaling"
    rp = cfg.get("rope_parameters") or {}
    rs = cfg.get("rope_scaling") or {}
    theta = float(_get(rp, "rope_theta", default=_get(cfg, "rope_theta", default=10000.0)))
    rtype = _get(rp, "rope_type", "type", default=None) or _get(rs, "rope_type", "type", default="default")
    factor = float(_get(rp, "factor", default=_get(rs, "factor", default=1.0)))
    if rtype not in ("default", "linear", "dynamic"):
        raise NotImplementedError(f"rope type {rtype!r} not supported by the reference")

    act = _get(cfg, "activation", default="gelu")
    if act != "gelu":
        raise NotImplementedError(f"activation {act!r} (only exact-erf 'gelu' is used by Falcon)")
    return FalconSpec(
        vocab_size=V,
        hidden_size=h,
        num_layers=L,
        num_heads=H,
        head_dim=d,
        layout=layout,
        num_kv=kv,
        parallel_attn=parallel,
        num_ln=int(n_ln),
        alibi=alibi,
        bias=bool(_get(cfg, "bias", default=False)),
        eps=float(_get(cfg, "layer_norm_epsilon", default=1e-5)),
        ffn=int(_get(cfg, "ffn_hidden_size", default=4 * h)),
        activation=act,
        tie=bool(_get(cfg, "tie_word_embeddings", default=True)),
        rope_theta=theta,
        rope_type=rtype,
        rope_factor=factor,
        max_pos=int(_get(cfg, "max_position_embeddings", default=2048)),
        new_decoder_architecture=nda,
        raw=cfg,
    )


# ----------------------------------------------------------------------------------------------
# positional encodings
# ----------------------------------------------------------------------------------------------


def alibi_slopes(num_heads: int) -> np.ndarray:
    """Exact (float64) ALiBi slopes of HF ``build_alibi_tensor`` (spec §5.4), before any rounding."""
    n = 2 ** math.floor(math.log2(num_heads))
    base = 2.0 ** (-(2.0 ** -(math.log2(n) - 3)))  # = 2^(-8/n)
    slopes = [base**k for k in range(1, n + 1)]
    if n != num_heads:
        extra = 2.0 ** (-(2.0 ** -(math.log2(2 * n) - 3)))  # = 2^(-4/n)
        rem = min(n, num_heads - n)
        slopes += [extra**k for k in range(1, 2 * rem, 2)]
    return np.array(slopes, dtype=np.float64)


def alibi_bias(num_heads: int, key_positions: np.ndarray, hf_bf16: bool = True,
               round_positions: bool = True) -> np.ndarray:
    """ALiBi bias [H, T] to add to the UNSCALED q.k score of key j (before the 1/sqrt(d) scaling).

    HF (``build_alibi_tensor``) does::

        slopes = torch.pow(float32 base, int32 powers)               # float32
        alibi  = slopes[..., None].bfloat16() * arange_tensor        # arange_tensor is int64
        alibi  = alibi.to(model dtype)

    A bfloat16 tensor times an int64 tensor has result dtype bfloat16 and torch CASTS THE INT64
    OPERAND TO BFLOAT16 FIRST, then multiplies (in float) and rounds the product to bfloat16:

        alibi[h, j] = bf16( bf16(slope_h) * bf16(pos_j) )

    bf16(pos_j) is exact only for pos_j <= 256 (8 significant bits): e.g. 257 -> 256, 259 -> 260,
    2047 -> 2048.  (Verified in gen_golden.py against torch for 5000 positions and several H.)
    For H=32 the deviation from the exact slope*pos is 0.75 at T=256, 2.29 at T=512 and 9.16 at
    T=2048 (before the 1/sqrt(d) scaling).  Spec §5.4 says bf16(bf16(slope)*pos); the missing
    bf16(pos) rounding only matters past key position 256.

    The float32 slope itself is torch.pow's float32 result; computing the exact power in float64,
    rounding to float32 and then to bf16 gives bit-identical bf16 slopes (verified for H=1..256).

    ``hf_bf16=False`` gives the exact slope*pos; ``round_positions=False`` gives the spec §5.4
    text's bf16(bf16(slope)*pos) (both diagnostics only, they do not match HF in general).
    """
    slopes = alibi_slopes(num_heads)
    pos = np.asarray(key_positions, dtype=np.float64)
    if not hf_bf16:
        return slopes[:, None] * pos[None, :]
    s = bf16_round(slopes.astype(np.float32)).astype(np.float64)
    p = bf16_round(pos.astype(np.float32)).astype(np.float64) if round_positions else pos
    # s and p each have 8 significant bits, so s*p is exact in float64 (and float32); one rounding.
    # (With round_positions=False, s*p is exact in float64 for p < 2^45 before the bf16 rounding.)
    return bf16_round(s[:, None] * p[None, :]).astype(np.float64)


def rope_inv_freq(theta: float, d: int, hf_fp32: bool = True) -> np.ndarray:
    """inv_freq_i = 1 / theta^(2i/d), i < d/2 (spec §5.3).

    HF computes in float32: ``1.0 / (base ** (arange(0, d, 2).float() / d))``.  We emulate the
    float32 roundings of the exponent, the power and the reciprocal.
    """
    if not hf_fp32:
        return 1.0 / (theta ** (np.arange(0, d, 2, dtype=np.float64) / d))
    e = np.arange(0, d, 2, dtype=np.float32) / np.float32(d)  # float32 division
    p = (np.float64(np.float32(theta)) ** e.astype(np.float64)).astype(np.float32)
    return (np.float32(1.0) / p).astype(np.float32)


def rope_cos_sin(inv_freq: np.ndarray, positions: np.ndarray, hf_fp32: bool = True):
    """cos/sin tables [S, d] for ``emb = concat(freqs, freqs)``, freqs = pos * inv_freq."""
    if hf_fp32:
        ang = positions.astype(np.float32)[:, None] * inv_freq.astype(np.float32)[None, :]  # float32
        ang = ang.astype(np.float64)
    else:
        ang = positions.astype(np.float64)[:, None] * inv_freq.astype(np.float64)[None, :]
    emb = np.concatenate([ang, ang], axis=-1)
    return np.cos(emb), np.sin(emb)


def rotate_half(x: np.ndarray) -> np.ndarray:
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


# ----------------------------------------------------------------------------------------------
# small ops
# ----------------------------------------------------------------------------------------------

_erf = np.vectorize(math.erf, otypes=[np.float64])


def gelu_exact(x: np.ndarray) -> np.ndarray:
    """Exact erf GELU: 0.5 x (1 + erf(x / sqrt 2)) (torch gelu approximate='none')."""
    return (0.5 * x * (1.0 + _erf(x.astype(np.float64) / math.sqrt(2.0)))).astype(x.dtype)


def layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)  # biased variance
    return (x - mu) / np.sqrt(var + eps) * w + b


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    e = np.exp(x - m)
    return e / e.sum(axis=axis, keepdims=True)


# ----------------------------------------------------------------------------------------------
# model
# ----------------------------------------------------------------------------------------------


class KVCache:
    """Per-layer K/V after RoPE, compact form: [T, num_kv, d] (spec §7).

    HF's DynamicCache stores grouped K/V broadcast to all H query heads; caching the num_kv
    groups and indexing h // (H/num_kv) is numerically identical.
    ``rope_max_seq_len`` mirrors HF's dynamic-NTK state (``max_seq_len_cached``).
    """

    def __init__(self, spec: FalconSpec, dtype):
        self.k = [np.zeros((0, spec.num_kv, spec.head_dim), dtype) for _ in range(spec.num_layers)]
        self.v = [np.zeros((0, spec.num_kv, spec.head_dim), dtype) for _ in range(spec.num_layers)]
        self.length = 0
        self.rope_max_seq_len = spec.max_pos

    def __len__(self):
        return self.length


class FalconReference:
    """Numpy Falcon forward. ``dtype`` is the compute dtype (float64 default, float32 possible).

    ``alibi_hf_bf16`` (default True) reproduces HF's bf16-quantised ALiBi bias; False uses the
    exact slope*pos.  ``rope_hf_fp32`` (default True) computes RoPE angles in float32 like HF.
    ``alibi_multiplier`` is a diagnostic knob (2.0 = HF eager path's double add); keep it at 1.
    """

    def __init__(
        self,
        model_dir: str | None = None,
        *,
        config: dict | None = None,
        weights: dict | None = None,
        dtype=np.float64,
        alibi_hf_bf16: bool = True,
        rope_hf_fp32: bool = True,
        alibi_multiplier: float = 1.0,
        alibi_round_positions: bool = True,
    ):
        if model_dir is not None:
            with open(os.path.join(model_dir, "config.json")) as f:
                config = json.load(f)
            weights = load_weights(model_dir)
        assert config is not None and weights is not None
        self.spec = parse_config(config)
        self.dtype = np.dtype(dtype)
        self.alibi_hf_bf16 = alibi_hf_bf16
        self.rope_hf_fp32 = rope_hf_fp32
        # Diagnostic only: 2.0 reproduces HF's *eager* ALiBi path, which adds the bias twice.
        self.alibi_multiplier = alibi_multiplier
        # Diagnostic only: False = spec §5.4 text (positions not rounded to bf16), not HF.
        self.alibi_round_positions = alibi_round_positions
        self.w = {k: np.asarray(v).astype(self.dtype) for k, v in weights.items()}
        self._check_weights()

    # -- weights ---------------------------------------------------------------------------------
    def _check_weights(self):
        s = self.spec
        d, H, K, h = s.head_dim, s.num_heads, s.num_kv, s.hidden_size
        qkv_out = {"grouped": (H + 2 * K) * d, "multi_query": h + 2 * d, "per_head": 3 * h}[s.layout]
        expect = {"transformer.word_embeddings.weight": (s.vocab_size, h), "transformer.ln_f.weight": (h,)}
        for i in range(s.num_layers):
            p = f"transformer.h.{i}."
            expect[p + "self_attention.query_key_value.weight"] = (qkv_out, h)
            expect[p + "self_attention.dense.weight"] = (h, h)
            expect[p + "mlp.dense_h_to_4h.weight"] = (s.ffn, h)
            expect[p + "mlp.dense_4h_to_h.weight"] = (h, s.ffn)
            if s.bias:
                expect[p + "self_attention.query_key_value.bias"] = (qkv_out,)
            for ln in self._ln_names():
                expect[p + ln + ".weight"] = (h,)
        if not s.tie:
            expect["lm_head.weight"] = (s.vocab_size, h)
        for k, shape in expect.items():
            if k not in self.w:
                raise KeyError(f"missing tensor {k}")
            if tuple(self.w[k].shape) != shape:
                raise ValueError(f"{k}: shape {self.w[k].shape}, expected {shape}")

    def _ln_names(self):
        s = self.spec
        if not s.parallel_attn:
            return ["input_layernorm", "post_attention_layernorm"]
        return ["ln_attn", "ln_mlp"] if s.num_ln == 2 else ["input_layernorm"]

    def _lin(self, x, name, has_bias):
        y = x @ self.w[name + ".weight"].T  # FalconLinear: matmul, then bias as a separate add
        if has_bias:
            y = y + self.w[name + ".bias"]
        return y

    def _ln(self, x, name):
        return layer_norm(x, self.w[name + ".weight"], self.w[name + ".bias"], self.spec.eps)

    # -- attention (spec §5) -----------------------------------------------------------------------
    def _split_qkv(self, fused):
        """fused [S, qkv_out] -> q [S, H, d], k/v [S, num_kv, d] (spec §5.2)."""
        s = self.spec
        S, H, K, d = fused.shape[0], s.num_heads, s.num_kv, s.head_dim
        if s.layout == "grouped":
            r = H // K
            g = fused.reshape(S, K, r + 2, d)
            q = g[:, :, :r, :].reshape(S, H, d)  # query head h = group*r + j
            k = g[:, :, r, :]
            v = g[:, :, r + 1, :]
        elif s.layout == "multi_query":
            g = fused.reshape(S, H + 2, d)
            q, k, v = g[:, :H, :], g[:, H : H + 1, :], g[:, H + 1 : H + 2, :]
        else:  # per_head: [q_h | k_h | v_h] per head
            g = fused.reshape(S, H, 3, d)
            q, k, v = g[:, :, 0, :], g[:, :, 1, :], g[:, :, 2, :]
        return q, k, v

    def _rope_tables(self, positions, cache: KVCache | None):
        s = self.spec
        theta = s.rope_theta
        inv = None
        if s.rope_type == "linear":
            inv = rope_inv_freq(theta, s.head_dim, self.rope_hf_fp32)
            inv = (inv / np.float32(s.rope_factor)).astype(inv.dtype)
        elif s.rope_type == "dynamic":
            # HF dynamic_rope_update: seq_len = max(position_ids)+1; if seq_len > max_seq_len_cached
            # the frequencies are recomputed with seq_len (and the state grows); they are never
            # recomputed for shorter sequences while state > mpe and seq_len >= mpe.  Already-cached
            # keys keep the rotation they were given.  (HF also resets to the original frequencies
            # when a call has seq_len < max_position_embeddings after having grown.)
            seq_len = int(np.max(positions)) + 1
            state = cache.rope_max_seq_len if cache is not None else s.max_pos
            if seq_len > state:
                state = seq_len
            elif seq_len < s.max_pos and state > s.max_pos:
                state = s.max_pos
            if cache is not None:
                cache.rope_max_seq_len = state
            if state > s.max_pos:
                d = s.head_dim
                f = s.rope_factor
                theta = theta * ((f * state / s.max_pos) - (f - 1)) ** (d / (d - 2))
            inv = rope_inv_freq(theta, s.head_dim, self.rope_hf_fp32)
        else:
            inv = rope_inv_freq(theta, s.head_dim, self.rope_hf_fp32)
        cos, sin = rope_cos_sin(inv, positions, self.rope_hf_fp32)
        return cos.astype(self.dtype), sin.astype(self.dtype)

    def _attention(self, u, layer, positions, cache: KVCache | None):
        s = self.spec
        p = f"transformer.h.{layer}.self_attention."
        fused = self._lin(u, p + "query_key_value", s.bias)
        q, k, v = self._split_qkv(fused)
        S = u.shape[0]
        if not s.alibi:  # RoPE on q and k, all d dims, before caching
            cos, sin = self._rope_tables(positions, cache)
            cos, sin = cos[:, None, :], sin[:, None, :]
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
        if cache is not None:
            k = np.concatenate([cache.k[layer], k], axis=0)
            v = np.concatenate([cache.v[layer], v], axis=0)
            cache.k[layer], cache.v[layer] = k, v
        T = k.shape[0]
        past = T - S
        d, H, K = s.head_dim, s.num_heads, s.num_kv
        kv_of_head = np.arange(H) // (H // K)
        kh = k[:, kv_of_head, :]  # [T, H, d]
        vh = v[:, kv_of_head, :]
        scores = np.einsum("shd,thd->hst", q, kh)  # unscaled q.k  [H, S, T]
        if s.alibi:
            # bias depends on the key position only (absolute index 0..T-1, no padding here)
            bias = alibi_bias(H, np.arange(T), self.alibi_hf_bf16, self.alibi_round_positions)
            bias = bias * self.alibi_multiplier
            scores = scores + bias.astype(self.dtype)[:, None, :]
        scores = scores / np.sqrt(np.asarray(d, dtype=self.dtype))
        qpos = past + np.arange(S)
        allowed = np.arange(T)[None, :] <= qpos[:, None]  # [S, T]
        scores = np.where(allowed[None], scores, -np.inf)
        probs = softmax(scores, axis=-1)
        ctx = np.einsum("hst,thd->shd", probs, vh).reshape(S, H * d)  # head-major concat
        return self._lin(ctx, p + "dense", s.bias)

    def _mlp(self, u, layer):
        s = self.spec
        p = f"transformer.h.{layer}.mlp."
        return self._lin(gelu_exact(self._lin(u, p + "dense_h_to_4h", s.bias)), p + "dense_4h_to_h", s.bias)

    # -- block (spec §4) -----------------------------------------------------------------------------
    def _block(self, x, layer, positions, cache):
        s = self.spec
        p = f"transformer.h.{layer}."
        if not s.parallel_attn:  # (c) sequential, falcon-rw
            a = self._attention(self._ln(x, p + "input_layernorm"), layer, positions, cache)
            r = x + a
            return r + self._mlp(self._ln(r, p + "post_attention_layernorm"), layer)
        if s.num_ln == 2:  # (b) 40b/180b: ln_attn + ln_mlp on the same input
            ua, um = self._ln(x, p + "ln_attn"), self._ln(x, p + "ln_mlp")
        else:  # (a) 7b and (b') 11B: one input_layernorm
            ua = um = self._ln(x, p + "input_layernorm")
        a = self._attention(ua, layer, positions, cache)
        m = self._mlp(um, layer)
        m = m + a  # mlp_output += attention_output
        return x + m

    # -- public API ----------------------------------------------------------------------------------
    def new_cache(self) -> KVCache:
        return KVCache(self.spec, self.dtype)

    def forward(self, ids, cache: KVCache | None = None) -> np.ndarray:
        """Logits [S, V] for the new tokens ``ids`` (appended after ``cache`` if given)."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        past = len(cache) if cache is not None else 0
        positions = past + np.arange(ids.shape[0])
        x = self.w["transformer.word_embeddings.weight"][ids]
        for layer in range(self.spec.num_layers):
            x = self._block(x, layer, positions, cache)
        if cache is not None:
            cache.length += ids.shape[0]
        return self._head(self._ln(x, "transformer.ln_f"))

    def _head(self, x):
        head = self.w["transformer.word_embeddings.weight"] if self.spec.tie else self.w["lm_head.weight"]
        return x @ head.T

    def forward_full(self, ids) -> np.ndarray:
        return self.forward(ids, None)

    def generate_greedy(self, prompt, max_new_tokens: int) -> list[int]:
        """Prefill the prompt, then decode one token at a time with the KV cache (argmax, no EOS stop)."""
        cache = self.new_cache()
        logits = self.forward(prompt, cache)
        out = []
        for _ in range(max_new_tokens):
            tok = int(np.argmax(logits[-1]))
            out.append(tok)
            if len(out) == max_new_tokens:
                break
            logits = self.forward([tok], cache)
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("--prompt", default="1,17,42,99,3,250,7")
    ap.add_argument("--new-tokens", type=int, default=20)
    ap.add_argument("--float32", action="store_true", help="compute in float32 instead of float64")
    args = ap.parse_args()
    ref = FalconReference(args.model_dir, dtype=np.float32 if args.float32 else np.float64)
    prompt = [int(t) for t in args.prompt.split(",")]
    logits = ref.forward_full(prompt)
    print("spec:", {k: v for k, v in vars(ref.spec).items() if k != "raw"})
    print("last-position logits[:8]:", np.array2string(logits[-1, :8], precision=5))
    print("greedy:", ref.generate_greedy(prompt, args.new_tokens))
    golden = os.path.join(args.model_dir, "golden.json")
    if os.path.exists(golden):
        with open(golden) as f:
            g = json.load(f)
        print("golden:", g["generated_ids"])
    lg = os.path.join(args.model_dir, "logits.npy")
    if os.path.exists(lg):
        print("max|ref - logits.npy|:", float(np.abs(logits - np.load(lg)).max()))


if __name__ == "__main__":
    main()
