//===- ModelStats.h - parameter and memory figures --------------*- C++ -*-===//
#ifndef FALCON_IMPORT_MODELSTATS_H
#define FALCON_IMPORT_MODELSTATS_H

#include "falcon/Import/FalconConfig.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::falcon {

/// Prints the exact parameter count, the weight bytes at bf16, int8 and int4,
/// the per-token KV-cache bytes and the size of the imported IR.
void printModelStats(const FalconConfig &config, llvm::StringRef name,
                     ModuleOp module, llvm::raw_ostream &os);

} // namespace mlir::falcon

#endif // FALCON_IMPORT_MODELSTATS_H
