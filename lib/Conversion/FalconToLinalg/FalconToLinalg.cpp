//===- FalconToLinalg.cpp - falcon compute ops to linalg ------------------===//
//
// Every falcon compute op becomes linalg.generic ops on tensors plus tensor
// reshapes and slices. Computation is in the activation element type (f32);
// weights stored narrower (bf16/f16) are extended inside the loop bodies, so
// the packed weights keep their storage size.
//
//===----------------------------------------------------------------------===//

#include "falcon/Conversion/Passes.h"
#include "falcon/Conversion/LinalgBuilder.h"
#include "Falcon/IR/FalconOps.h"

#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "mlir/Dialect/Tensor/Utils/Utils.h"
#include "mlir/IR/AffineMap.h"
#include "mlir/Transforms/DialectConversion.h"
#include "llvm/ADT/APFloat.h"

#include <cmath>

#define DEBUG_TYPE "convert-falcon-to-linalg"

namespace mlir::falcon {
#define GEN_PASS_DEF_CONVERTFALCONTOLINALG
#include "falcon/Conversion/Passes.h.inc"
} // namespace mlir::falcon

using namespace mlir;
using namespace mlir::falcon;

namespace {

using utils::IteratorType;

//===----------------------------------------------------------------------===//
// Helpers shared by the patterns
//===----------------------------------------------------------------------===//

/// `value + bias` for value [B, S, n] and bias [n] (possibly narrower).
Value addBias(LinalgBuilder &lb, Value value, Value bias) {
  MLIRContext *context = lb.b.getContext();
  Type f = cast<RankedTensorType>(value.getType()).getElementType();
  Value init = lb.empty(tensor::getMixedSizes(lb.b, lb.loc, value), f);
  return lb.generic(
      {value, bias}, init,
      {dimsMap(context, 3, {0, 1, 2}), dimsMap(context, 3, {2}),
       dimsMap(context, 3, {0, 1, 2})},
      {kParallel, kParallel, kParallel},
      [&](OpBuilder &b, Location loc, ValueRange args) -> Value {
        LinalgBuilder inner(b, loc);
        return arith::AddFOp::create(b, loc, args[0], inner.castFloat(args[1], f));
      });
}

/// `x @ weight^T (+ bias)` for x [B, S, in] and weight [out, in]: a
/// contraction over `in`, then the bias added separately as FalconLinear does.
Value buildProjection(LinalgBuilder &lb, Value input, Value weight, Value bias,
                      RankedTensorType resultType) {
  MLIRContext *context = lb.b.getContext();
  Type f = resultType.getElementType();
  SmallVector<OpFoldResult> shape = tensor::getMixedSizes(lb.b, lb.loc, input);
  shape.back() = lb.b.getIndexAttr(resultType.getShape().back());
  Value init = lb.filled(shape, f, 0.0);
  auto body = [&](OpBuilder &b, Location loc, ValueRange args) -> Value {
    LinalgBuilder inner(b, loc);
    Value w = inner.castFloat(args[1], f);
    Value mul = arith::MulFOp::create(b, loc, args[0], w);
    return arith::AddFOp::create(b, loc, args[2], mul);
  };
  // Loops (b, s, n, k), a dot product per output: a plain contraction
  // (linalg::inferContractionDims) that isProjection recognises. A target
  // may re-lay it out (the CPU's falcon-cpu-weight-layout reads [in, out]
  // weights with loops (b, k, s, n)).
  Value product = lb.generic({input, weight}, init,
                             getProjectionIndexingMaps(context, /*weightInOut=*/false),
                             getProjectionIteratorTypes(/*weightInOut=*/false), body);
  return bias ? addBias(lb, product, bias) : product;
}

/// A float value rounded to bfloat16 and back, as torch's bf16 ops round.
Value roundToBF16(OpBuilder &b, Location loc, Value value) {
  Value rounded = arith::TruncFOp::create(b, loc, b.getBF16Type(), value);
  return arith::ExtFOp::create(b, loc, value.getType(), rounded);
}

//===----------------------------------------------------------------------===//
// Patterns
//===----------------------------------------------------------------------===//

struct EmbeddingLowering : OpRewritePattern<EmbeddingOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(EmbeddingOp op,
                                PatternRewriter &rewriter) const override {
    LinalgBuilder lb(rewriter, op.getLoc());
    auto resultType = cast<RankedTensorType>(op.getType());
    SmallVector<OpFoldResult> shape =
        tensor::getMixedSizes(rewriter, op.getLoc(), op.getIds());
    shape.push_back(rewriter.getIndexAttr(resultType.getShape().back()));
    Value init = lb.empty(shape, resultType.getElementType());
    Value table = op.getTable();
    auto model = op->getParentOfType<ModuleOp>()->getAttrOfType<ModelConfigAttr>(
        FalconDialect::kModelConfigAttrName);
    int64_t tableRows = cast<RankedTensorType>(table.getType()).getDimSize(0);
    // Without the model config (a lone op in a test), the table is whole.
    bool vocabSliced = model && tableRows != model.getVocabSize();
    Value result = lb.generic(
        {op.getIds()}, init,
        {dimsMap(getContext(), 3, {0, 1}), dimsMap(getContext(), 3, {0, 1, 2})},
        {kParallel, kParallel, kParallel},
        [&](OpBuilder &b, Location loc, ValueRange args) -> Value {
          LinalgBuilder inner(b, loc);
          Value id = arith::IndexCastOp::create(b, loc, b.getIndexType(), args[0]);
          Value column = linalg::IndexOp::create(b, loc, 2);
          int64_t offset = op.getVocabOffset();
          if (offset == 0 && !vocabSliced)
            return inner.castFloat(
                tensor::ExtractOp::create(b, loc, table, ValueRange{id, column}),
                resultType.getElementType());
          // A vocab-parallel rank's rows: ids outside them read 0 (the
          // owner's row arrives through the all-reduce).
          Value row = arith::SubIOp::create(b, loc, id, inner.index(offset));
          Value rows = inner.index(tableRows);
          Value inRange = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, row, rows);
          // Branch-free: a clamped row is read, its value kept only in range.
          Type f = resultType.getElementType();
          Value safeRow = arith::SelectOp::create(b, loc, inRange, row, inner.index(0));
          Value value = inner.castFloat(
              tensor::ExtractOp::create(b, loc, table, ValueRange{safeRow, column}), f);
          return arith::SelectOp::create(b, loc, inRange, value, inner.constantFloat(f, 0.0));
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

struct GatherPositionsLowering : OpRewritePattern<GatherPositionsOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(GatherPositionsOp op,
                                PatternRewriter &rewriter) const override {
    LinalgBuilder lb(rewriter, op.getLoc());
    auto resultType = cast<RankedTensorType>(op.getType());
    Value input = op.getInput();
    SmallVector<OpFoldResult> shape =
        tensor::getMixedSizes(rewriter, op.getLoc(), op.getPositions());
    shape.push_back(rewriter.getIndexAttr(resultType.getShape().back()));
    Value init = lb.empty(shape, resultType.getElementType());
    Value length = tensor::DimOp::create(rewriter, op.getLoc(), input, 1);
    Value last = arith::SubIOp::create(rewriter, op.getLoc(), length, lb.index(1));
    Value result = lb.generic(
        {op.getPositions()}, init,
        {dimsMap(getContext(), 3, {0, 1}), dimsMap(getContext(), 3, {0, 1, 2})},
        {kParallel, kParallel, kParallel},
        [&](OpBuilder &b, Location loc, ValueRange args) -> Value {
          Value position = arith::IndexCastOp::create(b, loc, b.getIndexType(), args[0]);
          Value inRange =
              arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, position, length);
          Value safe = arith::SelectOp::create(b, loc, inRange, position, last);
          Value row = linalg::IndexOp::create(b, loc, 0);
          Value column = linalg::IndexOp::create(b, loc, 2);
          return tensor::ExtractOp::create(b, loc, input, ValueRange{row, safe, column});
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

struct LayerNormLowering : OpRewritePattern<LayerNormOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LayerNormOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    LinalgBuilder lb(rewriter, loc);
    MLIRContext *context = getContext();
    Value x = op.getInput();
    auto type = cast<RankedTensorType>(x.getType());
    Type f = type.getElementType();
    // Statistics and the normalization run in the accumulate type (f32
    // whatever the activations), converted to f once at the end.
    Type acc = op.getAccumulateElementType();
    int64_t features = type.getShape().back();
    SmallVector<OpFoldResult> rowShape = tensor::getMixedSizes(rewriter, loc, x);
    rowShape.pop_back();
    AffineMap full = dimsMap(context, 3, {0, 1, 2});
    AffineMap row = dimsMap(context, 3, {0, 1});
    AffineMap feature = dimsMap(context, 3, {2});
    double inverseCount = 1.0 / double(features);

    Value sum = lb.generic({x}, lb.filled(rowShape, acc, 0.0), {full, row},
                           {kParallel, kParallel, kReduction},
                           [&](OpBuilder &b, Location l, ValueRange args) -> Value {
                             Value value = LinalgBuilder(b, l).castFloat(args[0], acc);
                             return arith::AddFOp::create(b, l, args[1], value);
                           });
    auto mean = [&](OpBuilder &b, Location l, Value rowSum) -> Value {
      LinalgBuilder inner(b, l);
      return arith::MulFOp::create(b, l, rowSum, inner.constantFloat(acc, inverseCount));
    };
    // Biased variance, as torch.nn.LayerNorm.
    Value squares = lb.generic(
        {x, sum}, lb.filled(rowShape, acc, 0.0), {full, row, row},
        {kParallel, kParallel, kReduction},
        [&](OpBuilder &b, Location l, ValueRange args) -> Value {
          Value value = LinalgBuilder(b, l).castFloat(args[0], acc);
          Value centered = arith::SubFOp::create(b, l, value, mean(b, l, args[1]));
          Value square = arith::MulFOp::create(b, l, centered, centered);
          return arith::AddFOp::create(b, l, args[2], square);
        });
    double epsilon = op.getEpsilon().convertToDouble();
    Value result = lb.generic(
        {x, sum, squares, op.getWeight(), op.getBias()},
        lb.empty(tensor::getMixedSizes(rewriter, loc, x), f),
        {full, row, row, feature, feature, full},
        {kParallel, kParallel, kParallel},
        [&](OpBuilder &b, Location l, ValueRange args) -> Value {
          LinalgBuilder inner(b, l);
          Value value = inner.castFloat(args[0], acc);
          Value centered = arith::SubFOp::create(b, l, value, mean(b, l, args[1]));
          Value variance = mean(b, l, args[2]);
          Value denominator = math::SqrtOp::create(
              b, l, arith::AddFOp::create(b, l, variance, inner.constantFloat(acc, epsilon)));
          Value normalized = arith::DivFOp::create(b, l, centered, denominator);
          Value scaled = arith::MulFOp::create(b, l, normalized, inner.castFloat(args[3], acc));
          return inner.castFloat(
              arith::AddFOp::create(b, l, scaled, inner.castFloat(args[4], acc)), f);
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

/// Linear layers and the LM head: one contraction (buildProjection).
struct ProjectionLowering : OpInterfaceRewritePattern<ProjectionOpInterface> {
  using OpInterfaceRewritePattern::OpInterfaceRewritePattern;
  LogicalResult matchAndRewrite(ProjectionOpInterface op,
                                PatternRewriter &rewriter) const override {
    LinalgBuilder lb(rewriter, op->getLoc());
    rewriter.replaceOp(op, buildProjection(lb, op.getInput(), op.getWeightMutable().get(),
                                           op.getProjectionBias(),
                                           cast<RankedTensorType>(op->getResult(0).getType())));
    return success();
  }
};

struct GeluLowering : OpRewritePattern<GeluOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(GeluOp op,
                                PatternRewriter &rewriter) const override {
    LinalgBuilder lb(rewriter, op.getLoc());
    Type f = elementTypeOf(op.getInput());
    // x * 0.5 * (1 + erf(x / sqrt(2))), in the order of HF's GELUActivation.
    Value result = lb.elementwise(
        {op.getInput()}, op.getType(),
        [&](OpBuilder &b, Location loc, ValueRange args) -> Value {
          LinalgBuilder inner(b, loc);
          Value x = args[0];
          Value scaled = arith::DivFOp::create(b, loc, x, inner.constantFloat(f, M_SQRT2));
          Value erf = math::ErfOp::create(b, loc, scaled);
          Value onePlus = arith::AddFOp::create(b, loc, inner.constantFloat(f, 1.0), erf);
          Value half = arith::MulFOp::create(b, loc, x, inner.constantFloat(f, 0.5));
          return arith::MulFOp::create(b, loc, half, onePlus);
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

struct AddLowering : OpRewritePattern<AddOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(AddOp op,
                                PatternRewriter &rewriter) const override {
    LinalgBuilder lb(rewriter, op.getLoc());
    // The residual stream adds in the accumulate type (f32).
    Type acc = op.getAccumulateElementType();
    Type f = op.getComputeElementType();
    Value result = lb.elementwise(
        {op.getLhs(), op.getRhs()}, op.getType(),
        [&](OpBuilder &b, Location loc, ValueRange args) -> Value {
          LinalgBuilder inner(b, loc);
          // One statement each: the IR order must not depend on the C++
          // compiler's order of evaluating arguments.
          Value lhs = inner.castFloat(args[0], acc);
          Value rhs = inner.castFloat(args[1], acc);
          return inner.castFloat(arith::AddFOp::create(b, loc, lhs, rhs), f);
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

/// Splits the fused QKV channels with reshapes and slices (spec section 5.2).
struct QKVSplitLowering : OpRewritePattern<QKVSplitOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(QKVSplitOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value fused = op.getFused();
    auto fusedType = cast<RankedTensorType>(fused.getType());
    Type f = fusedType.getElementType();
    int64_t numHeads = op.getNumHeads(), numKV = op.getNumKvHeads();
    int64_t headDim = cast<RankedTensorType>(op.getQuery().getType()).getShape().back();
    int64_t dyn = ShapedType::kDynamic;
    SmallVector<OpFoldResult> batchSeq =
        tensor::getMixedSizes(rewriter, loc, fused);
    batchSeq.pop_back();
    auto attr = [&](int64_t value) -> OpFoldResult {
      return rewriter.getIndexAttr(value);
    };
    auto typeOf = [&](ArrayRef<int64_t> tail) {
      SmallVector<int64_t> shape = {fusedType.getShape()[0], fusedType.getShape()[1]};
      shape.append(tail.begin(), tail.end());
      return RankedTensorType::get(shape, f);
    };
    auto slice = [&](Value source, RankedTensorType resultType,
                     ArrayRef<OpFoldResult> offsets,
                     ArrayRef<OpFoldResult> sizes) -> Value {
      SmallVector<OpFoldResult> strides(offsets.size(), attr(1));
      return tensor::ExtractSliceOp::create(rewriter, loc, resultType, source,
                                            offsets, sizes, strides);
    };
    auto withBatchSeq = [&](ArrayRef<OpFoldResult> tail) {
      SmallVector<OpFoldResult> sizes(batchSeq);
      sizes.append(tail.begin(), tail.end());
      return sizes;
    };
    auto zeros = [&](ArrayRef<OpFoldResult> tail) {
      SmallVector<OpFoldResult> offsets = {attr(0), attr(0)};
      offsets.append(tail.begin(), tail.end());
      return offsets;
    };
    (void)dyn;
    Value query, key, value;
    switch (op.getLayout()) {
    case QKVLayout::PerHead: {
      // view(B, S, H, 3, d): head h owns [q_h | k_h | v_h].
      auto expandedType = typeOf({numHeads, 3, headDim});
      Value expanded = tensor::ExpandShapeOp::create(
          rewriter, loc, expandedType, fused,
          ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3, 4}},
          withBatchSeq({attr(numHeads), attr(3), attr(headDim)}));
      auto part = [&](int64_t which) {
        return slice(expanded, typeOf({numHeads, headDim}),
                     zeros({attr(0), attr(which), attr(0)}),
                     withBatchSeq({attr(numHeads), attr(1), attr(headDim)}));
      };
      query = part(0);
      key = part(1);
      value = part(2);
      break;
    }
    case QKVLayout::MultiQuery: {
      // view(B, S, H + 2, d): H queries, then the key, then the value.
      auto expandedType = typeOf({numHeads + 2, headDim});
      Value expanded = tensor::ExpandShapeOp::create(
          rewriter, loc, expandedType, fused,
          ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3}},
          withBatchSeq({attr(numHeads + 2), attr(headDim)}));
      query = slice(expanded, typeOf({numHeads, headDim}), zeros({attr(0), attr(0)}),
                    withBatchSeq({attr(numHeads), attr(headDim)}));
      key = slice(expanded, typeOf({1, headDim}), zeros({attr(numHeads), attr(0)}),
                  withBatchSeq({attr(1), attr(headDim)}));
      value = slice(expanded, typeOf({1, headDim}),
                    zeros({attr(numHeads + 1), attr(0)}),
                    withBatchSeq({attr(1), attr(headDim)}));
      break;
    }
    case QKVLayout::Grouped: {
      // view(B, S, K, r + 2, d): each group holds r queries, its key, its value.
      int64_t perGroup = numHeads / numKV;
      auto expandedType = typeOf({numKV, perGroup + 2, headDim});
      Value expanded = tensor::ExpandShapeOp::create(
          rewriter, loc, expandedType, fused,
          ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3, 4}},
          withBatchSeq({attr(numKV), attr(perGroup + 2), attr(headDim)}));
      Value groupedQuery =
          slice(expanded, typeOf({numKV, perGroup, headDim}),
                zeros({attr(0), attr(0), attr(0)}),
                withBatchSeq({attr(numKV), attr(perGroup), attr(headDim)}));
      // Query head h = g * r + j.
      query = tensor::CollapseShapeOp::create(
          rewriter, loc, typeOf({numHeads, headDim}), groupedQuery,
          ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3}, {4}});
      key = slice(expanded, typeOf({numKV, headDim}),
                  zeros({attr(0), attr(perGroup), attr(0)}),
                  withBatchSeq({attr(numKV), attr(1), attr(headDim)}));
      value = slice(expanded, typeOf({numKV, headDim}),
                    zeros({attr(0), attr(perGroup + 1), attr(0)}),
                    withBatchSeq({attr(numKV), attr(1), attr(headDim)}));
      break;
    }
    }
    // Results may carry more static information than the slices.
    auto cast = [&](Value v, Type type) -> Value {
      return v.getType() == type ? v : tensor::CastOp::create(rewriter, loc, type, v);
    };
    rewriter.replaceOp(op, {cast(query, op.getQuery().getType()),
                            cast(key, op.getKey().getType()),
                            cast(value, op.getValue().getType())});
    return success();
  }
};

/// inv_freq_i = 1 / base^(2 (i mod d/2) / d) for i < d (HF's cat(freqs, freqs)),
/// computed in f32 as HF does, at run time from the f32 scalar `base`.
Value buildFrequencyTable(LinalgBuilder &lb, Value base, int64_t headDim) {
  int64_t half = headDim / 2;
  SmallVector<float> exponents(headDim);
  for (int64_t i = 0; i < headDim; ++i)
    exponents[i] = float(2 * (i % half)) / float(headDim);
  auto tableType = RankedTensorType::get({headDim}, lb.b.getF32Type());
  Value exponentTable = arith::ConstantOp::create(
      lb.b, lb.loc, tableType,
      DenseElementsAttr::get(tableType, ArrayRef<float>(exponents)));
  MLIRContext *context = lb.b.getContext();
  return lb.generic({exponentTable}, lb.empty({lb.b.getIndexAttr(headDim)}, lb.b.getF32Type()),
                    {dimsMap(context, 1, {0}), dimsMap(context, 1, {0})}, {kParallel},
                    [&](OpBuilder &b, Location l, ValueRange args) -> Value {
                      LinalgBuilder inner(b, l);
                      Value power = math::PowFOp::create(b, l, base, args[0]);
                      return arith::DivFOp::create(b, l, inner.constantFloat(b.getF32Type(), 1.0),
                                                   power);
                    });
}

/// Dynamic NTK (HF's _compute_dynamic_ntk_parameters): with L = max(position
/// ids) + 1 of this call and L' = max(L, max_position_embeddings),
/// base = theta * (factor * L' / mpe - (factor - 1))^(d / (d - 2)). HF keeps the
/// largest L seen; recomputing per call is identical for a growing sequence.
Value buildDynamicNTKBase(LinalgBuilder &lb, RotaryOp op, int64_t headDim) {
  OpBuilder &b = lb.b;
  Location loc = lb.loc;
  MLIRContext *context = b.getContext();
  Type i64 = b.getI64Type(), f64 = b.getF64Type();
  Value zero = arith::ConstantIntOp::create(b, loc, i64, 0);
  Value init = linalg::FillOp::create(b, loc, zero,
                                      tensor::EmptyOp::create(b, loc, ArrayRef<int64_t>{}, i64)
                                          .getResult())
                   .getResult(0);
  Value maxTensor = lb.generic(
      {op.getPositions()}, init,
      {dimsMap(context, 2, {0, 1}), AffineMap::get(2, 0, {}, context)},
      {kReduction, kReduction},
      [&](OpBuilder &nb, Location l, ValueRange args) -> Value {
        return arith::MaxSIOp::create(nb, l, args[0], args[1]);
      });
  Value maxPosition = tensor::ExtractOp::create(b, loc, maxTensor, ValueRange{});
  Value length = arith::AddIOp::create(b, loc, maxPosition,
                                       arith::ConstantIntOp::create(b, loc, i64, 1));
  int64_t limit = op.getMaxPositionEmbeddings();
  length = arith::MaxSIOp::create(b, loc, length,
                                  arith::ConstantIntOp::create(b, loc, i64, limit));
  double factor = op.getFactor().convertToDouble();
  Value ratio = arith::SubFOp::create(
      b, loc,
      arith::MulFOp::create(b, loc, lb.constantFloat(f64, factor / double(limit)),
                            arith::SIToFPOp::create(b, loc, f64, length)),
      lb.constantFloat(f64, factor - 1.0));
  Value scale = math::PowFOp::create(
      b, loc, ratio, lb.constantFloat(f64, double(headDim) / double(headDim - 2)));
  Value base = arith::MulFOp::create(
      b, loc, lb.constantFloat(f64, op.getTheta().convertToDouble()), scale);
  return arith::TruncFOp::create(b, loc, b.getF32Type(), base);
}

struct RotaryLowering : OpRewritePattern<RotaryOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(RotaryOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    LinalgBuilder lb(rewriter, loc);
    Value x = op.getInput();
    auto type = cast<RankedTensorType>(x.getType());
    Type f = type.getElementType();
    int64_t headDim = type.getShape().back(), half = headDim / 2;
    Value frequencyTable;
    if (op.getScaling() == RopeScaling::Dynamic) {
      frequencyTable =
          buildFrequencyTable(lb, buildDynamicNTKBase(lb, op, headDim), headDim);
    } else {
      // inv_freq_i = 1 / theta^(2i/d) (divided by the linear factor),
      // repeated for both halves as HF's cat(freqs, freqs); f32 as HF.
      double factor = op.getScaling() == RopeScaling::Linear
                          ? op.getFactor().convertToDouble()
                          : 1.0;
      SmallVector<float> frequencies(headDim);
      for (int64_t i = 0; i < headDim; ++i) {
        float exponent = float(2 * (i % half)) / float(headDim);
        float invFreq =
            1.0f / std::pow(float(op.getTheta().convertToDouble()), exponent);
        frequencies[i] = float(invFreq / factor);
      }
      auto frequencyType = RankedTensorType::get({headDim}, rewriter.getF32Type());
      frequencyTable = arith::ConstantOp::create(
          rewriter, loc, frequencyType,
          DenseElementsAttr::get(frequencyType, ArrayRef<float>(frequencies)));
    }
    MLIRContext *context = getContext();
    Value result = lb.generic(
        {x, op.getPositions(), frequencyTable},
        lb.empty(tensor::getMixedSizes(rewriter, loc, x), f),
        {dimsMap(context, 4, {0, 1, 2, 3}), dimsMap(context, 4, {0, 1}),
         dimsMap(context, 4, {3}), dimsMap(context, 4, {0, 1, 2, 3})},
        {kParallel, kParallel, kParallel, kParallel},
        [&](OpBuilder &b, Location l, ValueRange args) -> Value {
          LinalgBuilder inner(b, l);
          Type f32 = b.getF32Type();
          Value position = arith::SIToFPOp::create(b, l, f32, args[1]);
          Value angle = arith::MulFOp::create(b, l, position, args[2]);
          Value cos = inner.castFloat(math::CosOp::create(b, l, angle), f);
          Value sin = inner.castFloat(math::SinOp::create(b, l, angle), f);
          // rotate_half(x)_i = -x_{i+d/2} for i < d/2, x_{i-d/2} otherwise.
          Value i = linalg::IndexOp::create(b, l, 3);
          Value halfIndex = inner.index(half);
          Value isFirstHalf = arith::CmpIOp::create(b, l, arith::CmpIPredicate::ult, i, halfIndex);
          Value partner = arith::SelectOp::create(
              b, l, isFirstHalf, arith::AddIOp::create(b, l, i, halfIndex),
              arith::SubIOp::create(b, l, i, halfIndex));
          Value partnerValue = tensor::ExtractOp::create(
              b, l, x,
              ValueRange{linalg::IndexOp::create(b, l, 0), linalg::IndexOp::create(b, l, 1),
                         linalg::IndexOp::create(b, l, 2), partner});
          Value rotated = arith::SelectOp::create(
              b, l, isFirstHalf, arith::NegFOp::create(b, l, partnerValue), partnerValue);
          Value direct = arith::MulFOp::create(b, l, args[0], cos);
          Value turned = arith::MulFOp::create(b, l, rotated, sin);
          return arith::AddFOp::create(b, l, direct, turned);
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};

/// ALiBi slopes of HF's build_alibi_tensor, rounded to bfloat16 as HF does.
SmallVector<float> computeAlibiSlopes(int64_t numHeads) {
  int64_t closest = int64_t(1) << int64_t(std::floor(std::log2(double(numHeads))));
  auto powers = [](double base, int64_t first, int64_t step, int64_t count) {
    SmallVector<double> values;
    for (int64_t k = 0; k < count; ++k)
      values.push_back(std::pow(base, double(first + k * step)));
    return values;
  };
  // torch computes base and powers in float32.
  float base = float(std::pow(2.0, -(std::pow(2.0, -(std::log2(double(closest)) - 3)))));
  SmallVector<double> slopes = powers(base, 1, 1, closest);
  if (closest != numHeads) {
    float extraBase = float(
        std::pow(2.0, -(std::pow(2.0, -(std::log2(double(2 * closest)) - 3)))));
    int64_t extra = std::min(closest, numHeads - closest);
    SmallVector<double> more = powers(extraBase, 1, 2, extra);
    slopes.append(more.begin(), more.end());
  }
  SmallVector<float> rounded;
  for (double slope : slopes) {
    llvm::APFloat value = llvm::APFloat(static_cast<float>(slope));
    bool losesInfo = false;
    value.convert(llvm::APFloat::BFloat(), llvm::APFloat::rmNearestTiesToEven, &losesInfo);
    value.convert(llvm::APFloat::IEEEsingle(), llvm::APFloat::rmNearestTiesToEven, &losesInfo);
    rounded.push_back(value.convertToFloat());
  }
  return rounded;
}

struct AlibiLowering : OpRewritePattern<AlibiOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(AlibiOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    LinalgBuilder lb(rewriter, loc);
    SmallVector<float> allSlopes = computeAlibiSlopes(op.getNumHeads());
    // This rank's heads (all of them unless tensor-parallel).
    int64_t numHeads = cast<RankedTensorType>(op.getType()).getDimSize(0);
    SmallVector<float> slopes(allSlopes.begin() + op.getFirstHead(),
                              allSlopes.begin() + op.getFirstHead() + numHeads);
    auto slopeType = RankedTensorType::get({numHeads}, rewriter.getF32Type());
    Value slopeTable = arith::ConstantOp::create(
        rewriter, loc, slopeType, DenseElementsAttr::get(slopeType, ArrayRef<float>(slopes)));
    auto resultType = cast<RankedTensorType>(op.getType());
    Type f = resultType.getElementType();
    Value init = lb.empty({rewriter.getIndexAttr(numHeads), op.getNumKeys()}, f);
    MLIRContext *context = getContext();
    // bias[h, j] = bf16(bf16(slope_h) * bf16(j)): torch casts the key
    // positions to bf16 before multiplying (found by tools/falcon_reference.py).
    Value result = lb.generic(
        {slopeTable}, init, {dimsMap(context, 2, {0}), dimsMap(context, 2, {0, 1})},
        {kParallel, kParallel},
        [&](OpBuilder &b, Location l, ValueRange args) -> Value {
          LinalgBuilder inner(b, l);
          Value key = linalg::IndexOp::create(b, l, 1);
          Value keyInt = arith::IndexCastOp::create(b, l, b.getI64Type(), key);
          Value position = roundToBF16(b, l, arith::SIToFPOp::create(b, l, b.getF32Type(), keyInt));
          Value bias = roundToBF16(b, l, arith::MulFOp::create(b, l, args[0], position));
          return inner.castFloat(bias, f);
        });
    if (result.getType() != op.getType())
      result = tensor::CastOp::create(rewriter, loc, op.getType(), result);
    rewriter.replaceOp(op, result);
    return success();
  }
};

/// falcon.all_reduce becomes upstream's `shard.all_reduce` (sum) over the
/// tensor-parallel axis of the plan's grid (`shard.grid @falcon_plan`,
/// shape pp x tp, declared by falcon-shard; declared here when missing),
/// then one add per bias. A target lowers the shard collective (the CPU:
/// the runtime import table's all-reduce, see AllReduceBufferization.cpp).
struct AllReduceLowering : OpRewritePattern<AllReduceOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(AllReduceOp op,
                                PatternRewriter &rewriter) const override {
    auto module = op->getParentOfType<ModuleOp>();
    if (!module.lookupSymbol<shard::GridOp>(FalconDialect::kPlanGridName)) {
      OpBuilder::InsertionGuard guard(rewriter);
      rewriter.setInsertionPointToStart(module.getBody());
      int64_t groupSize = op.getGroupSizeAttr().getInt();
      shard::GridOp::create(rewriter, op.getLoc(), FalconDialect::kPlanGridName,
                            ArrayRef<int64_t>{1, groupSize});
    }
    LinalgBuilder lb(rewriter, op.getLoc());
    Value sum = shard::AllReduceOp::create(rewriter, op.getLoc(), op.getInput(), FalconDialect::kPlanGridName,
                                           ArrayRef<shard::GridAxis>{FalconDialect::kPlanGridTensorAxis},
                                           shard::ReductionKind::Sum);
    for (Value bias : op.getBiases())
      sum = addBias(lb, sum, bias);
    rewriter.replaceOp(op, sum);
    return success();
  }
};

struct ConvertFalconToLinalgPass
    : public mlir::falcon::impl::ConvertFalconToLinalgBase<ConvertFalconToLinalgPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateFalconToLinalgPatterns(patterns);
    ConversionTarget target(getContext());
    target.addLegalDialect<arith::ArithDialect, linalg::LinalgDialect,
                           math::MathDialect, tensor::TensorDialect>();
    target.addIllegalDialect<FalconDialect>();
    // Parameters are bound to the weight buffer by falcon-bind-weights, and
    // attention stays one recognisable op until a target's strategy
    // decomposes it (falcon-cpu-decompose-attention).
    target.addLegalOp<ParamOp, AttentionOp>();
    target.addLegalDialect<shard::ShardDialect>();
    target.markUnknownOpDynamicallyLegal([](Operation *) { return true; });
    if (failed(applyPartialConversion(getOperation(), target, std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace

void mlir::falcon::populateFalconToLinalgPatterns(RewritePatternSet &patterns) {
  patterns.add<AddLowering, AlibiLowering, AllReduceLowering, EmbeddingLowering,
               GatherPositionsLowering, GeluLowering, LayerNormLowering, ProjectionLowering,
               QKVSplitLowering, RotaryLowering>(patterns.getContext());
}

SmallVector<AffineMap> mlir::falcon::getProjectionIndexingMaps(MLIRContext *context,
                                                              bool weightInOut) {
  if (!weightInOut) // loops (b, s, n, k)
    return {AffineMap::getMultiDimMapWithTargets(4, {0, 1, 3}, context),
            AffineMap::getMultiDimMapWithTargets(4, {2, 3}, context),
            AffineMap::getMultiDimMapWithTargets(4, {0, 1, 2}, context)};
  // loops (b, k, s, n)
  return {AffineMap::getMultiDimMapWithTargets(4, {0, 2, 1}, context),
          AffineMap::getMultiDimMapWithTargets(4, {1, 3}, context),
          AffineMap::getMultiDimMapWithTargets(4, {0, 2, 3}, context)};
}

SmallVector<utils::IteratorType> mlir::falcon::getProjectionIteratorTypes(bool weightInOut) {
  if (!weightInOut)
    return {kParallel, kParallel, kParallel, kReduction};
  return {kParallel, kReduction, kParallel, kParallel};
}

Value mlir::falcon::getProjectionInputElement(linalg::GenericOp op) {
  Value x = op.getRegion().front().getArgument(0);
  if (x.hasOneUse())
    if (auto extend = dyn_cast<arith::ExtFOp>(*x.getUsers().begin()))
      return extend.getResult();
  return x;
}

/// Whether `op` is such a projection, with W (bf16/f16 checkpoints) and x
/// (--dtype) possibly narrower, extended in the body.
bool mlir::falcon::isProjection(linalg::GenericOp op, bool weightInOut) {
  if (op.getNumDpsInputs() != 2 || op.getNumDpsInits() != 1 || op.getNumLoops() != 4)
    return false;
  if (op.getIndexingMapsArray() != getProjectionIndexingMaps(op.getContext(), weightInOut))
    return false;
  Block &body = op.getRegion().front();
  Value in = body.getArgument(0), weight = body.getArgument(1), acc = body.getArgument(2);
  // The narrower operands' extensions first (a bf16/f16 weight; an
  // activation rounded by falcon-compute-precision).
  auto it = body.begin();
  for (int i = 0; i < 2; ++i)
    if (auto extend = dyn_cast<arith::ExtFOp>(*it)) {
      if (extend.getIn() == weight && weight == body.getArgument(1))
        weight = extend.getResult();
      else if (extend.getIn() == in && in == body.getArgument(0))
        in = extend.getResult();
      else
        return false;
      ++it;
    }
  if (std::distance(it, body.end()) != 3)
    return false;
  auto mul = dyn_cast<arith::MulFOp>(*it);
  auto add = dyn_cast<arith::AddFOp>(*std::next(it));
  auto yield = cast<linalg::YieldOp>(body.getTerminator());
  if (!mul || !add || yield.getValues() != ValueRange{add.getResult()})
    return false;
  bool mulOk = (mul.getLhs() == in && mul.getRhs() == weight) ||
               (mul.getLhs() == weight && mul.getRhs() == in);
  bool addOk = (add.getLhs() == acc && add.getRhs() == mul) ||
               (add.getLhs() == mul && add.getRhs() == acc);
  return mulOk && addOk;
}

Value mlir::falcon::getProjectionWeightElement(linalg::GenericOp op) {
  MLIRContext *context = op.getContext();
  SmallVector<AffineMap> projection = getProjectionIndexingMaps(context);
  if (op.getNumDpsInits() != 1 || op.getNumDpsInputs() < 2 || op.getNumLoops() != 4 ||
      op.getIteratorTypesArray() != getProjectionIteratorTypes() ||
      op.getMatchingIndexingMap(op.getDpsInputOperand(0)) != projection[0] ||
      op.getMatchingIndexingMap(op.getDpsInitOperand(0)) != projection[2])
    return Value();
  // getDpsInputOperands() returns a vector: keep it alive for the loop.
  SmallVector<OpOperand *> dpsInputs = op.getDpsInputOperands();
  for (OpOperand *input : llvm::drop_begin(dpsInputs)) {
    AffineMap map = op.getMatchingIndexingMap(input);
    if (map.getNumResults() != 2 || map.getResult(1) != getAffineDimExpr(3, context) ||
        llvm::any_of(std::initializer_list<unsigned>{0, 2, 3},
                     [&](unsigned dim) { return map.getResult(0).isFunctionOfDim(dim); }))
      return Value();
  }
  Block &body = op.getRegion().front();
  Value x = getProjectionInputElement(op), acc = body.getArguments().back();
  auto yield = cast<linalg::YieldOp>(body.getTerminator());
  auto add = yield.getValues().size() == 1
                 ? yield.getValues()[0].getDefiningOp<arith::AddFOp>()
                 : arith::AddFOp();
  if (!add)
    return Value();
  Value product = add.getLhs() == acc ? add.getRhs() : add.getRhs() == acc ? add.getLhs() : Value();
  auto mul = product ? product.getDefiningOp<arith::MulFOp>() : arith::MulFOp();
  if (!mul || !mul->hasOneUse())
    return Value();
  Value weight = mul.getLhs() == x ? mul.getRhs() : mul.getRhs() == x ? mul.getLhs() : Value();
  if (!weight)
    return Value();
  // w depends on neither x nor the accumulator.
  SmallVector<Value> worklist = {weight};
  while (!worklist.empty()) {
    Value value = worklist.pop_back_val();
    if (value == x || value == body.getArgument(0) || value == acc)
      return Value();
    if (Operation *def = value.getDefiningOp(); def && def->getBlock() == &body)
      llvm::append_range(worklist, def->getOperands());
  }
  return weight;
}
