//===- FuseElementwise.cpp - elementwise fusion without recomputation -----===//

#include "falcon/Transforms/Passes.h"

#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#define DEBUG_TYPE "falcon-fuse-elementwise"

namespace mlir::falcon {
#define GEN_PASS_DEF_FALCONFUSEELEMENTWISE
#include "falcon/Transforms/Passes.h.inc"
} // namespace mlir::falcon

using namespace mlir;

namespace {
struct FalconFuseElementwisePass
    : public mlir::falcon::impl::FalconFuseElementwiseBase<
          FalconFuseElementwisePass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    linalg::populateElementwiseOpsFusionPatterns(
        patterns, [](OpOperand *fused) {
          auto consumer = dyn_cast<linalg::LinalgOp>(fused->getOwner());
          return consumer &&
                 consumer.getNumLoops() == consumer.getNumParallelLoops();
        });
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
