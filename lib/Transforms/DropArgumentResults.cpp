//===- DropArgumentResults.cpp - drop results that are arguments ----------===//

#include "falcon/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/BitVector.h"

#define DEBUG_TYPE "falcon-drop-argument-results"

namespace mlir::falcon {
#define GEN_PASS_DEF_FALCONDROPARGUMENTRESULTS
#include "falcon/Transforms/Passes.h.inc"
} // namespace mlir::falcon

using namespace mlir;

namespace {
struct FalconDropArgumentResultsPass
    : public mlir::falcon::impl::FalconDropArgumentResultsBase<
          FalconDropArgumentResultsPass> {
  void runOnOperation() override {
    for (auto func : getOperation().getOps<func::FuncOp>()) {
      if (func.isExternal() || !func.getBody().hasOneBlock())
        continue;
      auto returnOp = cast<func::ReturnOp>(func.getBody().front().getTerminator());
      llvm::BitVector drop(func.getNumResults());
      for (auto [index, operand] : llvm::enumerate(returnOp.getOperands()))
        if (auto arg = dyn_cast<BlockArgument>(operand))
          drop[index] = arg.getOwner() == &func.getBody().front() &&
                        isa<MemRefType>(arg.getType());
      if (drop.none())
        continue;
      // Callers inside the module would need rewriting; the entry point has none.
      if (!SymbolTable::symbolKnownUseEmpty(func, getOperation())) {
        func.emitOpError("has callers; cannot drop its argument results");
        return signalPassFailure();
      }
      returnOp->eraseOperands(drop);
      if (failed(func.eraseResults(drop)))
        return signalPassFailure();
    }
  }
};
} // namespace
