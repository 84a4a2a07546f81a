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
  let summary = "Split projections over threads and tile their rows";
  let description = [{
    Tiles every `linalg.generic` tagged `falcon.projection` (loops batch, in,
    seq, out; see convert-falcon-to-linalg) on tensors:
    * the input features (the reduction) into `parallel-chunks` blocks of
      weight rows, as an `scf.forall` that the CPU pipeline turns into an
      OpenMP parallel loop: each thread streams its own contiguous part of the
      weight into partial sums, which are added afterwards (split-K);
    * the sequence into blocks of `row-tile` rows, so that a weight-row chunk
      read from memory is reused from L1 by all rows of a block (prefill).
  }];
  let options = [
    Option<"parallelChunks", "parallel-chunks", "int64_t", /*default=*/"2",
           "Blocks of weight rows run in parallel (1: no threads)">,
    Option<"rowTile", "row-tile", "int64_t", /*default=*/"16",
           "Sequence rows per tile">
  ];
  let dependentDialects = ["::mlir::scf::SCFDialect", "::mlir::affine::AffineDialect"];
}

#endif // FALCON_TRANSFORMS_PASSES_TD
