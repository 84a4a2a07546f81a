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
// dequantized from its rows of codes, scales and zero points.
//
//===----------------------------------------------------------------------===//

#include "falcon/Codegen/CPU/Passes.h"
#include "falcon/Conversion/Passes.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
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
    for (OpOperand *input : llvm::drop_begin(dpsInputs)) {
      AffineMap map = op.getMatchingIndexingMap(input);
      Value row = getValueOrCreateConstantIndexOp(
          b, l,
          affine::makeComposedFoldedAffineApply(b, l, AffineMap::get(4, 0, map.getResult(0)),
                                                ArrayRef<OpFoldResult>{c0, k, c0, c0}));
      Type type = getElementTypeOrSelf(input->get().getType());
      Value padding = arith::ConstantOp::create(b, l, type, b.getZeroAttr(type));
      mapping.map(op.getMatchingBlockArgument(input),
                  vector::TransferReadOp::create(b, l, VectorType::get({cols}, type),
                                                 input->get(), ValueRange{row, c0}, padding,
                                                 ArrayRef<bool>{true}));
    }
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
  /// is row min(r, last).
  static Value emit(PatternRewriter &rewriter, Location loc, linalg::GenericOp op, Value x,
                    Value y, int64_t rows, int64_t cols, Value last) {
    auto yType = cast<RankedTensorType>(y.getType());
    Type element = yType.getElementType();
    auto vectorType = VectorType::get({cols}, element);
    Value zero = arith::ConstantOp::create(rewriter, loc, element,
                                           rewriter.getFloatAttr(element, 0.0));
    Value c0 = arith::ConstantIndexOp::create(rewriter, loc, 0);
    Value c1 = arith::ConstantIndexOp::create(rewriter, loc, 1);
    SmallVector<Value> rowIndex, accumulators;
    for (int64_t r = 0; r < rows; ++r) {
      Value index = r == 0 ? c0 : arith::ConstantIndexOp::create(rewriter, loc, r);
      rowIndex.push_back(last && r > 0 ? arith::MinUIOp::create(rewriter, loc, index, last)
                                       : index);
      accumulators.push_back(vector::TransferReadOp::create(
          rewriter, loc, vectorType, y, ValueRange{c0, rowIndex[r], c0}, zero,
          ArrayRef<bool>{true}));
    }
    Value depth = tensor::DimOp::create(rewriter, loc, x, 2);
    auto loop = scf::ForOp::create(
        rewriter, loc, c0, depth, c1, accumulators,
        [&](OpBuilder &b, Location l, Value k, ValueRange acc) {
          Value weight = weightRow(b, l, op, k, c0, cols);
          SmallVector<Value> next;
          for (int64_t r = 0; r < rows; ++r) {
            Value input = tensor::ExtractOp::create(b, l, x, ValueRange{c0, rowIndex[r], k});
            Value splat = vector::BroadcastOp::create(b, l, vectorType, input);
            next.push_back(vector::FMAOp::create(b, l, splat, weight, acc[r]));
          }
          scf::YieldOp::create(b, l, next);
        });
    Value result = y;
    for (int64_t r = 0; r < rows; ++r)
      result = vector::TransferWriteOp::create(rewriter, loc, loop.getResult(r), result,
                                               ValueRange{c0, rowIndex[r], c0},
                                               ArrayRef<bool>{true})
                   .getResult();
    return result;
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
