//===- Passes.h - falcon conversion passes ----------------------*- C++ -*-===//
#ifndef FALCON_CONVERSION_PASSES_H
#define FALCON_CONVERSION_PASSES_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Shard/IR/ShardDialect.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Pass/Pass.h"

namespace mlir::falcon {

#define GEN_PASS_DECL
#include "falcon/Conversion/Passes.h.inc"

/// The indexing maps of a projection. With an [in, out] weight (the default),
/// y[b, s, n] += x[b, s, k] * W[k, n] over loops (b, k, s, n): x (d0, d2, d1),
/// W (d1, d3), y (d0, d2, d3). With an [out, in] weight (the checkpoint's
/// layout, what the target-neutral lowering emits), y[b, s, n] += x[b, s, k] *
/// W[n, k] over loops (b, s, n, k).
SmallVector<AffineMap> getProjectionIndexingMaps(MLIRContext *context,
                                                 bool weightInOut = true);
/// Their loop kinds (the reduction over k second, or last).
SmallVector<utils::IteratorType> getProjectionIteratorTypes(bool weightInOut = true);

/// Whether `op` is such a projection: those maps and the body acc + x * w,
/// with w possibly narrower (bf16/f16 weights) and extended in the body, and
/// x likewise (activations that falcon-compute-precision rounded).
/// Targets' strategies tile these (a contraction that
/// linalg::inferContractionDims recognises as well).
bool isProjection(linalg::GenericOp op, bool weightInOut = true);

/// For a projection with an [in, out] weight whose body computes the weight
/// element from inputs other than x (a stored weight, possibly extended, or
/// a quantized one dequantized from codes and scales indexed by k / group):
/// loops (b, k, s, n), x (d0, d2, d1), y (d0, d2, d3), every other input
/// indexed (f(d1), d3), and the body acc + x * w. Returns the body's w, or
/// null when `op` is not such a projection.
Value getProjectionWeightElement(linalg::GenericOp op);

/// The body's x element of projection `op`: its first block argument, or
/// that argument's extension when it is narrower (bf16/f16 activations).
Value getProjectionInputElement(linalg::GenericOp op);

/// Patterns lowering every falcon compute op to linalg/tensor/arith/math.
void populateFalconToLinalgPatterns(RewritePatternSet &patterns);

#define GEN_PASS_REGISTRATION
#include "falcon/Conversion/Passes.h.inc"

} // namespace mlir::falcon

#endif // FALCON_CONVERSION_PASSES_H
