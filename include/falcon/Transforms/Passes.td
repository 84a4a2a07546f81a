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

#endif // FALCON_TRANSFORMS_PASSES_TD
