//===- CPUProjectionMicrokernels.cpp - register tiles of projections ------===//
//
// The register tile of a prefill projection, y[1, R, C] += x[1, R, K] W[K, C]:
//
//   acc[r] = y[0, r, 0:C]                                 (r < R)
//   for k < K:
//     w = W[k, 0:C]
//     acc[r] = fma(broadcast(x[0, r, k]), w, acc[r])      (r < R)
//   y[0, r, 0:C] = acc[r]
//
// With R = 8 and C = 32 on AVX-512 that is 16 vector accumulators, two
// weight loads and eight broadcasts per sixteen FMAs.
//
//===----------------------------------------------------------------------===//

#include "falcon/Transforms/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/WalkPatternRewriteDriver.h"

namespace mlir::falcon {
#define GEN_PASS_DEF_FALCONCPUPROJECTIONMICROKERNELS
#include "falcon/Transforms/Passes.h.inc"
} // namespace mlir::falcon

using namespace mlir;

/// Whether `op` is y[b, s, n] += x[b, s, k] * W[k, n] over loops (b, k, s, n).
static bool isProjection(linalg::GenericOp op) {
  if (op.getNumDpsInputs() != 2 || op.getNumDpsInits() != 1 || op.getNumLoops() != 4)
    return false;
  MLIRContext *context = op.getContext();
  auto map = [&](ArrayRef<unsigned> dims) {
    SmallVector<AffineExpr> exprs;
    for (unsigned dim : dims)
      exprs.push_back(getAffineDimExpr(dim, context));
    return AffineMap::get(4, 0, exprs, context);
  };
  if (op.getIndexingMapsArray() !=
      SmallVector<AffineMap>{map({0, 2, 1}), map({1, 3}), map({0, 2, 3})})
    return false;
  Block &body = op.getRegion().front();
  if (body.getOperations().size() != 3)
    return false;
  auto mul = dyn_cast<arith::MulFOp>(body.front());
  auto add = dyn_cast<arith::AddFOp>(*std::next(body.begin()));
  auto yield = cast<linalg::YieldOp>(body.getTerminator());
  if (!mul || !add || yield.getValues() != ValueRange{add.getResult()})
    return false;
  Value in = body.getArgument(0), weight = body.getArgument(1), acc = body.getArgument(2);
  bool mulOk = (mul.getLhs() == in && mul.getRhs() == weight) ||
               (mul.getLhs() == weight && mul.getRhs() == in);
  bool addOk = (add.getLhs() == acc && add.getRhs() == mul) ||
               (add.getLhs() == mul && add.getRhs() == acc);
  return mulOk && addOk;
}

namespace {
struct ProjectionTileToMicrokernel : public OpRewritePattern<linalg::GenericOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(linalg::GenericOp op,
                                PatternRewriter &rewriter) const override {
    if (!op->hasAttr(mlir::falcon::kMicrokernelAttrName) || !isProjection(op) ||
        !op.hasPureTensorSemantics())
      return rewriter.notifyMatchFailure(op, "not a tagged projection tile");
    Value x = op.getDpsInputs()[0], w = op.getDpsInputs()[1], y = op.getDpsInits()[0];
    auto yType = cast<RankedTensorType>(y.getType());
    int64_t rows = yType.getDimSize(1), cols = yType.getDimSize(2);
    if (yType.getDimSize(0) != 1 || ShapedType::isDynamic(rows) ||
        ShapedType::isDynamic(cols))
      return rewriter.notifyMatchFailure(op, "the tile's extents are not static");

    Location loc = op.getLoc();
    Type element = yType.getElementType();
    auto vectorType = VectorType::get({cols}, element);
    Value zero = arith::ConstantOp::create(rewriter, loc, element,
                                           rewriter.getFloatAttr(element, 0.0));
    Value c0 = arith::ConstantIndexOp::create(rewriter, loc, 0);
    Value c1 = arith::ConstantIndexOp::create(rewriter, loc, 1);
    SmallVector<Value> rowIndex, accumulators;
    for (int64_t r = 0; r < rows; ++r) {
      rowIndex.push_back(r == 0 ? c0 : arith::ConstantIndexOp::create(rewriter, loc, r));
      accumulators.push_back(vector::TransferReadOp::create(
          rewriter, loc, vectorType, y, ValueRange{c0, rowIndex[r], c0}, zero,
          ArrayRef<bool>{true}));
    }
    Value depth = tensor::DimOp::create(rewriter, loc, w, c0);
    auto loop = scf::ForOp::create(
        rewriter, loc, c0, depth, c1, accumulators,
        [&](OpBuilder &b, Location l, Value k, ValueRange acc) {
          Value weightRow = vector::TransferReadOp::create(
              b, l, vectorType, w, ValueRange{k, c0}, zero, ArrayRef<bool>{true});
          SmallVector<Value> next;
          for (int64_t r = 0; r < rows; ++r) {
            Value input = tensor::ExtractOp::create(b, l, x, ValueRange{c0, rowIndex[r], k});
            Value splat = vector::BroadcastOp::create(b, l, vectorType, input);
            next.push_back(vector::FMAOp::create(b, l, splat, weightRow, acc[r]));
          }
          scf::YieldOp::create(b, l, next);
        });
    Value result = y;
    for (int64_t r = 0; r < rows; ++r)
      result = vector::TransferWriteOp::create(rewriter, loc, loop.getResult(r), result,
                                               ValueRange{c0, rowIndex[r], c0},
                                               ArrayRef<bool>{true})
                   .getResult();
    rewriter.replaceOp(op, result);
    return success();
  }
};

struct FalconCPUProjectionMicrokernelsPass
    : public mlir::falcon::impl::FalconCPUProjectionMicrokernelsBase<
          FalconCPUProjectionMicrokernelsPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<ProjectionTileToMicrokernel>(&getContext());
    walkAndApplyPatterns(getOperation(), std::move(patterns));
  }
};
} // namespace
