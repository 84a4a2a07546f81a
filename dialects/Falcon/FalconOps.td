//===- FalconOps.td - falcon dialect operations ------------*- tablegen -*-===//
//
// Model-level operations. Shapes follow Hugging Face: activations are
// [batch, seq, features] (rank 3) or [batch, seq, heads, head_dim] (rank 4),
// Linear weights are [out, in] as in `nn.Linear`.
//
//===----------------------------------------------------------------------===//

#ifndef FALCON_OPS_TD
#define FALCON_OPS_TD

include "Falcon/FalconBase.td"
include "Falcon/FalconAttrs.td"
include "Falcon/FalconInterfaces.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"

def Falcon_Activation : TensorRankOf<[AnyFloat], [3]>;
def Falcon_HeadTensor : TensorRankOf<[AnyFloat], [4]>;
def Falcon_TokenIds : TensorRankOf<[AnySignlessInteger], [2]>;
def Falcon_Vector : TensorRankOf<[AnyFloat], [1]>;
def Falcon_Matrix : TensorRankOf<[AnyFloat], [2]>;

//===----------------------------------------------------------------------===//
// Parameters
//===----------------------------------------------------------------------===//

def Falcon_ParamOp : Falcon_Op<"param", [Pure]> {
  let summary = "reference to a named weight tensor of the checkpoint";
  let description = [{
    Weights never enter the IR as constants. `falcon.param` names the
    checkpoint tensor it stands for; its type is the stored shape and dtype.
    Per-layer weights use a name with one `{}` placeholder and take the layer
    index as an operand, so that the IR does not grow with the layer count.
    With an `encoding` (#falcon.weight_encoding), the value is the checkpoint
    tensor sharded, permuted or quantized as it says (the compiler packs it
    that way for the kernels that read it).

    ```mlir
    %ln_f = falcon.param "transformer.ln_f.weight" : tensor<4544xbf16>
    %qkv = falcon.param "transformer.h.{}.self_attention.query_key_value.weight"[%i]
        : tensor<4672x4544xbf16>
    ```
  }];
  let arguments = (ins StrAttr:$name, Optional<Index>:$layer,
                       OptionalAttr<Falcon_WeightEncodingAttr>:$encoding);
  let results = (outs AnyStaticShapeTensor:$result);
  let assemblyFormat = "$name (`[` $layer^ `]`)? attr-dict `:` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Dense building blocks
//===----------------------------------------------------------------------===//

def Falcon_EmbeddingOp : Falcon_Op<"embedding", [Pure, Falcon_PrecisionOpInterface]> {
  let summary = "token embedding lookup";
  let description = [{
    `result[b, s, :] = table[ids[b, s] - vocab_offset, :]` (no scaling, no
    position table), and zero for an id outside
    `[vocab_offset, vocab_offset + rows of table)`: a vocab-parallel rank
    holds only its rows, and the ranks' results are summed
    (`falcon.all_reduce`). The table may be stored in a narrower float type
    than the result.

    ```mlir
    %x = falcon.embedding %ids, %table
        : (tensor<?x?xi64>, tensor<65024x4544xbf16>) -> tensor<?x?x4544xf32>
    ```
  }];
  let arguments = (ins Falcon_TokenIds:$ids, Falcon_Matrix:$table,
                       DefaultValuedAttr<I64Attr, "0">:$vocab_offset);
  let results = (outs Falcon_Activation:$result);
  let assemblyFormat = "$ids `,` $table attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Falcon_GatherPositionsOp : Falcon_Op<"gather_positions", [Pure]> {
  let summary = "the hidden states of chosen positions of each row";
  let description = [{
    `result[b, r, :] = input[b, positions[b, r], :]`: the positions whose
    logits a call asks for (the forward function's `logit_positions`), so the
    final LayerNorm and the LM head run on those rows only: one per row for a
    prefill that only needs the next token, every position for
    `--logits-out`. A position outside `[0, S)` reads row `S - 1` (the
    runtime never passes one).

    ```mlir
    %last = falcon.gather_positions %h, %positions
        : (tensor<?x?x4544xf32>, tensor<?x?xi64>) -> tensor<?x?x4544xf32>
    ```
  }];
  let arguments = (ins Falcon_Activation:$input, Falcon_TokenIds:$positions);
  let results = (outs Falcon_Activation:$result);
  let assemblyFormat = "$input `,` $positions attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Falcon_DotBytesOp : Falcon_Op<"dot_bytes",
    [Pure, AllTypesMatch<["acc", "lhs", "rhs", "result"]>]> {
  let summary = "lane-wise sums of four unsigned-by-signed byte products (a CPU kernel's)";
  let description = [{
    `result[i] = acc[i] + sum_{j < 4} zext(lhs byte 4i+j) * sext(rhs byte 4i+j)`
    on vectors of 16 i32 lanes, each holding four bytes: AVX512-VNNI's
    `vpdpbusd`, in the form the passes before bufferization can treat as
    pure. falcon-cpu-tile-projections' integer decode creates it;
    falcon-cpu-lower-dot-bytes turns it into the LLVM intrinsic
    (`llvm.x86.avx512.vpdpbusd.512`) once the code is on memrefs, or on an
    AVX2 target without VNNI into `vpmaddubsw` + `vpmaddwd`, exact for
    `lhs` bytes below 128 (int4 codes).

    ```mlir
    %sum = falcon.dot_bytes %acc, %codes, %activations : vector<16xi32>
    ```
  }];
  let arguments = (ins VectorOfLengthAndType<[16], [I32]>:$acc,
                       VectorOfLengthAndType<[16], [I32]>:$lhs,
                       VectorOfLengthAndType<[16], [I32]>:$rhs);
  let results = (outs VectorOfLengthAndType<[16], [I32]>:$result);
  let assemblyFormat = "$acc `,` $lhs `,` $rhs attr-dict `:` type($result)";
}

def Falcon_LayerNormOp : Falcon_Op<"layer_norm",
    [Pure, AllTypesMatch<["input", "result"]>, Falcon_AccumulatesInF32]> {
  let summary = "LayerNorm over the last dimension (biased variance)";
  let description = [{
    `(x - mean(x)) / sqrt(var(x) + epsilon) * weight + bias`, statistics over
    the last dimension; used for the block norms and the final `ln_f`.

    ```mlir
    %u = falcon.layer_norm %x, %w, %b {epsilon = 1.0e-05 : f64}
        : (tensor<?x?x4544xf32>, tensor<4544xbf16>, tensor<4544xbf16>) -> tensor<?x?x4544xf32>
    ```
  }];
  let arguments = (ins Falcon_Activation:$input, Falcon_Vector:$weight,
                       Falcon_Vector:$bias, F64Attr:$epsilon);
  let results = (outs Falcon_Activation:$result);
  let assemblyFormat = "$input `,` $weight `,` $bias attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Falcon_LinearOp : Falcon_Op<"linear", [Pure, Falcon_AccumulatesInF32,
    DeclareOpInterfaceMethods<Falcon_ProjectionOpInterface, ["getProjectionBias"]>]> {
  let summary = "y = x W^T (+ b), weight stored [out, in]";
  let description = [{
    The `nn.Linear` of Hugging Face with its `[out_features, in_features]`
    weight. As in `FalconLinear`, the optional bias is added after the matmul.
    With `transposed_weight` the weight is stored `[in_features,
    out_features]` (the CPU layout chosen by `falcon-cpu-weight-layout`).

    ```mlir
    %y = falcon.linear %x, %w, %b
        : (tensor<?x?x2048xf32>, tensor<6144x2048xbf16>, tensor<6144xbf16>) -> tensor<?x?x6144xf32>
    ```
  }];
  let arguments = (ins Falcon_Activation:$input, Falcon_Matrix:$weight,
                       Optional<Falcon_Vector>:$bias);
  let results = (outs Falcon_Activation:$result);
  let assemblyFormat = "$input `,` $weight (`,` $bias^)? attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Falcon_GeluOp : Falcon_Op<"gelu", [Pure, SameOperandsAndResultType,
    Falcon_PrecisionOpInterface]> {
  let summary = "exact (erf) GELU";
  let description = [{
    `0.5 * x * (1 + erf(x / sqrt(2)))`, the `approximate='none'` GELU that
    every Falcon config uses (not the tanh approximation).

    ```mlir
    %g = falcon.gelu %h : tensor<?x?x18176xf32>
    ```
  }];
  let arguments = (ins Falcon_Activation:$input);
  let results = (outs Falcon_Activation:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

def Falcon_AddOp : Falcon_Op<"add", [Pure, SameOperandsAndResultType,
    Falcon_AccumulatesInF32]> {
  let summary = "elementwise (residual) addition";
  let description = [{
    Residual and branch sums. The order of the adds is that of Hugging Face
    (spec section 4), which matters for bf16 rounding.

    ```mlir
    %m = falcon.add %mlp, %attn : tensor<?x?x4544xf32>
    ```
  }];
  let arguments = (ins Falcon_Activation:$lhs, Falcon_Activation:$rhs);
  let results = (outs Falcon_Activation:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
}

def Falcon_LMHeadOp : Falcon_Op<"lm_head", [Pure, Falcon_ProjectionOpInterface,
    Falcon_AccumulatesInF32]> {
  let summary = "logits = hidden W^T with W [vocab, hidden], no bias";
  let description = [{
    The language-model head. With `tied`, `weight` is the word-embedding
    matrix (Hugging Face ignores a stored `lm_head.weight` then); otherwise it
    is `lm_head.weight`; either way it is `[vocab, hidden]`.

    ```mlir
    %logits = falcon.lm_head %h, %emb {tied}
        : (tensor<?x?x4544xf32>, tensor<65024x4544xbf16>) -> tensor<?x?x65024xf32>
    ```
  }];
  let arguments = (ins Falcon_Activation:$input, Falcon_Matrix:$weight,
                       UnitAttr:$tied);
  let results = (outs Falcon_Activation:$result);
  let assemblyFormat = "$input `,` $weight attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Collectives
//===----------------------------------------------------------------------===//

def Falcon_AllReduceOp : Falcon_Op<"all_reduce", [
    AllTypesMatch<["input", "result"]>, MemoryEffects<[MemWrite]>]> {
  let summary = "sum over the ranks of a tensor-parallel group, plus biases";
  let description = [{
    `result = sum over the group_size ranks of input + biases`: the partial
    results of row-parallel projections (Megatron) summed across the
    stage's tensor-parallel ranks, then each bias (the row-parallel
    projections' own, added once, after the reduction) broadcast over the
    last dimension. Every rank of the group executes the same all_reduce ops
    in the same order. It has a side effect (communication), so it is never
    removed, duplicated or reordered with other collectives.

    Falcon's parallel attention + MLP block needs one per layer: the two
    row-parallel partials are added first.

    ```mlir
    %partial = falcon.add %mlp, %attn : tensor<?x?x4544xf32>
    %sum = falcon.all_reduce %partial {group_size = 2 : i64} : tensor<?x?x4544xf32>
    %out = falcon.all_reduce %dense bias(%b : tensor<96xf32>) {group_size = 3 : i64} : tensor<?x?x96xf32>
    ```
  }];
  let arguments = (ins Falcon_Activation:$input, Variadic<Falcon_Vector>:$biases,
                       I64Attr:$group_size);
  let results = (outs Falcon_Activation:$result);
  let assemblyFormat = "$input (`bias` `(` $biases^ `:` type($biases) `)`)? attr-dict `:` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

def Falcon_QKVSplitOp : Falcon_Op<"qkv_split", [Pure, Falcon_PrecisionOpInterface]> {
  let summary = "split the fused query_key_value output into q, k and v heads";
  let description = [{
    Interprets the channels of the fused projection according to `layout`
    (spec section 5.2), with `H = num_heads`, `K = num_kv_heads` and `d` the
    head size:

    * `per_head` (falcon-rw): `view(B, S, H, 3, d)`, head h owns
      `[q_h | k_h | v_h]`; requires `K == H`; width `3 * H * d`.
    * `multi_query` (falcon-7b): `view(B, S, H + 2, d)`: H query heads, then
      the single key, then the single value; requires `K == 1`; width
      `(H + 2) * d`.
    * `grouped` (falcon-40b/180B/11B): `view(B, S, K, H / K + 2, d)`: each
      group holds its `H / K` query heads, then its key, then its value;
      width `(H + 2K) * d`.

    Results are `q: [B, S, H, d]` and `k, v: [B, S, K, d]`.

    ```mlir
    %q, %k, %v = falcon.qkv_split %fused {layout = #falcon.qkv_layout<multi_query>,
        num_heads = 71 : i64, num_kv_heads = 1 : i64}
        : tensor<?x?x4672xf32> -> (tensor<?x?x71x64xf32>, tensor<?x?x1x64xf32>, tensor<?x?x1x64xf32>)
    ```
  }];
  let arguments = (ins Falcon_Activation:$fused, Falcon_QKVLayoutAttr:$layout,
                       I64Attr:$num_heads, I64Attr:$num_kv_heads);
  let results = (outs Falcon_HeadTensor:$query, Falcon_HeadTensor:$key,
                      Falcon_HeadTensor:$value);
  let assemblyFormat = "$fused attr-dict `:` type($fused) `->` `(` type($query) `,` type($key) `,` type($value) `)`";
  let hasVerifier = 1;
}

def Falcon_RotaryOp : Falcon_Op<"rotary", [Pure, AllTypesMatch<["input", "result"]>,
    Falcon_PrecisionOpInterface]> {
  let summary = "rotary position embedding (GPT-NeoX rotate_half)";
  let description = [{
    Rotates every head of `input: [B, S, N, d]` by the angles
    `positions[b, s] * inv_freq_i`, `inv_freq_i = 1 / theta^(2i/d)`, with the
    halves convention: `x' = x * cos + rotate_half(x) * sin`. Angles are
    computed in f32 as Hugging Face does. `scaling = linear` divides
    `inv_freq` by `factor`; `dynamic` applies NTK scaling of `theta` once the
    sequence exceeds `max_position_embeddings`.

    ```mlir
    %qr = falcon.rotary %q, %pos {theta = 1.0e+04 : f64}
        : (tensor<?x?x71x64xf32>, tensor<?x?xi64>) -> tensor<?x?x71x64xf32>
    ```
  }];
  let arguments = (ins Falcon_HeadTensor:$input, Falcon_TokenIds:$positions,
                       F64Attr:$theta,
                       DefaultValuedAttr<Falcon_RopeScalingAttr, "RopeScaling::None">:$scaling,
                       DefaultValuedAttr<F64Attr, "1.0">:$factor,
                       DefaultValuedAttr<I64Attr, "2048">:$max_position_embeddings);
  let results = (outs Falcon_HeadTensor:$result);
  let assemblyFormat = "$input `,` $positions attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Falcon_AlibiOp : Falcon_Op<"alibi", [Pure, Falcon_PrecisionOpInterface]> {
  let summary = "ALiBi bias per head and key position";
  let description = [{
    `result[h, j] = bf16(bf16(slope_h) * j)` for `j < num_keys`, the slopes of
    `build_alibi_tensor` (spec section 5.4) including Hugging Face's bfloat16
    rounding, which it applies even to f32 models. Key positions are the
    absolute key indices (no left padding). The bias is added to the
    *unscaled* score by `falcon.attention`. The slopes depend on the model's
    `num_heads`; the result holds the rows of heads `first_head ..
    first_head + rows - 1` (a tensor-parallel rank's own heads).

    ```mlir
    %bias = falcon.alibi %num_keys {num_heads = 32 : i64} : tensor<32x?xf32>
    %mine = falcon.alibi %num_keys {num_heads = 32 : i64, first_head = 16 : i64} : tensor<16x?xf32>
    ```
  }];
  let arguments = (ins Index:$num_keys, I64Attr:$num_heads,
                       DefaultValuedAttr<I64Attr, "0">:$first_head);
  let results = (outs Falcon_Matrix:$result);
  let assemblyFormat = "$num_keys attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Falcon_AttentionOp : Falcon_Op<"attention", [Pure, Falcon_AccumulatesInF32,
    AllTypesMatch<["key_cache", "new_key_cache"]>,
    AllTypesMatch<["value_cache", "new_value_cache"]>]> {
  let summary = "causal grouped-query attention with a KV cache";
  let description = [{
    Appends `key`/`value` (`[B, S, K, d]`, after RoPE) to the caches
    (`[B, K, capacity, d]`, the compact form with one entry per KV head):
    row `b`'s at cache rows `past_lens[b] .. past_lens[b] + S - 1`, so that
    the rows of a batch may hold different lengths (a shorter prompt is
    padded at its end; its padding is written past its length, where its
    next tokens overwrite it). Then for every query head `h` (which reads KV
    head `h / (H / K)`) it computes

    `softmax_j((q_h . k_j + bias[h, j]) / sqrt(d))  for j <= past_lens[b] + i`

    and returns the context with heads concatenated head-major:
    `[B, S, H * d]`, together with the updated caches.

    ```mlir
    %ctx, %kc, %vc = falcon.attention %q, %k, %v, %kcache, %vcache, %past_lens
        : (tensor<?x?x71x64xf32>, tensor<?x?x1x64xf32>, tensor<?x?x1x64xf32>,
           tensor<?x1x?x64xf32>, tensor<?x1x?x64xf32>, tensor<?xi64>)
        -> (tensor<?x?x4544xf32>, tensor<?x1x?x64xf32>, tensor<?x1x?x64xf32>)
    ```
  }];
  let arguments = (ins Falcon_HeadTensor:$query, Falcon_HeadTensor:$key,
                       Falcon_HeadTensor:$value, Falcon_HeadTensor:$key_cache,
                       Falcon_HeadTensor:$value_cache, 1DTensorOf<[I64]>:$past_lens,
                       Optional<Falcon_Matrix>:$bias);
  let results = (outs Falcon_Activation:$result, Falcon_HeadTensor:$new_key_cache,
                      Falcon_HeadTensor:$new_value_cache);
  let assemblyFormat = "$query `,` $key `,` $value `,` $key_cache `,` $value_cache `,` $past_lens (`bias` `(` $bias^ `)`)? attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

#endif // FALCON_OPS_TD
