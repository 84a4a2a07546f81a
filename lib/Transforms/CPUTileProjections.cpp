//===- CPUTileProjections.cpp - split-K threads and row tiles -------------===//

#include "falcon/Transforms/Passes.h"
#include "falcon/Conversion/Passes.h"

#include "mlir/Dialect/Tensor/Utils/Utils.h"
#include "mlir/Dialect/SCF/Transforms/TileUsingInterface.h"
#include "mlir/IR/PatternMatch.h"

#define DEBUG_TYPE "falcon-cpu-tile-projections"

namespace mlir::falcon {
#define GEN_PASS_DEF_FALCONCPUTILEPROJECTIONS
#include "falcon/Transforms/Passes.h.inc"
} // namespace mlir::falcon

using namespace mlir;

/// Tiles `op` with `sizes` (0 = untiled) as `loopType` loops; returns the
/// tiled op.
static FailureOr<linalg::LinalgOp> tile(RewriterBase &rewriter,
                                        linalg::LinalgOp op,
                                        ArrayRef<int64_t> sizes,
                                        scf::SCFTilingOptions::LoopType loopType) {
  scf::SCFTilingOptions options;
  options.setTileSizes(getAsIndexOpFoldResult(rewriter.getContext(), sizes));
  options.setLoopType(loopType);
  rewriter.setInsertionPoint(op);
  FailureOr<scf::SCFTilingResult> result = scf::tileUsingSCF(
      rewriter, cast<TilingInterface>(op.getOperation()), options);
  if (failed(result) || result->tiledOps.size() != 1)
    return failure();
  rewriter.replaceOp(op, result->replacements);
  return cast<linalg::LinalgOp>(result->tiledOps.front());
}

/// The loop dimension that produces result dimension `resultDim` of `op`'s
/// (single) output.
static unsigned outputLoop(linalg::LinalgOp op, unsigned resultDim) {
  AffineMap map = op.getIndexingMapMatchingResult(op->getResult(0));
  return cast<AffineDimExpr>(map.getResult(resultDim)).getPosition();
}

/// Rewrites projection `op` (loops b, k, s, n: x[b,s,k] * W[k,n] into
/// y[b,s,n]) as partial sums over `chunks` contiguous blocks of K,
///   partial[c,b,s,n] = sum_{k'} x[b,s,c,k'] * W[c,k',n]   loops (c,b,k',s,n)
///   y[b,s,n]         = init[b,s,n] + sum_c partial[c,b,s,n]
/// and returns the partial-sum op. The chunk is the outermost loop and the
/// outermost dimension of the partials, so each thread writes whole rows.
static linalg::GenericOp splitK(RewriterBase &rewriter, linalg::GenericOp op,
                                int64_t chunks) {
  Location loc = op.getLoc();
  MLIRContext *context = op.getContext();
  rewriter.setInsertionPoint(op);
  Value input = op.getDpsInputs()[0], weight = op.getDpsInputs()[1];
  Value init = op.getDpsInits()[0];
  auto inputType = cast<RankedTensorType>(input.getType());
  auto weightType = cast<RankedTensorType>(weight.getType());
  auto initType = cast<RankedTensorType>(init.getType());
  int64_t k = weightType.getShape()[0], n = weightType.getShape()[1];
  int64_t kc = k / chunks;
  SmallVector<OpFoldResult> batchSeq = tensor::getMixedSizes(rewriter, loc, input);
  batchSeq.pop_back();

  auto expandedInputType = RankedTensorType::get(
      {inputType.getShape()[0], inputType.getShape()[1], chunks, kc},
      inputType.getElementType());
  Value expandedInput = tensor::ExpandShapeOp::create(
      rewriter, loc, expandedInputType, input,
      ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3}},
      {batchSeq[0], batchSeq[1], rewriter.getIndexAttr(chunks),
       rewriter.getIndexAttr(kc)});
  Value expandedWeight = tensor::ExpandShapeOp::create(
      rewriter, loc,
      RankedTensorType::get({chunks, kc, n}, weightType.getElementType()), weight,
      ArrayRef<ReassociationIndices>{{0, 1}, {2}});

  Type f = initType.getElementType();
  Value partialInit = tensor::EmptyOp::create(
      rewriter, loc,
      {rewriter.getIndexAttr(chunks), batchSeq[0], batchSeq[1], rewriter.getIndexAttr(n)},
      f);
  Value zero = arith::ConstantOp::create(rewriter, loc, f, rewriter.getFloatAttr(f, 0.0));
  partialInit = linalg::FillOp::create(rewriter, loc, zero, partialInit).getResult(0);
  auto map = [&](unsigned numDims, ArrayRef<unsigned> dims) {
    SmallVector<AffineExpr> exprs;
    for (unsigned dim : dims)
      exprs.push_back(getAffineDimExpr(dim, context));
    return AffineMap::get(numDims, 0, exprs, context);
  };
  using utils::IteratorType;
  // Loops (c, b, k', s, n), the body of the original projection.
  auto partial = linalg::GenericOp::create(
      rewriter, loc, TypeRange{partialInit.getType()},
      ValueRange{expandedInput, expandedWeight}, ValueRange{partialInit},
      ArrayRef<AffineMap>{map(5, {1, 3, 0, 2}), map(5, {0, 2, 4}), map(5, {0, 1, 3, 4})},
      ArrayRef<IteratorType>{IteratorType::parallel, IteratorType::parallel,
                             IteratorType::reduction, IteratorType::parallel,
                             IteratorType::parallel});
  rewriter.cloneRegionBefore(op.getRegion(), partial.getRegion(),
                             partial.getRegion().end());
  // y = init + sum over chunks; loops (b, s, n, c).
  auto combine = linalg::GenericOp::create(
      rewriter, loc, TypeRange{initType}, ValueRange{partial.getResult(0)},
      ValueRange{init},
      ArrayRef<AffineMap>{map(4, {3, 0, 1, 2}), map(4, {0, 1, 2})},
      ArrayRef<IteratorType>{IteratorType::parallel, IteratorType::parallel,
                             IteratorType::parallel, IteratorType::reduction},
      [&](OpBuilder &b, Location l, ValueRange args) {
        linalg::YieldOp::create(b, l,
                                ValueRange{arith::AddFOp::create(b, l, args[1], args[0])});
      });
  rewriter.replaceOp(op, combine.getResults());
  return partial;
}

namespace {
struct FalconCPUTileProjectionsPass
    : public mlir::falcon::impl::FalconCPUTileProjectionsBase<
          FalconCPUTileProjectionsPass> {
  using Base::Base;

  void runOnOperation() override {
    if (parallelChunks < 1 || rowTile < 1) {
      getOperation().emitError("falcon-cpu-tile-projections: parallel-chunks "
                               "and row-tile must be positive");
      return signalPassFailure();
    }
    SmallVector<linalg::GenericOp> projections;
    getOperation().walk([&](linalg::GenericOp op) {
      if (op->hasAttr(mlir::falcon::kProjectionAttrName) && op.getNumLoops() == 4)
        projections.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (linalg::GenericOp generic : projections) {
      linalg::LinalgOp op = generic;
      // Loops (batch, in, seq, out) writing [batch, seq, out].
      int64_t rows = op.getStaticLoopRanges()[1];
      bool split = parallelChunks > 1 && !ShapedType::isDynamic(rows) &&
                   rows % parallelChunks == 0;
      if (split) {
        // Split-K: each thread streams a contiguous block of weight rows into
        // its own partial sums. Column blocks would leave each thread
        // half-row strides, which costs more bandwidth than the second core
        // brings (measured: docs/benchmarks.md).
        op = splitK(rewriter, generic, parallelChunks);
        SmallVector<int64_t> chunkTiles(op.getNumLoops(), 0);
        chunkTiles[outputLoop(op, 0)] = 1;
        FailureOr<linalg::LinalgOp> tiled =
            tile(rewriter, op, chunkTiles, scf::SCFTilingOptions::LoopType::ForallOp);
        if (failed(tiled)) {
          generic.emitOpError("could not be tiled for threads");
          return signalPassFailure();
        }
        op = *tiled;
      }
      // Row tiles: a weight-row chunk is reused by every row of a tile.
      SmallVector<int64_t> rowTiles(op.getNumLoops(), 0);
      rowTiles[outputLoop(op, split ? 2 : 1)] = rowTile;
      if (failed(tile(rewriter, op, rowTiles, scf::SCFTilingOptions::LoopType::ForOp))) {
        generic.emitOpError("could not be tiled by rows");
        return signalPassFailure();
      }
    }
  }
};
} // namespace
