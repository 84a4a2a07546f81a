//===- FalconOps.h - falcon dialect operations ------------------*- C++ -*-===//
#ifndef FALCON_DIALECT_FALCON_IR_FALCONOPS_H
#define FALCON_DIALECT_FALCON_IR_FALCONOPS_H

#include "Falcon/IR/FalconDialect.h"
#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/TypeUtilities.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include <vector>

#include "Falcon/FalconEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "Falcon/FalconAttrs.h.inc"

#include "Falcon/FalconInterfaces.h.inc"

#define GET_OP_CLASSES
#include "Falcon/FalconOps.h.inc"

namespace mlir::falcon {
/// Width of the fused QKV projection for `layout` (spec section 5.2).
int64_t getFusedQKVWidth(QKVLayout layout, int64_t numHeads,
                         int64_t numKVHeads, int64_t headDim);
/// The fused QKV rows of query heads `queryHeads` (ascending) and of their KV
/// heads, in the layout's order (spec section 5.2): a tensor-parallel rank's
/// shard, or the heads a pruned model keeps.
std::vector<int64_t> getFusedQKVRows(QKVLayout layout, int64_t numHeads,
                                     int64_t numKVHeads, int64_t headDim,
                                     llvm::ArrayRef<int64_t> queryHeads);
} // namespace mlir::falcon

#endif // FALCON_DIALECT_FALCON_IR_FALCONOPS_H
