//===- Passes.td - falcon transformation passes ------------*- tablegen -*-===//

#ifndef FALCON_TRANSFORMS_PASSES_TD
#define FALCON_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def FalconBindWeights : Pass<"falcon-bind-weights", "ModuleOp"> {
  let summary = "Bind falcon.param to views of the packed weight buffer";
  let description = [{
    Lays out every distinct `falcon.param` in one weight buffer (each tensor
    and each layer's copy at a 64-byte-aligned offset, see
    `computeWeightLayout`), adds a `memref<?xi8>` argument named `weights` to
    each function that reads parameters, and replaces every `falcon.param` by
    a `memref.view` of that buffer at its offset (`offset + layer * stride`
    for per-layer weights), wrapped in a read-only `bufferization.to_tensor`.
    The artifact writer packs `weights.bin` with the same layout.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::bufferization::BufferizationDialect",
                           "::mlir::memref::MemRefDialect"];
}

def FalconDropArgumentResults : Pass<"falcon-drop-argument-results", "ModuleOp"> {
  let summary = "Drop function results that are the function's own arguments";
  let description = [{
    After in-place bufferization, `@forward` returns its KV-cache arguments
    unchanged (they were updated in place). This pass removes such results
    from public functions too (upstream's `drop-equivalent-buffer-results`
    only rewrites private functions), so that the entry point's C ABI takes
    the caches as plain in/out arguments.
  }];
}

def FalconStridedCopiesToLinalg : Pass<"falcon-strided-copies-to-linalg", "func::FuncOp"> {
  let summary = "Rewrite memref.copy between non-contiguous buffers as linalg.copy";
  let description = [{
    `finalize-memref-to-llvm` lowers a `memref.copy` between contiguous
    buffers to `llvm.memcpy`, but any other copy to a call into MLIR's
    `memrefCopy` runtime helper. The host library links nothing but libc and
    libm, so copies into strided views (KV-cache rows) become `linalg.copy`,
    which lowers to plain loops.
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect"];
}

def FalconFuseElementwise : Pass<"falcon-fuse-elementwise", "func::FuncOp"> {
  let summary = "Fuse elementwise producers into all-parallel consumers only";
  let description = [{
    Upstream's `linalg-fuse-elementwise-ops` also fuses an elementwise
    producer into a consumer that reduces: for a projection whose input is
    the GELU output, that evaluates the GELU once per output column instead
    of once per element (an N-fold redundant `erf`). This pass applies the
    same patterns but only when every loop of the consumer is parallel.
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect"];
}

def FalconShard : Pass<"falcon-shard", "ModuleOp"> {
  let summary = "Rewrite the module into one rank's program of a tp x pp plan";
  let description = [{
    Megatron-style tensor parallelism and pipeline stages, with explicit
    collectives (ParallelPlan.h decides who holds what). For rank `rank`
    (stage `rank / tp`, slot `rank % tp`):

    * the fused QKV projection keeps the rows of the slot's KV groups and
      their query heads (`#falcon.weight_encoding<gather = ...>` on the
      param); `falcon.qkv_split`, rotary, attention and the KV cache take the
      slot's head counts; ALiBi slopes are the slot's heads' (`first_head`);
    * the attention output projection and `dense_4h_to_h` are row-parallel
      (input columns sliced), `dense_h_to_4h` column-parallel;
    * one `falcon.all_reduce` per parallel attention + MLP block (the two
      partials are added first), one after each row-parallel projection of a
      sequential block; row-parallel biases are added once, after the
      reduction (the all-reduce's `bias` operands);
    * the embedding and LM head are vocab-parallel: the slot's rows of the
      table (`falcon.embedding`'s `vocab_offset`, then an all-reduce) and its
      slice of the logits;
    * the layer loop runs the stage's layers; a stage after the first takes
      the previous stage's hidden states (`hidden_in`) instead of token ids,
      and a stage before the last returns hidden states instead of logits.

    The module gets a `#falcon.rank_plan` and the plan's device grid,
    upstream's `shard.grid @falcon_plan(shape = pp x tp)`, over whose tensor
    axis the all-reduces sum once lowered (`shard.all_reduce`). tp = pp = 1
    leaves the module unchanged.
    Impossible plans (tp above the query heads, pp above the layers, ...)
    are errors naming the numbers.
  }];
  let dependentDialects = ["::mlir::shard::ShardDialect"];
  let options = [
    Option<"tp", "tp", "int64_t", /*default=*/"1", "Tensor-parallel ranks per stage">,
    Option<"pp", "pp", "int64_t", /*default=*/"1", "Pipeline stages">,
    Option<"rank", "rank", "int64_t", /*default=*/"0", "The rank to produce, in [0, tp * pp)">
  ];
}

def FalconComputePrecision : Pass<"falcon-compute-precision", "ModuleOp"> {
  let summary = "Round the activations every float projection reads to bf16 or f16";
  let description = [{
    `--dtype bf16|f16` of falcon-compile. Every projection (the linalg
    contraction `isProjection` recognises, either weight layout) whose
    weight is stored as floats reads its activations rounded to `dtype`
    (round to nearest even) by a `linalg.generic` of `arith.truncf` in
    front of it, and extends them in its body; the product of two such
    values is exact in f32 and the sums stay f32 (the precision interface's
    f32 accumulation). One rounding serves every projection that reads the
    same tensor (the fused QKV and the MLP of a parallel-attention layer).
    What stays f32: the residual stream, LayerNorm, attention's scores and
    softmax, the projections' sums and outputs, the logits. A projection
    whose weight is quantized (falcon-quantize-weights, which runs first)
    keeps its f32 activations: its decode quantizes them to int8 itself.
    `dtype` f32 changes nothing. f16 values are kept as f32 tensors on the
    f16 grid (`extf(truncf x)`): no target here has f16 dot products, and a
    conversion per element in the projections' inner loops cost 30 % of
    prefill; bf16 tensors stay bf16 for the targets' bf16 pair sums.

    `guard` (with `dtype` f16: falcon-compile's precision guard) makes the
    rounding switchable per layer at run time. The entry point gets one more
    argument, `precision_guard` (memref<(L+1)xi8>, updated in place): entry i
    is layer i's state (entry L: the projections outside the layer loop, the
    LM head). Bit 0 set: round that layer to bf16 instead (f32's range);
    every rounding then checks its result and sets bit 1 where a value is
    not finite (|x| >= 65520 overflows f16). The runtime reruns a step whose
    guard reports an overflow with that layer switched (docs/precision.md).
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect", "::mlir::linalg::LinalgDialect",
                           "::mlir::math::MathDialect", "::mlir::memref::MemRefDialect",
                           "::mlir::scf::SCFDialect", "::mlir::tensor::TensorDialect"];
  let options = [
    Option<"dtype", "dtype", "std::string", /*default=*/"\"f32\"",
           "The projections' activation type: f32, bf16 or f16">,
    Option<"guard", "guard", "bool", /*default=*/"false",
           "Per-layer overflow check and bf16 fallback (dtype f16 only)">
  ];
}

def FalconQuantizeWeights : Pass<"falcon-quantize-weights", "ModuleOp"> {
  let summary = "Weight-only int8/int4 quantization of the decoder layers' projections";
  let description = [{
    Every projection (the linalg contraction `isProjection` recognises, loops
    (b, k, s, n), weight [in, out]) whose weight is a per-layer
    `falcon.param` reads the weight quantized instead: params for its codes,
    f16 scales and (unless `symmetric`) f16 zero points, each with a
    `#falcon.weight_encoding` that says how the weight-transform library
    quantizes the checkpoint tensor at compile time (round to nearest, groups
    of `group-size` inputs, halved until they divide the inputs), and a
    dequantizing `linalg.generic` (loops (k, n): (code - zero) * scale, f32)
    whose result the projection reads. The target's tiling fuses it into the
    projection's tiles, so the weight is never dequantized whole. The
    embedding keeps its stored type, and so does the LM head (not per-layer)
    unless `lm-head-bits` is 8: then it is quantized to int8 the same way
    (its own copy of a tied table: the embedding still reads the stored
    rows); `bits` 0 leaves the layers as stored. A weight whose inputs no
    group of at least 8 divides keeps its type. With
    `act-order` (a GPTQ checkpoint quantized in act-order), the parts hold
    the inputs in the order of an `input_order` param, and the projection
    reads `x[b, s, input_order[k]]` (a gather generic) for `x[b, s, k]`.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect", "::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect"];
  let options = [
    Option<"bits", "bits", "int64_t", /*default=*/"8",
           "Bits per decoder-layer weight: 8 or 4 (0: as stored)">,
    Option<"groupSize", "group-size", "int64_t", /*default=*/"128",
           "Inputs per scale: 32, 64 or 128">,
    Option<"symmetric", "symmetric", "bool", /*default=*/"true",
           "Symmetric codes (no zero points)">,
    Option<"actOrder", "act-order", "bool", /*default=*/"false",
           "GPTQ act-order: each projection also reads an input_order param "
           "(its inputs sorted by group) and gathers its activations by it">,
    Option<"lmHeadBits", "lm-head-bits", "int64_t", /*default=*/"0",
           "Bits per LM-head weight: 8, or 0 (as stored)">
  ];
}

#endif // FALCON_TRANSFORMS_PASSES_TD
