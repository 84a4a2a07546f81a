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
// The weight row w is the generic's body evaluated on vectors: a stored
// weight row read as it is (and extended if narrower), a quantized one
// dequantized from its rows of codes, scales and zero points. Activations
// rounded to bf16/f16 (falcon-compute-precision) are extended as read.
//
// With the strategy's bf16_dot_products (bf16 activations and weight,
// AVX512-BF16), the tile takes the inputs in pairs:
//
//   for k < K step 2:
//     p[j] = interleave(W[k, 16j:16j+16], W[k+1, 16j:16j+16])   (32 x bf16)
//     acc[r][j] = vdpbf16ps(acc[r][j], p[j], broadcast(x[0, r, k:k+2]))
//
// each accumulator lane adding w[k]x[k] + w[k+1]x[k+1] (exact products, f32
// sums): half the instructions of the widening FMAs, and the weight read as
// stored. An odd last input runs the FMA step.
//
//===----------------------------------------------------------------------===//

#include "falcon/Codegen/CPU/Passes.h"
#include "falcon/Conversion/Passes.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/X86Vector/X86VectorDialect.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/WalkPatternRewriteDriver.h"

namespace mlir::falcon {
#define GEN_PASS_DEF_FALCONCPUPROJECTIONMICROKERNELS
#include "falcon/Codegen/CPU/Passes.h.inc"
} // namespace mlir::falcon

using namespace mlir;
using namespace mlir::falcon;

namespace {
struct ProjectionTileToMicrokernel : public OpRewritePattern<linalg::GenericOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(linalg::GenericOp op,
                                PatternRewriter &rewriter) const override {
    auto config =
        op->getAttrOfType<LoweringConfigAttr>(FalconDialect::kLoweringConfigAttrName);
    if (!config || config.getRegisterTile().empty() || !getProjectionWeightElement(op) ||
        !op.hasPureTensorSemantics())
      return rewriter.notifyMatchFailure(op, "not a projection tile with a register tile");
    int64_t tileRows = config.getRegisterTile()[0];
    Value x = op.getDpsInputs()[0], y = op.getDpsInits()[0];
    auto yType = cast<RankedTensorType>(y.getType());
    int64_t cols = yType.getDimSize(2);
    if (yType.getDimSize(0) != 1 || ShapedType::isDynamic(cols))
      return rewriter.notifyMatchFailure(op, "the tile's columns are not static");
    Location loc = op.getLoc();
    // A tile of a static number of rows, or the last rows of a sequence (a
    // dynamic count, at most the attribute's): then the tile computes that
    // many rows, those past the end repeating the last one (the same value to
    // the same address). Any other count runs the generic as it was.
    int64_t rows = yType.getDimSize(1);
    if (ShapedType::isDynamic(rows)) {
      rows = tileRows;
      Value c1 = arith::ConstantIndexOp::create(rewriter, loc, 1);
      Value count = tensor::DimOp::create(rewriter, loc, y, c1);
      // One statement each: as arguments of one call, their order in the IR
      // would be the compiler's evaluation order (gcc and clang differ).
      Value atLeastOne =
          arith::CmpIOp::create(rewriter, loc, arith::CmpIPredicate::sge, count, c1);
      Value maxRows = arith::ConstantIndexOp::create(rewriter, loc, rows);
      Value atMostRows =
          arith::CmpIOp::create(rewriter, loc, arith::CmpIPredicate::sle, count, maxRows);
      Value fits = arith::AndIOp::create(rewriter, loc, atLeastOne, atMostRows);
      auto ifOp = scf::IfOp::create(rewriter, loc, yType, fits, /*withElseRegion=*/true);
      rewriter.setInsertionPointToStart(ifOp.elseBlock());
      Operation *generic = rewriter.clone(*op);
      generic->removeAttr(FalconDialect::kLoweringConfigAttrName);
      scf::YieldOp::create(rewriter, loc, generic->getResults());
      // One row (decode) as a one-row tile; more as a `rows`-row tile.
      rewriter.setInsertionPointToStart(ifOp.thenBlock());
      Value one = arith::CmpIOp::create(rewriter, loc, arith::CmpIPredicate::eq, count, c1);
      auto oneRow = scf::IfOp::create(rewriter, loc, yType, one, /*withElseRegion=*/true);
      scf::YieldOp::create(rewriter, loc, oneRow.getResults());
      rewriter.setInsertionPointToStart(oneRow.thenBlock());
      scf::YieldOp::create(rewriter, loc, emit(rewriter, loc, op, x, y, 1, cols, Value()));
      rewriter.setInsertionPointToStart(oneRow.elseBlock());
      Value last = arith::SubIOp::create(rewriter, loc, count, c1);
      scf::YieldOp::create(rewriter, loc, emit(rewriter, loc, op, x, y, rows, cols, last));
      rewriter.replaceOp(op, ifOp.getResults());
      return success();
    }
    rewriter.replaceOp(op, emit(rewriter, loc, op, x, y, rows, cols, Value()));
    return success();
  }

  /// The row of input `input` (indexed (f(k), n)) that input k of the
  /// projection reads, as a vector of `cols` elements of its type.
  static Value readRow(OpBuilder &b, Location l, linalg::GenericOp op, OpOperand &input,
                       Value k, Value c0, int64_t cols) {
    AffineMap map = op.getMatchingIndexingMap(&input);
    Value row = getValueOrCreateConstantIndexOp(
        b, l,
        affine::makeComposedFoldedAffineApply(b, l, AffineMap::get(4, 0, map.getResult(0)),
                                              ArrayRef<OpFoldResult>{c0, k, c0, c0}));
    Type type = getElementTypeOrSelf(input.get().getType());
    Value padding = arith::ConstantOp::create(b, l, type, b.getZeroAttr(type));
    return vector::TransferReadOp::create(b, l, VectorType::get({cols}, type), input.get(),
                                          ValueRange{row, c0}, padding, ArrayRef<bool>{true});
  }

  /// x[0, row, k] as f32 (extended when narrower).
  static Value readInput(OpBuilder &b, Location l, Value x, Value c0, Value row, Value k) {
    Value input = tensor::ExtractOp::create(b, l, x, ValueRange{c0, row, k});
    if (!input.getType().isF32())
      input = arith::ExtFOp::create(b, l, b.getF32Type(), input);
    return input;
  }

  /// Row k of `op`'s weight as a vector of `cols` elements: the body's
  /// weight element (getProjectionWeightElement) computed on vectors, its
  /// inputs' rows read at the row their indexing map gives for k, scalars
  /// (of k alone) broadcast where they meet vectors.
  static Value weightRow(OpBuilder &b, Location l, linalg::GenericOp op, Value k, Value c0,
                         int64_t cols) {
    Block &body = op.getRegion().front();
    Value element = getProjectionWeightElement(op);
    // The body's ops that the element depends on, in order.
    llvm::SmallPtrSet<Operation *, 16> needed;
    SmallVector<Value> worklist = {element};
    while (!worklist.empty()) {
      Operation *def = worklist.pop_back_val().getDefiningOp();
      if (def && def->getBlock() == &body && needed.insert(def).second)
        llvm::append_range(worklist, def->getOperands());
    }
    IRMapping mapping;
    // getDpsInputOperands() returns a vector: keep it alive for the loop.
    SmallVector<OpOperand *> dpsInputs = op.getDpsInputOperands();
    for (OpOperand *input : llvm::drop_begin(dpsInputs))
      mapping.map(op.getMatchingBlockArgument(input), readRow(b, l, op, *input, k, c0, cols));
    for (Operation &bodyOp : body.without_terminator()) {
      if (!needed.contains(&bodyOp))
        continue;
      if (auto index = dyn_cast<linalg::IndexOp>(bodyOp)) {
        mapping.map(index.getResult(), index.getDim() == 1 ? k : c0);
        continue;
      }
      bool vectorized = llvm::any_of(bodyOp.getOperands(), [&](Value operand) {
        return isa<VectorType>(mapping.lookupOrDefault(operand).getType());
      });
      SmallVector<Value> operands;
      for (Value operand : bodyOp.getOperands()) {
        Value mapped = mapping.lookupOrDefault(operand);
        if (vectorized && !isa<VectorType>(mapped.getType()))
          mapped = vector::BroadcastOp::create(
              b, l, VectorType::get({cols}, mapped.getType()), mapped);
        operands.push_back(mapped);
      }
      SmallVector<Type> types;
      for (Type type : bodyOp.getResultTypes())
        types.push_back(vectorized ? VectorType::get({cols}, type) : type);
      OperationState state(l, bodyOp.getName(), operands, types, bodyOp.getAttrs());
      Operation *clone = b.create(state);
      mapping.map(bodyOp.getResults(), clone->getResults());
    }
    return mapping.lookupOrDefault(element);
  }

  /// The register tile of `rows` rows and `cols` columns; with `last`, row r
  /// is row min(r, last). Each row's accumulators are `vector<cols x f32>`,
  /// or with bf16_dot_products `cols / 16` vectors of 16 lanes, which first
  /// take the inputs in pairs (emitBF16Pairs); the FMA loop takes the rest.
  static Value emit(PatternRewriter &rewriter, Location loc, linalg::GenericOp op, Value x,
                    Value y, int64_t rows, int64_t cols, Value last) {
    auto config =
        op->getAttrOfType<LoweringConfigAttr>(FalconDialect::kLoweringConfigAttrName);
    bool pairs = config.getBf16DotProducts();
    int64_t width = pairs ? kBF16Lanes : cols, vectors = cols / width;
    Type f32 = rewriter.getF32Type();
    auto vectorType = VectorType::get({width}, f32);
    Value zero = arith::ConstantOp::create(rewriter, loc, f32, rewriter.getF32FloatAttr(0.0));
    Value c0 = arith::ConstantIndexOp::create(rewriter, loc, 0);
    Value c1 = arith::ConstantIndexOp::create(rewriter, loc, 1);
    SmallVector<Value> rowIndex, column = {c0}, accumulators;
    for (int64_t j = 1; j < vectors; ++j)
      column.push_back(arith::ConstantIndexOp::create(rewriter, loc, j * width));
    for (int64_t r = 0; r < rows; ++r) {
      Value index = r == 0 ? c0 : arith::ConstantIndexOp::create(rewriter, loc, r);
      rowIndex.push_back(last && r > 0 ? arith::MinUIOp::create(rewriter, loc, index, last)
                                       : index);
      for (int64_t j = 0; j < vectors; ++j)
        accumulators.push_back(vector::TransferReadOp::create(
            rewriter, loc, vectorType, y, ValueRange{c0, rowIndex[r], column[j]}, zero,
            ArrayRef<bool>{true}));
    }
    Value depth = tensor::DimOp::create(rewriter, loc, x, 2);
    Value first = c0;
    if (pairs) {
      // Input pairs [0, first); the last input alone when the count is odd.
      Value c2 = arith::ConstantIndexOp::create(rewriter, loc, 2);
      first = arith::SubIOp::create(rewriter, loc, depth,
                                    arith::RemUIOp::create(rewriter, loc, depth, c2));
      auto pairLoop = scf::ForOp::create(
          rewriter, loc, c0, first, c2, accumulators,
          [&](OpBuilder &b, Location l, Value k, ValueRange acc) {
            scf::YieldOp::create(b, l, emitBF16Pairs(b, l, op, x, k, rowIndex, acc, cols));
          });
      accumulators.assign(pairLoop.getResults().begin(), pairLoop.getResults().end());
    }
    auto loop = scf::ForOp::create(
        rewriter, loc, first, depth, c1, accumulators,
        [&](OpBuilder &b, Location l, Value k, ValueRange acc) {
          Value weight = weightRow(b, l, op, k, c0, cols);
          SmallVector<Value> next;
          for (int64_t r = 0; r < rows; ++r) {
            Value splat = vector::BroadcastOp::create(b, l, vectorType,
                                                      readInput(b, l, x, c0, rowIndex[r], k));
            for (int64_t j = 0; j < vectors; ++j) {
              Value columns = vectors == 1 ? weight
                                           : vector::ExtractStridedSliceOp::create(
                                                 b, l, weight, ArrayRef<int64_t>{j * width},
                                                 ArrayRef<int64_t>{width}, ArrayRef<int64_t>{1});
              next.push_back(vector::FMAOp::create(b, l, splat, columns, acc[r * vectors + j]));
            }
          }
          scf::YieldOp::create(b, l, next);
        });
    Value result = y;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < vectors; ++j)
        result = vector::TransferWriteOp::create(rewriter, loc,
                                                 loop.getResult(r * vectors + j), result,
                                                 ValueRange{c0, rowIndex[r], column[j]},
                                                 ArrayRef<bool>{true})
                     .getResult();
    return result;
  }

  /// f32 lanes of one vdpbf16ps accumulator.
  static constexpr int64_t kBF16Lanes = 16;

  /// One step of the bf16 pair loop at inputs k and k + 1 (x and the weight
  /// bf16): the rows' accumulators `acc` (16 lanes, `cols / 16` per row)
  /// with both products added by vdpbf16ps.
  static SmallVector<Value> emitBF16Pairs(OpBuilder &b, Location l, linalg::GenericOp op,
                                          Value x, Value k, ArrayRef<Value> rowIndex,
                                          ValueRange acc, int64_t cols) {
    constexpr int64_t lanes = kBF16Lanes;
    int64_t vectors = cols / lanes;
    Type bf16 = b.getBF16Type();
    auto accType = VectorType::get({lanes}, b.getF32Type());
    auto pairsType = VectorType::get({2 * lanes}, bf16);
    Value c0 = arith::ConstantIndexOp::create(b, l, 0);
    Value c1 = arith::ConstantIndexOp::create(b, l, 1);
    OpOperand &weight = op->getOpOperand(1);
    Value k1 = arith::AddIOp::create(b, l, k, c1);
    Value even = readRow(b, l, op, weight, k, c0, cols);
    Value odd = readRow(b, l, op, weight, k1, c0, cols);
    SmallVector<Value> weightPairs;
    for (int64_t j = 0; j < vectors; ++j) {
      auto slice = [&](Value row) {
        return vector::ExtractStridedSliceOp::create(b, l, row, ArrayRef<int64_t>{j * lanes},
                                                     ArrayRef<int64_t>{lanes},
                                                     ArrayRef<int64_t>{1});
      };
      // One statement each: the IR's order is not the compiler's.
      Value evenSlice = slice(even);
      Value oddSlice = slice(odd);
      weightPairs.push_back(vector::InterleaveOp::create(b, l, evenSlice, oddSlice));
    }
    SmallVector<Value> next;
    for (size_t r = 0; r < rowIndex.size(); ++r) {
      // x[0, r, k] and x[0, r, k + 1] as one 32-bit lane, in every lane.
      Value pair = vector::TransferReadOp::create(
          b, l, VectorType::get({2}, bf16), x, ValueRange{c0, rowIndex[r], k},
          arith::ConstantOp::create(b, l, bf16, b.getZeroAttr(bf16)), ArrayRef<bool>{true});
      Value word = vector::ExtractOp::create(
          b, l, vector::BitCastOp::create(b, l, VectorType::get({1}, b.getI32Type()), pair),
          ArrayRef<int64_t>{0});
      Value splat = vector::BitCastOp::create(
          b, l, pairsType,
          vector::BroadcastOp::create(b, l, VectorType::get({lanes}, b.getI32Type()), word));
      for (int64_t j = 0; j < vectors; ++j)
        next.push_back(x86vector::DotBF16Op::create(b, l, accType, acc[r * vectors + j],
                                                    weightPairs[j], splat));
    }
    return next;
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
