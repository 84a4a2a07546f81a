//===- CPUTiling.cpp - threads and tiles for the CPU ----------------------===//
//
// Both passes tile linalg generics on tensors with the same helper:
// falcon-cpu-tile-projections (register tiles and threads for the
// projections, by sequence length) and falcon-cpu-parallel-heads (attention
// heads on threads).
//
//===----------------------------------------------------------------------===//

#include "CPUKernels.h"

#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/SCF/Transforms/Transforms.h"
#include "mlir/Dialect/Tensor/Utils/Utils.h"
#include "mlir/Dialect/SCF/Transforms/TileUsingInterface.h"
#include "mlir/IR/PatternMatch.h"

#include <numeric>

#define DEBUG_TYPE "falcon-cpu-tiling"

namespace mlir::falcon {
#define GEN_PASS_DEF_FALCONCPUTILEPROJECTIONS
#define GEN_PASS_DEF_FALCONCPUPARALLELHEADS
#include "falcon/Codegen/CPU/Passes.h.inc"
} // namespace mlir::falcon

using namespace mlir;
using mlir::falcon::FalconDialect;
using mlir::falcon::LoweringConfigAttr;
using mlir::falcon::WeightEncodingAttr;

/// The strategy's decision for `op`, if any.
static LoweringConfigAttr getLoweringConfig(Operation *op) {
  return op->getAttrOfType<LoweringConfigAttr>(FalconDialect::kLoweringConfigAttrName);
}

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
/// y[b,s,n], its weight possibly dequantized in the body from inputs indexed
/// by k / group) as partial sums over `chunks` contiguous blocks of K,
///   partial[c,b,s,n] = sum_{k'} x[b,s,c,k'] * W[c*kc+k',n]   loops (c,b,k',s,n)
///   y[b,s,n]         = init[b,s,n] + sum_c partial[c,b,s,n]
/// and returns the partial-sum op: x expanded to [b, s, c, k'], every other
/// input's indexing map (and the body's linalg.index of k) with
/// k = c*kc + k'. The chunk is the outermost
/// loop and the outermost dimension of the partials, so each thread writes
/// whole rows.
static linalg::GenericOp splitK(RewriterBase &rewriter, linalg::GenericOp op,
                                int64_t chunks) {
  Location loc = op.getLoc();
  MLIRContext *context = op.getContext();
  rewriter.setInsertionPoint(op);
  Value init = op.getDpsInits()[0];
  auto initType = cast<RankedTensorType>(init.getType());
  int64_t kc = cast<linalg::LinalgOp>(op.getOperation()).getStaticLoopRanges()[1] / chunks;
  SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(rewriter, loc, init);

  // x[b, s, k] read as [b, s, c, k'], which gives the new loops' bounds;
  // every other input by substitution.
  Value input = op.getDpsInputs()[0];
  auto inputType = cast<RankedTensorType>(input.getType());
  SmallVector<OpFoldResult> batchSeq = tensor::getMixedSizes(rewriter, loc, input);
  Value expandedInput = tensor::ExpandShapeOp::create(
      rewriter, loc,
      RankedTensorType::get({inputType.getShape()[0], inputType.getShape()[1], chunks, kc},
                            inputType.getElementType()),
      input, ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3}},
      {batchSeq[0], batchSeq[1], rewriter.getIndexAttr(chunks), rewriter.getIndexAttr(kc)});
  AffineExpr c, b, k, s, n;
  bindDims(context, c, b, k, s, n);
  SmallVector<AffineExpr> substitution = {b, c * kc + k, s, n};
  SmallVector<Value> inputs = {expandedInput};
  SmallVector<AffineMap> maps = {AffineMap::get(5, 0, {b, s, c, k}, context)};
  // getDpsInputOperands() returns a vector: keep it alive for the loop.
  SmallVector<OpOperand *> dpsInputs = op.getDpsInputOperands();
  for (OpOperand *operand : llvm::drop_begin(dpsInputs)) {
    inputs.push_back(operand->get());
    maps.push_back(
        op.getMatchingIndexingMap(operand).replaceDimsAndSymbols(substitution, {}, 5, 0));
  }
  maps.push_back(AffineMap::get(5, 0, {c, b, s, n}, context));

  Type f = initType.getElementType();
  Value partialInit = tensor::EmptyOp::create(
      rewriter, loc, {rewriter.getIndexAttr(chunks), sizes[0], sizes[1], sizes[2]}, f);
  Value zero = arith::ConstantOp::create(rewriter, loc, f, rewriter.getFloatAttr(f, 0.0));
  partialInit = linalg::FillOp::create(rewriter, loc, zero, partialInit).getResult(0);
  using utils::IteratorType;
  auto partial = linalg::GenericOp::create(
      rewriter, loc, TypeRange{partialInit.getType()}, inputs, ValueRange{partialInit}, maps,
      ArrayRef<IteratorType>{IteratorType::parallel, IteratorType::parallel,
                             IteratorType::reduction, IteratorType::parallel,
                             IteratorType::parallel});
  rewriter.cloneRegionBefore(op.getRegion(), partial.getRegion(),
                             partial.getRegion().end());
  // linalg.index of the old loops in terms of the new ones.
  SmallVector<linalg::IndexOp> indices;
  partial.getRegion().walk([&](linalg::IndexOp index) { indices.push_back(index); });
  for (linalg::IndexOp index : indices) {
    rewriter.setInsertionPoint(index);
    Location l = index.getLoc();
    static constexpr int64_t kNewDim[] = {1, -1, 3, 4};
    Value replacement;
    if (index.getDim() == 1) {
      Value chunk = linalg::IndexOp::create(rewriter, l, 0);
      Value inner = linalg::IndexOp::create(rewriter, l, 2);
      Value size = arith::ConstantIndexOp::create(rewriter, l, kc);
      replacement = arith::AddIOp::create(rewriter, l,
                                          arith::MulIOp::create(rewriter, l, chunk, size), inner);
    } else {
      replacement = linalg::IndexOp::create(rewriter, l, kNewDim[index.getDim()]);
    }
    rewriter.replaceOp(index, replacement);
  }
  rewriter.setInsertionPoint(op);
  rewriter.replaceOp(op,
                     mlir::falcon::combinePartialSums(rewriter, loc, partial.getResult(0), init));
  return partial;
}

/// The granularity in k of `op`'s operands: the least common multiple of the
/// divisors of k in its indexing maps (a quantized weight's group, the int4
/// codes' pair), or 1. A block of k that starts and ends on a multiple of it
/// holds whole groups.
static int64_t getKGranularity(linalg::LinalgOp op) {
  int64_t granularity = 1;
  for (AffineMap map : op.getIndexingMapsArray())
    for (AffineExpr result : map.getResults())
      result.walk([&](AffineExpr expr) {
        auto binary = dyn_cast<AffineBinaryOpExpr>(expr);
        if (binary && binary.getKind() == AffineExprKind::FloorDiv)
          if (auto divisor = dyn_cast<AffineConstantExpr>(binary.getRHS()))
            granularity = std::lcm(granularity, divisor.getValue());
      });
  return granularity;
}

/// Fuses the producer of `op`'s weight (a quantized weight's dequantizing
/// generic) into `op`'s body: the weight is then dequantized as the loops
/// (or the register tile) read it. Returns the fused op, or `op` when the
/// weight has no such producer.
static linalg::GenericOp fuseWeightProducer(RewriterBase &rewriter, linalg::GenericOp op) {
  OpOperand &weight = op->getOpOperand(1);
  // Its only use: a second one would keep it whole as an extra result.
  if (!weight.get().getDefiningOp<linalg::GenericOp>() || !weight.get().hasOneUse() ||
      !linalg::areElementwiseOpsFusable(&weight))
    return op;
  rewriter.setInsertionPoint(op);
  FailureOr<linalg::ElementwiseOpFusionResult> fused =
      linalg::fuseElementwiseOps(rewriter, &weight);
  if (failed(fused))
    return op;
  for (Value result : op->getResults())
    rewriter.replaceAllUsesWith(result, fused->replacements.lookup(result));
  rewriter.eraseOp(op);
  return cast<linalg::GenericOp>(fused->fusedOp);
}

/// Prefill (many rows): output columns split over `chunks` threads, then
/// loops (batch, K blocks of `depth`, columns by `cols`, rows by `rows`) whose
/// body is a [rows x cols] register tile. The column and row loops are
/// peeled, so that every tile of the main loops has exactly that static size
/// and keeps the lowering config for falcon-cpu-projection-microkernels,
/// which also handles the last (fewer) rows; the last columns (if any) stay
/// generic loops.
static LogicalResult tilePrefill(RewriterBase &rewriter, linalg::GenericOp generic,
                                 int64_t chunks, int64_t rows, int64_t cols,
                                 int64_t depth) {
  linalg::LinalgOp op = generic;
  int64_t n = op.getStaticLoopRanges()[3];
  if (chunks > 1 && !ShapedType::isDynamic(n)) {
    int64_t chunk = llvm::divideCeil(llvm::divideCeil(n, chunks), cols) * cols;
    if (chunk < n) {
      FailureOr<linalg::LinalgOp> tiled =
          tile(rewriter, op, {0, 0, 0, chunk}, scf::SCFTilingOptions::LoopType::ForallOp);
      if (failed(tiled))
        return failure();
      op = *tiled;
    }
  }
  // A quantized weight's K blocks hold whole groups.
  depth = llvm::alignTo(depth, getKGranularity(op));
  scf::SCFTilingOptions options;
  options.setTileSizes(
      getAsIndexOpFoldResult(rewriter.getContext(), {1, depth, rows, cols}));
  options.setInterchange({0, 1, 3, 2});
  options.setLoopType(scf::SCFTilingOptions::LoopType::ForOp);
  rewriter.setInsertionPoint(op);
  FailureOr<scf::SCFTilingResult> result =
      scf::tileUsingSCF(rewriter, cast<TilingInterface>(op.getOperation()), options);
  if (failed(result) || result->loops.size() != 4)
    return failure();
  rewriter.replaceOp(op, result->replacements);
  // Loops (batch, K block, column tile, row tile). Peeling fails when the
  // tile already divides the range: then there is no remainder.
  scf::ForOp remainder;
  (void)scf::peelForLoopAndSimplifyBounds(
      rewriter, cast<scf::ForOp>(result->loops[3].getOperation()), remainder);
  (void)scf::peelForLoopAndSimplifyBounds(
      rewriter, cast<scf::ForOp>(result->loops[2].getOperation()), remainder);
  return success();
}

/// Streams `rows` weight rows at once in decode projection `op`: its K loop
/// `kLoop` in steps of `rows`, moved inside the column loop, so that a
/// column's partial sum is read and written once per `rows` weight rows
/// instead of once per row (LLVM unrolls the constant inner loop and
/// vectorizes the columns across it). Leaves `op` as it is when `rows` does
/// not divide its K range or covers all of it.
static LogicalResult streamWeightRows(RewriterBase &rewriter, linalg::GenericOp op,
                                      unsigned kLoop, int64_t rows) {
  SmallVector<int64_t> ranges = cast<linalg::LinalgOp>(op.getOperation()).getStaticLoopRanges();
  if (rows < 2 || ShapedType::isDynamic(ranges[kLoop]) || ranges[kLoop] <= rows ||
      ranges[kLoop] % rows != 0)
    return success();
  SmallVector<int64_t> sizes(ranges.size(), 0);
  sizes[kLoop] = rows;
  FailureOr<linalg::LinalgOp> tiled =
      tile(rewriter, op, sizes, scf::SCFTilingOptions::LoopType::ForOp);
  if (failed(tiled))
    return failure();
  SmallVector<unsigned> order;
  for (unsigned loop = 0; loop < ranges.size(); ++loop)
    if (loop != kLoop)
      order.push_back(loop);
  order.push_back(kLoop);
  rewriter.setInsertionPoint(*tiled);
  return linalg::interchangeGenericOp(rewriter, cast<linalg::GenericOp>(tiled->getOperation()),
                                      order);
}

/// Decode (few rows): split-K over `chunks` threads. Each thread streams a
/// contiguous block of weight rows; column blocks would leave each thread
/// half-row strides, which costs more bandwidth than the second core brings
/// (docs/benchmarks.md).
static LogicalResult tileDecode(RewriterBase &rewriter, linalg::GenericOp op,
                                int64_t chunks, int64_t streamedRows,
                                WeightEncodingAttr int8Dot) {
  if (int8Dot) {
    FailureOr<Value> result = mlir::falcon::emitInt8Decode(rewriter, op, int8Dot, chunks);
    if (succeeded(result)) {
      rewriter.replaceOp(op, *result);
      return success();
    }
  }
  int64_t rows = cast<linalg::LinalgOp>(op.getOperation()).getStaticLoopRanges()[1];
  if (ShapedType::isDynamic(rows))
    return success();
  // Blocks of equal size: the most chunks, up to the requested number, that
  // divide the weight rows (falcon-7b's 4544 = 2^6 * 71 on 6 cores: 4) in
  // whole quantization groups.
  int64_t granularity = getKGranularity(op);
  while (chunks > 1 && (rows % chunks != 0 || (rows / chunks) % granularity != 0))
    --chunks;
  if (chunks < 2)
    return streamWeightRows(rewriter, op, /*kLoop=*/1, streamedRows);
  linalg::LinalgOp partial = splitK(rewriter, op, chunks);
  SmallVector<int64_t> chunkTiles(partial.getNumLoops(), 0);
  chunkTiles[outputLoop(partial, 0)] = 1;
  FailureOr<linalg::LinalgOp> chunk =
      tile(rewriter, partial, chunkTiles, scf::SCFTilingOptions::LoopType::ForallOp);
  if (failed(chunk))
    return failure();
  // Loops (c, b, k', s, n).
  return streamWeightRows(rewriter, cast<linalg::GenericOp>(chunk->getOperation()),
                          /*kLoop=*/2, streamedRows);
}

/// Weight rows a decode projection streams at once (streamWeightRows).
static llvm::cl::opt<int64_t> kDecodeStreamedRows(
    "falcon-decode-streamed-rows", llvm::cl::init(8), llvm::cl::Hidden,
    llvm::cl::desc("Weight rows a decode projection streams at once (1: one at a time)"));

namespace {
struct FalconCPUTileProjectionsPass
    : public mlir::falcon::impl::FalconCPUTileProjectionsBase<
          FalconCPUTileProjectionsPass> {
  void runOnOperation() override {
    SmallVector<linalg::GenericOp> projections;
    getOperation().walk([&](linalg::GenericOp op) {
      LoweringConfigAttr config = getLoweringConfig(op);
      if (config && !config.getRegisterTile().empty() && op.getNumLoops() == 4)
        projections.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (linalg::GenericOp op : projections) {
      LoweringConfigAttr config = getLoweringConfig(op);
      int64_t parallelChunks = config.getThreads();
      int64_t tileRows = config.getRegisterTile()[0];
      int64_t tileCols = config.getRegisterTile()[1];
      int64_t tileDepth = config.getRegisterTile()[2];
      // One compiled function serves every sequence length: a sequence of at
      // least `rows` rows takes the register-tiled path, a shorter one
      // (decode) the split-K path.
      // With int8 activations at decode, what the weight's codes encode.
      WeightEncodingAttr int8Dot;
      if (auto producer = op.getDpsInputs()[1].getDefiningOp<linalg::GenericOp>();
          producer && config.getDecodeActivationBits() == 8)
        int8Dot = producer->getAttrOfType<WeightEncodingAttr>(
            FalconDialect::kDequantizeAttrName);
      // A quantized weight is dequantized in the projection's body, as its
      // loops read it (never whole).
      op = fuseWeightProducer(rewriter, op);
      op->setAttr(FalconDialect::kLoweringConfigAttrName, config);
      Location loc = op.getLoc();
      rewriter.setInsertionPoint(op);
      Value seq = tensor::DimOp::create(rewriter, loc, op.getDpsInputs()[0], 1);
      Value prefill = arith::CmpIOp::create(
          rewriter, loc, arith::CmpIPredicate::sge, seq,
          arith::ConstantIndexOp::create(rewriter, loc, tileRows));
      auto ifOp = scf::IfOp::create(rewriter, loc, op->getResultTypes(), prefill,
                                    /*withElseRegion=*/true);
      auto cloneInto = [&](Block *block) {
        rewriter.setInsertionPointToStart(block);
        auto clone = cast<linalg::GenericOp>(rewriter.clone(*op));
        scf::YieldOp::create(rewriter, loc, clone->getResults());
        return clone;
      };
      linalg::GenericOp prefillOp = cloneInto(ifOp.thenBlock());
      linalg::GenericOp decodeOp = cloneInto(ifOp.elseBlock());
      decodeOp->removeAttr(FalconDialect::kLoweringConfigAttrName);
      rewriter.replaceOp(op, ifOp.getResults());
      if (failed(tilePrefill(rewriter, prefillOp, parallelChunks, tileRows, tileCols,
                             tileDepth)) ||
          failed(tileDecode(rewriter, decodeOp, parallelChunks, kDecodeStreamedRows, int8Dot))) {
        ifOp.emitOpError("projection could not be tiled");
        return signalPassFailure();
      }
    }
  }
};

struct FalconCPUParallelHeadsPass
    : public mlir::falcon::impl::FalconCPUParallelHeadsBase<FalconCPUParallelHeadsPass> {
  void runOnOperation() override {
    SmallVector<linalg::GenericOp> ops;
    getOperation().walk([&](linalg::GenericOp op) {
      if (LoweringConfigAttr config = getLoweringConfig(op); config && config.getThreadDim() >= 0)
        ops.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (linalg::GenericOp op : ops) {
      LoweringConfigAttr config = getLoweringConfig(op);
      int64_t index = config.getThreadDim();
      int64_t parallelChunks = config.getThreads();
      SmallVector<int64_t> ranges = cast<linalg::LinalgOp>(op.getOperation()).getStaticLoopRanges();
      if (index >= int64_t(ranges.size()) || ShapedType::isDynamic(ranges[index])) {
        op.emitOpError("lowering config's thread_dim must name a static loop dimension");
        return signalPassFailure();
      }
      int64_t chunk = llvm::divideCeil(ranges[index], parallelChunks);
      if (chunk >= ranges[index])
        continue;
      SmallVector<int64_t> sizes(ranges.size(), 0);
      sizes[index] = chunk;
      if (failed(tile(rewriter, op, sizes, scf::SCFTilingOptions::LoopType::ForallOp))) {
        op.emitOpError("could not be tiled for threads");
        return signalPassFailure();
      }
    }
  }
};
} // namespace
