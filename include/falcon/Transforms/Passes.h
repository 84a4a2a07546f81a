//===- Passes.h - falcon transformation passes ------------------*- C++ -*-===//
#ifndef FALCON_TRANSFORMS_PASSES_H
#define FALCON_TRANSFORMS_PASSES_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Shard/IR/ShardDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::falcon {

/// The function a bufferized all-reduce (shard.all_reduce, sum, f32, over
/// the plan grid's tensor axis) calls on its flattened
/// buffer (memref<?xf32>, summed in place across the tensor-parallel group);
/// the host library defines it over the runtime's import table.
inline constexpr llvm::StringLiteral kAllReduceFunctionName = "falcon_all_reduce_sum_f32";

/// One-Shot Bufferize's model of the collectives that reach bufferization
/// (upstream's shard.all_reduce, which has none).
void registerFalconBufferizationExternalModels(DialectRegistry &registry);

#define GEN_PASS_DECL
#include "falcon/Transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "falcon/Transforms/Passes.h.inc"

} // namespace mlir::falcon

#endif // FALCON_TRANSFORMS_PASSES_H
