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

def FalconCPUWeightLayout : Pass<"falcon-cpu-weight-layout", "ModuleOp"> {
  let summary = "Pack Linear and LM-head weights [in, out] for the CPU kernels";
  let description = [{
    A projection `y = x W^T` with `W` stored `[out, in]` reduces along rows
    of `W`; with `W` packed `[in, out]` the innermost loop is a contiguous
    `y[n] += x[k] * W[k, n]` over output features that vectorizes and streams
    each weight once per token. This pass makes every `falcon.linear` and
    `falcon.lm_head` whose weight is a `falcon.param` read a `transposed`
    parameter instead; the artifact writer packs those transposed. A tied
    LM head gets its own transposed copy of the embedding table (the
    embedding itself keeps reading rows).
  }];
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

def FalconCPUTileProjections : Pass<"falcon-cpu-tile-projections", "func::FuncOp"> {
  let summary = "Tile projections for threads and registers, prefill and decode";
  let description = [{
    Rewrites every `linalg.generic` tagged `falcon.projection` (loops batch,
    in, seq, out; see convert-falcon-to-linalg) on tensors into an `scf.if` on
    the sequence length, since one compiled function serves both:

    * at least `tile-rows` rows (prefill, compute-bound): the output columns
      are split into `parallel-chunks` blocks run as an `scf.forall` (OpenMP
      threads), then tiled into loops (batch, `tile-depth` input features,
      `tile-cols` columns, `tile-rows` rows). The column and row loops are
      peeled so that every tile of the main loops has the static size
      `tile-rows` x `tile-cols`. Those tiles, and those of the last rows
      (fewer than `tile-rows`), are tagged `falcon.microkernel = tile-rows`
      for falcon-cpu-projection-microkernels; the last columns (when the
      columns are not a multiple of `tile-cols`) stay generic;
    * fewer rows (decode, bandwidth-bound): the input features (the
      reduction) are split into `parallel-chunks` contiguous blocks of weight
      rows, computed in parallel (`scf.forall`) into partial sums that are
      added afterwards (split-K), so each thread streams its own part of the
      weight.
  }];
  let options = [
    Option<"parallelChunks", "parallel-chunks", "int64_t", /*default=*/"2",
           "Threads (blocks) each projection is split over (1: no threads)">,
    Option<"tileRows", "tile-rows", "int64_t", /*default=*/"8",
           "Sequence rows of a register tile (and the fewest rows of a prefill)">,
    Option<"tileCols", "tile-cols", "int64_t", /*default=*/"32",
           "Output columns of a register tile">,
    Option<"tileDepth", "tile-depth", "int64_t", /*default=*/"256",
           "Input features per block of a register tile's reduction">
  ];
  let dependentDialects = ["::mlir::scf::SCFDialect", "::mlir::affine::AffineDialect",
                           "::mlir::tensor::TensorDialect"];
}

def FalconCPUParallelHeads : Pass<"falcon-cpu-parallel-heads", "func::FuncOp"> {
  let summary = "Run the attention heads on threads";
  let description = [{
    Tiles every `linalg.generic` tagged `falcon.parallel_dim = N` (the
    attention generics of convert-falcon-to-linalg: scores, softmax, context)
    along loop dimension N into `parallel-chunks` blocks, as an `scf.forall`
    that the CPU pipeline turns into an OpenMP parallel loop. Each head is
    computed by one thread in the same order as without threads.
  }];
  let options = [
    Option<"parallelChunks", "parallel-chunks", "int64_t", /*default=*/"2",
           "Blocks (threads) the tagged dimension is split into (1: no threads)">
  ];
  let dependentDialects = ["::mlir::scf::SCFDialect", "::mlir::affine::AffineDialect",
                           "::mlir::tensor::TensorDialect"];
}

def FalconCPUProjectionMicrokernels
    : Pass<"falcon-cpu-projection-microkernels", "func::FuncOp"> {
  let summary = "Turn static projection tiles into vector FMA register tiles";
  let description = [{
    Replaces every projection tile tagged `falcon.microkernel = T` whose
    column extent is static (`y[1, R, C] += x[1, R, K] * W[K, C]`) by a
    register tile: R accumulators of `vector<C x f32>` read from `y`, a loop
    over K that loads one weight row `W[k, 0:C]` and does R `vector.fma`s
    with the broadcast inputs `x[0, r, k]`, and the accumulators written back.
    Each weight load is reused by R rows and each input by C columns, from
    registers; narrower weights (bf16/f16) are read as they are and extended
    in registers. A tile with a dynamic row count n (the last rows of a
    sequence) becomes a T-row tile under `scf.if 1 <= n <= T` whose rows past
    n repeat row n - 1 (the same value written to the same place); other
    counts run the generic. Tiles with dynamic columns are left alone.
  }];
  let dependentDialects = ["::mlir::scf::SCFDialect", "::mlir::vector::VectorDialect",
                           "::mlir::tensor::TensorDialect"];
}

#endif // FALCON_TRANSFORMS_PASSES_TD
