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
    // Row b's cached tokens: past_lens[b]. The blocks of keys run up to the
    // longest row's; the mask hides from each row what lies past its own.
    Value pastLens = op.getPastLens();
    Value batchValue = getValueOrCreateConstantIndexOp(rewriter, loc, batch);
    auto pastOf = [&](OpBuilder &b, Location l, Value row) -> Value {
      Value past = tensor::ExtractOp::create(b, l, pastLens, ValueRange{row});
      return arith::IndexCastOp::create(b, l, b.getIndexType(), past);
    };
    auto longestLoop = scf::ForOp::create(
        rewriter, loc, lb.index(0), batchValue, lb.index(1), ValueRange{lb.index(0)},
        [&](OpBuilder &b, Location l, Value row, ValueRange longest) {
          scf::YieldOp::create(
              b, l, ValueRange{arith::MaxSIOp::create(b, l, longest[0], pastOf(b, l, row))});
        });
    Value pastLen = longestLoop.getResult(0);
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
    // Write the new keys/values ([B, S, K, d] -> [B, K, S, d]) into the caches,
    // row b's at rows past_lens[b] .. past_lens[b] + S - 1.
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
      SmallVector<OpFoldResult> rowSizes = {attr(1), attr(numKV), seq, attr(headDim)};
      auto rows = scf::ForOp::create(
          rewriter, loc, lb.index(0), batchValue, lb.index(1), ValueRange{cache},
          [&](OpBuilder &b, Location l, Value row, ValueRange updated) {
            Value rowBlock = tensor::ExtractSliceOp::create(
                b, l, transposed, ArrayRef<OpFoldResult>{row, attr(0), attr(0), attr(0)},
                rowSizes, unitStrides);
            Value inserted = tensor::InsertSliceOp::create(
                b, l, rowBlock, updated[0],
                ArrayRef<OpFoldResult>{row, attr(0), pastOf(b, l, row), attr(0)}, rowSizes,
                unitStrides);
            scf::YieldOp::create(b, l, ValueRange{inserted});
          });
      return rows.getResult(0);
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

    // Blocks of query rows x keys: the scores of one block at a time, with
    // a running maximum, denominator and weighted sum of values per row
    // (online softmax), so that the attention's memory is bounded by the
    // block, not by the prompt squared. A block of rows visits only the keys
    // its last row may see (the causal mask skips the rest).
    auto lowering = op->getAttrOfType<LoweringConfigAttr>(FalconDialect::kLoweringConfigAttrName);
    int64_t blockRows = kCPUAttentionBlockRows, blockKeys = kCPUAttentionBlockKeys;
    if (lowering && !lowering.getAttentionBlock().empty()) {
      blockRows = lowering.getAttentionBlock()[0];
      blockKeys = lowering.getAttentionBlock()[1];
    }
    // Every generic whose loops are (b, g, j, i, ...) over a whole block
    // takes the strategy's thread split (thread_dim g, or j for a single KV
    // group); the per-row statistics are too small to be worth a parallel
    // region.
    LoweringConfigAttr config;
    if (lowering)
      config = LoweringConfigAttr::get(context, lowering.getThreads(), lowering.getThreadDim(),
                                       /*registerTile=*/{}, /*attentionBlock=*/{},
                                       /*decodeActivationBits=*/0,
                                       /*bf16DotProducts=*/false);
    auto configure = [&](Value generic) {
      if (config)
        generic.getDefiningOp()->setAttr(FalconDialect::kLoweringConfigAttrName, config);
      return generic;
    };
    Value groupedBias;
    if (Value bias = op.getBias()) {
      auto biasType = cast<RankedTensorType>(bias.getType());
      groupedBias = tensor::ExpandShapeOp::create(
          rewriter, loc,
          RankedTensorType::get({numKV, perGroup, biasType.getShape()[1]},
                                biasType.getElementType()),
          bias, ArrayRef<ReassociationIndices>{{0, 1}, {2}},
          ArrayRef<OpFoldResult>{attr(numKV), attr(perGroup),
                                 tensor::getMixedSize(rewriter, loc, bias, 1)});
    }
    double scale = 1.0 / std::sqrt(double(headDim));
    Type acc = op.getAccumulateElementType();
    SmallVector<OpFoldResult> contextShape = {batch, seq, attr(numKV), attr(perGroup),
                                              attr(headDim)};
    auto contextType = cast<RankedTensorType>(lb.empty(contextShape, f).getType());
    auto slice = [&](Value source, ArrayRef<OpFoldResult> offsets,
                     ArrayRef<OpFoldResult> sizes) -> Value {
      SmallVector<OpFoldResult> strides(offsets.size(), attr(1));
      return tensor::ExtractSliceOp::create(rewriter, loc, source, offsets, sizes, strides);
    };
    // (b, g, j, i, t) over a block, (b, g, j, i) over its rows, and the
    // context block [B, rows, K, r, d] seen from loops (b, g, j, i, e).
    AffineMap all = dimsMap(context, 5, {0, 1, 2, 3, 4});
    AffineMap row = dimsMap(context, 5, {0, 1, 2, 3});
    AffineMap rowOnly = dimsMap(context, 4, {0, 1, 2, 3});
    AffineMap contextMap = dimsMap(context, 5, {0, 3, 1, 2, 4});
    SmallVector<IteratorType> fiveParallel(5, kParallel), fourParallel(4, kParallel);
    SmallVector<IteratorType> rowReduction = {kParallel, kParallel, kParallel, kParallel,
                                              kReduction};
    Value negInf = lb.constantFloat(f, -std::numeric_limits<double>::infinity());

    // The context of every query row; `keyOperand` is the visible keys as
    // [B, K, T, d], or transposed to [B, K, d, T].
    auto attend = [&](Value keyOperand, bool keysTransposed) -> Value {
      Value rowStep = lb.index(blockRows), keyStep = lb.index(blockKeys);
      Value contextInit = lb.empty(contextShape, f);
      auto rowLoop = scf::ForOp::create(rewriter, loc, lb.index(0), seqValue, rowStep,
                                        ValueRange{contextInit});
      OpBuilder::InsertionGuard rowGuard(rewriter);
      rewriter.setInsertionPointToStart(rowLoop.getBody());
      Value firstRow = rowLoop.getInductionVar();
      Value rows = arith::MinSIOp::create(
          rewriter, loc, rowStep, arith::SubIOp::create(rewriter, loc, seqValue, firstRow));
      Value queryBlock = slice(query, {attr(0), firstRow, attr(0), attr(0), attr(0)},
                               {batch, rows, attr(numKV), attr(perGroup), attr(headDim)});
      // The last row of the block sees keys 0 .. past_len + firstRow + rows - 1
      // (past_len: the longest row's).
      Value keysSeen = arith::AddIOp::create(
          rewriter, loc, pastLen, arith::AddIOp::create(rewriter, loc, firstRow, rows));
      SmallVector<OpFoldResult> rowShape = {batch, attr(numKV), attr(perGroup), rows};
      SmallVector<OpFoldResult> blockContextShape = {batch, rows, attr(numKV),
                                                     attr(perGroup), attr(headDim)};
      Value maxInit =
          lb.filled(rowShape, f, -std::numeric_limits<double>::infinity());
      Value sumInit = lb.filled(rowShape, acc, 0.0);
      Value weightedInit = lb.filled(blockContextShape, f, 0.0);
      auto keyLoop = scf::ForOp::create(rewriter, loc, lb.index(0), keysSeen, keyStep,
                                        ValueRange{maxInit, sumInit, weightedInit});
      {
        OpBuilder::InsertionGuard keyGuard(rewriter);
        rewriter.setInsertionPointToStart(keyLoop.getBody());
        Value firstKey = keyLoop.getInductionVar();
        Value runningMax = keyLoop.getRegionIterArg(0);
        Value runningSum = keyLoop.getRegionIterArg(1);
        Value weighted = keyLoop.getRegionIterArg(2);
        Value keys = arith::MinSIOp::create(
            rewriter, loc, keyStep, arith::SubIOp::create(rewriter, loc, keysSeen, firstKey));
        Value keyBlock =
            keysTransposed
                ? slice(keyOperand, {attr(0), attr(0), attr(0), firstKey},
                        {batch, attr(numKV), attr(headDim), keys})
                : slice(keyOperand, {attr(0), attr(0), firstKey, attr(0)},
                        {batch, attr(numKV), keys, attr(headDim)});
        Value valueBlock = slice(values, {attr(0), attr(0), firstKey, attr(0)},
                                 {batch, attr(numKV), keys, attr(headDim)});
        SmallVector<OpFoldResult> blockShape = {batch, attr(numKV), attr(perGroup), rows,
                                                keys};

        // dots[b, g, j, i, t] = q[b, i, g, j, :] . k[b, g, t, :]; loops
        // (b, g, j, i, e, t): the keys innermost, so that the dot products
        // of one query row accumulate side by side (each still sums over e
        // in order) instead of as one serial chain of adds per score.
        Value dots = configure(lb.generic(
            {queryBlock, keyBlock}, lb.filled(blockShape, f, 0.0),
            {dimsMap(context, 6, {0, 3, 1, 2, 4}),
             keysTransposed ? dimsMap(context, 6, {0, 1, 4, 5})
                            : dimsMap(context, 6, {0, 1, 5, 4}),
             dimsMap(context, 6, {0, 1, 2, 3, 5})},
            {kParallel, kParallel, kParallel, kParallel, kReduction, kParallel},
            multiplyCachedAccumulate));

        // (dot + bias) / sqrt(d), then the causal mask: key firstKey + t is
        // visible to query firstRow + i of row b when firstKey + t <=
        // past_lens[b] + firstRow + i.
        SmallVector<Value> scoreInputs = {dots};
        SmallVector<AffineMap> scoreMaps = {all};
        if (groupedBias) {
          scoreInputs.push_back(slice(groupedBias, {attr(0), attr(0), firstKey},
                                      {attr(numKV), attr(perGroup), keys}));
          scoreMaps.push_back(dimsMap(context, 5, {1, 2, 4}));
        }
        scoreInputs.push_back(pastLens);
        scoreMaps.push_back(dimsMap(context, 5, {0}));
        scoreMaps.push_back(all);
        Value scores = configure(lb.generic(
            scoreInputs, lb.empty(blockShape, f), scoreMaps, fiveParallel,
            [&](OpBuilder &b, Location l, ValueRange args) -> Value {
              LinalgBuilder inner(b, l);
              Value score = args[0];
              if (groupedBias)
                score = arith::AddFOp::create(b, l, score, inner.castFloat(args[1], f));
              score = arith::MulFOp::create(b, l, score, inner.constantFloat(f, scale));
              Value key = arith::AddIOp::create(b, l, firstKey, linalg::IndexOp::create(b, l, 4));
              Value rowPast =
                  arith::IndexCastOp::create(b, l, b.getIndexType(), args[groupedBias ? 2 : 1]);
              Value limit = arith::AddIOp::create(
                  b, l, rowPast,
                  arith::AddIOp::create(b, l, firstRow, linalg::IndexOp::create(b, l, 3)));
              Value masked = arith::CmpIOp::create(b, l, arith::CmpIPredicate::ugt, key, limit);
              return arith::SelectOp::create(b, l, masked, negInf, score);
            }));

        // The new running maximum, and the factor exp(old - new) that
        // rescales what was summed against the old one. Key 0 is visible to
        // every row, so after the first block the maximum is finite and a
        // fully masked later block adds exp(-inf) = 0.
        Value newMax = lb.generic({scores}, runningMax, {all, row}, rowReduction,
                                  [&](OpBuilder &b, Location l, ValueRange args) -> Value {
                                    return arith::MaximumFOp::create(b, l, args[0], args[1]);
                                  });
        Value rescale = lb.generic(
            {runningMax, newMax}, lb.empty(rowShape, f), {rowOnly, rowOnly, rowOnly},
            fourParallel, [&](OpBuilder &b, Location l, ValueRange args) -> Value {
              return math::ExpOp::create(b, l, arith::SubFOp::create(b, l, args[0], args[1]));
            });
        Value probabilities = configure(lb.generic(
            {scores, newMax}, lb.empty(blockShape, f), {all, row, all}, fiveParallel,
            [&](OpBuilder &b, Location l, ValueRange args) -> Value {
              return math::ExpOp::create(b, l, arith::SubFOp::create(b, l, args[0], args[1]));
            }));
        // The denominators accumulate in the op's accumulate type (f32
        // whatever the activations: the precision interface).
        Value rescaledSum = lb.generic(
            {rescale}, runningSum, {rowOnly, rowOnly}, fourParallel,
            [&](OpBuilder &b, Location l, ValueRange args) -> Value {
              return arith::MulFOp::create(b, l, args[1],
                                           LinalgBuilder(b, l).castFloat(args[0], acc));
            });
        Value newSum = lb.generic(
            {probabilities}, rescaledSum, {all, row}, rowReduction,
            [&](OpBuilder &b, Location l, ValueRange args) -> Value {
              return arith::AddFOp::create(b, l, args[1],
                                           LinalgBuilder(b, l).castFloat(args[0], acc));
            });
        // weighted[b, i, g, j, e] = rescale * weighted + sum_t p[b, g, j, i, t]
        // v[b, g, t, e]; loops (b, g, j, i, t, e): a contiguous row of v per
        // key, added into the context row (vectorizes; each element still
        // sums over t in order).
        Value rescaledWeighted = configure(lb.generic(
            {rescale}, weighted, {row, contextMap}, fiveParallel,
            [&](OpBuilder &b, Location l, ValueRange args) -> Value {
              return arith::MulFOp::create(b, l, args[1], args[0]);
            }));
        Value newWeighted = configure(lb.generic(
            {probabilities, valueBlock}, rescaledWeighted,
            {dimsMap(context, 6, {0, 1, 2, 3, 4}), dimsMap(context, 6, {0, 1, 4, 5}),
             dimsMap(context, 6, {0, 3, 1, 2, 5})},
            {kParallel, kParallel, kParallel, kParallel, kReduction, kParallel},
            multiplyCachedAccumulate));
        scf::YieldOp::create(rewriter, loc, ValueRange{newMax, newSum, newWeighted});
      }
      // context = weighted / denominator, into the block's rows.
      Value blockContext = configure(lb.generic(
          {keyLoop.getResult(2), keyLoop.getResult(1)}, lb.empty(blockContextShape, f),
          {contextMap, row, contextMap}, fiveParallel,
          [&](OpBuilder &b, Location l, ValueRange args) -> Value {
            LinalgBuilder inner(b, l);
            Value quotient = arith::DivFOp::create(b, l, inner.castFloat(args[0], acc), args[1]);
            return inner.castFloat(quotient, f);
          }));
      Value updated = tensor::InsertSliceOp::create(
          rewriter, loc, blockContext, rowLoop.getRegionIterArg(0),
          ArrayRef<OpFoldResult>{attr(0), firstRow, attr(0), attr(0), attr(0)},
          blockContextShape, SmallVector<OpFoldResult>(5, attr(1)));
      scf::YieldOp::create(rewriter, loc, updated);
      return rowLoop.getResult(0);
    };

    // With many query rows (prefill) the keys are first transposed to
    // [B, K, d, T], so that the dot products read them contiguously; a few
    // rows (decode) would spend more on that copy than they save and read
    // the cache as it is (gathers).
    Value manyRows = arith::CmpIOp::create(rewriter, loc, arith::CmpIPredicate::sge, seqValue,
                                           lb.index(kTransposedKeysMinRows));
    auto attendIf = scf::IfOp::create(rewriter, loc, TypeRange{contextType}, manyRows,
                                      /*withElseRegion=*/true);
    {
      OpBuilder::InsertionGuard guard(rewriter);
      rewriter.setInsertionPointToStart(attendIf.thenBlock());
      Value keysT = linalg::TransposeOp::create(
                        rewriter, loc, keys,
                        lb.empty({batch, attr(numKV), attr(headDim), numKeys}, cacheElement),
                        ArrayRef<int64_t>{0, 1, 3, 2})
                        .getResult()[0];
      scf::YieldOp::create(rewriter, loc, attend(keysT, /*keysTransposed=*/true));
      rewriter.setInsertionPointToStart(attendIf.elseBlock());
      scf::YieldOp::create(rewriter, loc, attend(keys, /*keysTransposed=*/false));
    }
    Value contextHeads = attendIf.getResult(0);
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
