//===- Passes.h - falcon conversion passes ----------------------*- C++ -*-===//
#ifndef FALCON_CONVERSION_PASSES_H
#define FALCON_CONVERSION_PASSES_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Pass/Pass.h"

namespace mlir::falcon {

#define GEN_PASS_DECL
#include "falcon/Conversion/Passes.h.inc"

/// Marks the linalg.generic of a projection with an [in, out] weight, loops
/// (batch, in, seq, out) and getProjectionIndexingMaps;
/// falcon-cpu-tile-projections tiles these.
inline constexpr llvm::StringLiteral kProjectionAttrName = "falcon.projection";

/// The indexing maps of a tagged projection, y[b, s, n] += x[b, s, k] *
/// W[k, n] over loops (b, k, s, n): x (d0, d2, d1), W (d1, d3), y (d0, d2, d3).
SmallVector<AffineMap> getProjectionIndexingMaps(MLIRContext *context);

/// Marks a linalg.generic whose iterations along loop dimension N (the
/// attribute's value) are independent and sizeable (attention heads);
/// falcon-cpu-parallel-heads runs them on threads.
inline constexpr llvm::StringLiteral kParallelDimAttrName = "falcon.parallel_dim";

/// Patterns lowering every falcon compute op to linalg/tensor/arith/math.
void populateFalconToLinalgPatterns(RewritePatternSet &patterns);

#define GEN_PASS_REGISTRATION
#include "falcon/Conversion/Passes.h.inc"

} // namespace mlir::falcon

#endif // FALCON_CONVERSION_PASSES_H
