//===- CPUDecomposeAttention.cpp - falcon.attention as CPU loops ----------===//
//
// The CPU's decomposition of falcon.attention: loop orders that put a
// parallel dimension innermost (the keys for the dot products, the head
// features for the weighted sum of values), so that neighbouring outputs
// proceed side by side and vectorize while each still sums its terms in
// order, and the keys transposed first when a prompt has many rows.
//
//===----------------------------------------------------------------------===//

#include "falcon/Codegen/CPU/Passes.h"
#include "falcon/Conversion/LinalgBuilder.h"

#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Tensor/Utils/Utils.h"
#include "mlir/Transforms/WalkPatternRewriteDriver.h"

#include <cmath>
#include <limits>

#define DEBUG_TYPE "falcon-cpu-decompose-attention"

namespace mlir::falcon {
#define GEN_PASS_DEF_FALCONCPUDECOMPOSEATTENTION
#include "falcon/Codegen/CPU/Passes.h.inc"
} // namespace mlir::falcon

using namespace mlir;
using namespace mlir::falcon;

namespace {

using utils::IteratorType;

/// Causal grouped-query attention over the KV cache.
/// The fewest query rows for which the attention transposes the cached keys
/// first (see AttentionLowering).
constexpr int64_t kTransposedKeysMinRows = 8;

struct AttentionLowering : OpRewritePattern<AttentionOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(AttentionOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    LinalgBuilder lb(rewriter, loc);
    MLIRContext *context = getContext();
    auto queryType = cast<RankedTensorType>(op.getQuery().getType());
    auto cacheType = cast<RankedTensorType>(op.getKeyCache().getType());
    Type f = queryType.getElementType();
    int64_t numHeads = queryType.getShape()[2];
    int64_t headDim = queryType.getShape()[3];
    int64_t numKV = cast<RankedTensorType>(op.getKey().getType()).getShape()[2];
    int64_t perGroup = numHeads / numKV;
    auto attr = [&](int64_t value) -> OpFoldResult {
      return rewriter.getIndexAttr(value);
    };
    OpFoldResult batch = tensor::getMixedSize(rewriter, loc, op.getQuery(), 0);
    OpFoldResult seq = tensor::getMixedSize(rewriter, loc, op.getQuery(), 1);
    Value seqValue = getValueOrCreateConstantIndexOp(rewriter, loc, seq);
    Value pastLen = op.getPastLen();
    Value numKeys = arith::AddIOp::create(rewriter, loc, pastLen, seqValue);
    SmallVector<OpFoldResult> unitStrides(4, attr(1));

    // The cache may be stored narrower than the activations (bf16/f16):
    // new rows are rounded once when written, and every read extends them
    // back (the precision interface's "accumulate in f32" stays true: the
    // dot products and the weighted sum run in f).
    Type cacheElement = cacheType.getElementType();
    // acc + a * extend(cached): the dot products and the weighted sum of
    // values read the cache in its own type.
    auto multiplyCachedAccumulate = [&](OpBuilder &b, Location l, ValueRange args) -> Value {
      Value cached = LinalgBuilder(b, l).castFloat(args[1], f);
      return multiplyAccumulate(b, l, {args[0], cached, args[2]});
    };
    // Write the new keys/values ([B, S, K, d] -> [B, K, S, d]) into the caches
    // at rows past_len .. past_len + S - 1.
    auto append = [&](Value heads, Value cache) -> Value {
      Value init = lb.empty({batch, attr(numKV), seq, attr(headDim)}, f);
      Value transposed =
          linalg::TransposeOp::create(rewriter, loc, heads, init,
                                      ArrayRef<int64_t>{0, 2, 1, 3})
              .getResult()[0];
      if (cacheElement != f)
        transposed = lb.elementwise(
            transposed, RankedTensorType::get({}, cacheElement),
            [&](OpBuilder &b, Location l, ValueRange args) -> Value {
              return LinalgBuilder(b, l).castFloat(args[0], cacheElement);
            });
      return tensor::InsertSliceOp::create(
          rewriter, loc, transposed, cache,
          ArrayRef<OpFoldResult>{attr(0), attr(0), pastLen, attr(0)},
          ArrayRef<OpFoldResult>{batch, attr(numKV), seq, attr(headDim)}, unitStrides);
    };
    Value keyCache = append(op.getKey(), op.getKeyCache());
    Value valueCache = append(op.getValue(), op.getValueCache());
    auto visible = [&](Value cache) -> Value {
      auto type = RankedTensorType::get(
          {cacheType.getShape()[0], numKV, ShapedType::kDynamic, headDim}, cacheElement);
      return tensor::ExtractSliceOp::create(
          rewriter, loc, type, cache,
          ArrayRef<OpFoldResult>{attr(0), attr(0), attr(0), attr(0)},
          ArrayRef<OpFoldResult>{batch, attr(numKV), numKeys, attr(headDim)},
          unitStrides);
    };
    Value keys = visible(keyCache), values = visible(valueCache);

    // Queries as [B, S, K, r, d]: head h = g * r + j reads KV head g.
    auto groupedType = RankedTensorType::get(
        {queryType.getShape()[0], queryType.getShape()[1], numKV, perGroup, headDim}, f);
    Value query = tensor::ExpandShapeOp::create(
        rewriter, loc, groupedType, op.getQuery(),
        ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3}, {4}},
        ArrayRef<OpFoldResult>{batch, seq, attr(numKV), attr(perGroup), attr(headDim)});

    // scores[b, g, j, i, t] = q[b, i, g, j, :] . k[b, g, t, :]; loops
    // (b, g, j, i, e, t): the keys innermost, so that the dot products of one
    // query row accumulate side by side (each still sums over e in order)
    // instead of as one serial chain of adds per score. With many query rows
    // (prefill) the keys are first transposed to [B, K, d, T], so that those
    // loops read them contiguously; a few rows (decode) would spend more on
    // that copy than they save and read the cache as it is (gathers).
    // Every generic below has loops (b, g, j, i, ...), so the strategy's
    // thread_dim (g, or j for a single KV group) applies to each of them.
    Attribute config = op->getAttr(FalconDialect::kLoweringConfigAttrName);
    auto configure = [&](Value generic) {
      if (config)
        generic.getDefiningOp()->setAttr(FalconDialect::kLoweringConfigAttrName, config);
    };
    SmallVector<OpFoldResult> scoreShape = {batch, attr(numKV), attr(perGroup), seq,
                                            numKeys};
    Value dotsInit = lb.filled(scoreShape, f, 0.0);
    auto dotProducts = [&](Value keyOperand, AffineMap keyMap) {
      Value dots = lb.generic(
          {query, keyOperand}, dotsInit,
          {dimsMap(context, 6, {0, 3, 1, 2, 4}), keyMap, dimsMap(context, 6, {0, 1, 2, 3, 5})},
          {kParallel, kParallel, kParallel, kParallel, kReduction, kParallel},
          multiplyCachedAccumulate);
      configure(dots);
      scf::YieldOp::create(rewriter, loc, dots);
    };
    Value manyRows = arith::CmpIOp::create(rewriter, loc, arith::CmpIPredicate::sge, seqValue,
                                           lb.index(kTransposedKeysMinRows));
    auto dotsIf = scf::IfOp::create(rewriter, loc, TypeRange{dotsInit.getType()}, manyRows,
                                    /*withElseRegion=*/true);
    {
      OpBuilder::InsertionGuard guard(rewriter);
      rewriter.setInsertionPointToStart(dotsIf.thenBlock());
      Value keysT = linalg::TransposeOp::create(
                        rewriter, loc, keys,
                        lb.empty({batch, attr(numKV), attr(headDim), numKeys}, cacheElement),
                        ArrayRef<int64_t>{0, 1, 3, 2})
                        .getResult()[0];
      dotProducts(keysT, dimsMap(context, 6, {0, 1, 4, 5}));
      rewriter.setInsertionPointToStart(dotsIf.elseBlock());
      dotProducts(keys, dimsMap(context, 6, {0, 1, 5, 4}));
    }
    Value dots = dotsIf.getResult(0);

    // (dot + bias) / sqrt(d), then the causal mask: key t is visible to query
    // i when t <= past_len + i.
    double scale = 1.0 / std::sqrt(double(headDim));
    SmallVector<Value> scoreInputs = {dots};
    SmallVector<AffineMap> scoreMaps = {dimsMap(context, 5, {0, 1, 2, 3, 4})};
    if (Value bias = op.getBias()) {
      auto biasType = cast<RankedTensorType>(bias.getType());
      Value groupedBias = tensor::ExpandShapeOp::create(
          rewriter, loc,
          RankedTensorType::get({numKV, perGroup, biasType.getShape()[1]},
                                biasType.getElementType()),
          bias, ArrayRef<ReassociationIndices>{{0, 1}, {2}},
          ArrayRef<OpFoldResult>{attr(numKV), attr(perGroup),
                                 tensor::getMixedSize(rewriter, loc, bias, 1)});
      scoreInputs.push_back(groupedBias);
      scoreMaps.push_back(dimsMap(context, 5, {1, 2, 4}));
    }
    scoreMaps.push_back(dimsMap(context, 5, {0, 1, 2, 3, 4}));
    bool hasBias = scoreInputs.size() == 2;
    SmallVector<IteratorType> fiveParallel(5, kParallel);
    Value negInf = lb.constantFloat(f, -std::numeric_limits<double>::infinity());
    Value scores = lb.generic(
        scoreInputs, lb.empty(scoreShape, f), scoreMaps, fiveParallel,
        [&](OpBuilder &b, Location l, ValueRange args) -> Value {
          LinalgBuilder inner(b, l);
          Value score = args[0];
          if (hasBias)
            score = arith::AddFOp::create(b, l, score, inner.castFloat(args[1], f));
          score = arith::MulFOp::create(b, l, score, inner.constantFloat(f, scale));
          Value i = linalg::IndexOp::create(b, l, 3);
          Value t = linalg::IndexOp::create(b, l, 4);
          Value limit = arith::AddIOp::create(b, l, pastLen, i);
          Value masked = arith::CmpIOp::create(b, l, arith::CmpIPredicate::ugt, t, limit);
          return arith::SelectOp::create(b, l, masked, negInf, score);
        });

    // Softmax over t.
    SmallVector<OpFoldResult> rowShape(scoreShape.begin(), scoreShape.end() - 1);
    AffineMap all = dimsMap(context, 5, {0, 1, 2, 3, 4});
    AffineMap row = dimsMap(context, 5, {0, 1, 2, 3});
    SmallVector<IteratorType> rowReduction = {kParallel, kParallel, kParallel,
                                              kParallel, kReduction};
    Value rowMax = lb.generic(
        {scores}, lb.filled(rowShape, f, -std::numeric_limits<double>::infinity()),
        {all, row}, rowReduction,
        [&](OpBuilder &b, Location l, ValueRange args) -> Value {
          return arith::MaximumFOp::create(b, l, args[0], args[1]);
        });
    // The softmax denominators accumulate in the op's accumulate type (f32
    // whatever the activations: the precision interface).
    Type acc = op.getAccumulateElementType();
    Value rowSum = lb.generic(
        {scores, rowMax}, lb.filled(rowShape, acc, 0.0), {all, row, row}, rowReduction,
        [&](OpBuilder &b, Location l, ValueRange args) -> Value {
          Value e = math::ExpOp::create(b, l, arith::SubFOp::create(b, l, args[0], args[1]));
          return arith::AddFOp::create(b, l, args[2], LinalgBuilder(b, l).castFloat(e, acc));
        });
    Value probabilities = lb.generic(
        {scores, rowMax, rowSum}, lb.empty(scoreShape, f), {all, row, row, all},
        fiveParallel, [&](OpBuilder &b, Location l, ValueRange args) -> Value {
          LinalgBuilder inner(b, l);
          Value e = math::ExpOp::create(b, l, arith::SubFOp::create(b, l, args[0], args[1]));
          Value p = arith::DivFOp::create(b, l, inner.castFloat(e, acc), args[2]);
          return inner.castFloat(p, f);
        });

    // context[b, i, g, j, e] = sum_t p[b, g, j, i, t] v[b, g, t, e];
    // loops (b, g, j, i, t, e): a contiguous row of v per key, added into the
    // context row (vectorizes; each element still sums over t in order).
    Value contextInit = lb.filled({batch, seq, attr(numKV), attr(perGroup), attr(headDim)},
                                  f, 0.0);
    Value contextHeads = lb.generic(
        {probabilities, values}, contextInit,
        {dimsMap(context, 6, {0, 1, 2, 3, 4}), dimsMap(context, 6, {0, 1, 4, 5}),
         dimsMap(context, 6, {0, 3, 1, 2, 5})},
        {kParallel, kParallel, kParallel, kParallel, kReduction, kParallel},
        multiplyCachedAccumulate);
    for (Value generic : {scores, rowMax, rowSum, probabilities, contextHeads})
      configure(generic);
    // Heads concatenated head-major: column h * d + e.
    Value merged = tensor::CollapseShapeOp::create(
        rewriter, loc, op.getResult().getType(), contextHeads,
        ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3, 4}});
    rewriter.replaceOp(op, {merged, keyCache, valueCache});
    return success();
  }
};

struct FalconCPUDecomposeAttentionPass
    : public mlir::falcon::impl::FalconCPUDecomposeAttentionBase<
          FalconCPUDecomposeAttentionPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<AttentionLowering>(&getContext());
    walkAndApplyPatterns(getOperation(), std::move(patterns));
  }
};

} // namespace
