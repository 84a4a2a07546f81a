//===- CPUExpandBF16.cpp - bf16 conversions without compiler-rt -----------===//

#include "falcon/Codegen/CPU/Passes.h"

#include "mlir/Dialect/Arith/Transforms/Passes.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::falcon {
#define GEN_PASS_DEF_FALCONCPUEXPANDBF16
#include "falcon/Codegen/CPU/Passes.h.inc"
} // namespace mlir::falcon

using namespace mlir;

namespace {
/// An integer converted straight to bf16 (canonicalization folds
/// truncf(sitofp(x) : f32) : bf16 into one op) goes through f32, so that the
/// truncation is expanded too. Exact for integers below 2^24, which f32 holds
/// (positions, indices).
template <typename OpTy>
struct IntegerToBF16ThroughF32 : public OpRewritePattern<OpTy> {
  using OpRewritePattern<OpTy>::OpRewritePattern;
  LogicalResult matchAndRewrite(OpTy op, PatternRewriter &rewriter) const override {
    Type type = op.getType();
    if (!getElementTypeOrSelf(type).isBF16())
      return rewriter.notifyMatchFailure(op, "not a conversion to bf16");
    Type f32 = rewriter.getF32Type();
    if (auto shaped = dyn_cast<ShapedType>(type))
      f32 = shaped.clone(f32);
    Value wide = OpTy::create(rewriter, op.getLoc(), f32, op.getIn());
    rewriter.replaceOpWithNewOp<arith::TruncFOp>(op, type, wide);
    return success();
  }
};

struct FalconCPUExpandBF16Pass
    : public mlir::falcon::impl::FalconCPUExpandBF16Base<FalconCPUExpandBF16Pass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<IntegerToBF16ThroughF32<arith::SIToFPOp>,
                 IntegerToBF16ThroughF32<arith::UIToFPOp>>(&getContext());
    arith::populateExpandBFloat16Patterns(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
