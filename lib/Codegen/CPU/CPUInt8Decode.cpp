//===- CPUInt8Decode.cpp - decode of quantized weights as int8 dot products -===//
//
// A decode projection y[b,s,n] += x[b,s,k] * W[k,n] whose W is an int8 or
// int4 weight (codes c[k,n], an f16 scale and zero point per group of G
// inputs) reads one byte (or half of one) per weight, so its f32 split-K
// loops are bound by the f32 work of dequantizing, not by the memory. Here
// the activation row is quantized instead, to int8 in blocks of Q = min(16 pack, G)
// inputs (16 rows of code bytes), a[k] = round(x[k] / sx), sx = max|x| / 127 over the block, and
//
//   y[n] += sum over blocks: sx * scale[g,n] * (sum_k u[k,n] a[k] - z[g,n] sum_k a[k])
//
// with u = c + 2^(bits-1) the unsigned code and z the unsigned zero point
// (2^(bits-1) when symmetric). The integer sums are AVX512-VNNI's vpdpbusd:
// each 32-bit lane of a vector sums the products of four unsigned bytes with
// four signed ones, 64 products per instruction. Its lanes need the four
// codes of one column together; the codes are stored [K / pack, N] (inputs
// along the rows), so four rows of 16 columns are read and transposed into
// 16 lanes of 4 bytes with one byte shuffle. An int4 byte holds two inputs,
// so four byte rows hold 8 inputs: the low nibbles (inputs 0, 2, 4, 6 of
// them) and the high ones (1, 3, 5, 7) make two vpdpbusd, with activations
// packed in the same order.
//
// The threads split the weight rows as the f32 decode does (each streams its
// own contiguous block into its own partial sums). The block's integer sums
// are exact (|sum| < 2^24, so the f32 correction is exact too); the
// activation's rounding is what the quality tables measure
// (docs/precision.md).
//
//===----------------------------------------------------------------------===//

#include "CPUKernels.h"

#include "mlir/Dialect/Tensor/Utils/Utils.h"

#include <numeric>

namespace mlir::falcon {
#define GEN_PASS_DEF_FALCONCPULOWERDOTBYTES
#include "falcon/Codegen/CPU/Passes.h.inc"
} // namespace mlir::falcon

using namespace mlir;
using namespace mlir::falcon;

namespace {
/// Lanes of a vpdpbusd: 16 i32 of 512 bits.
constexpr int64_t kLanes = 16;
/// Rows of codes per activation block, at most: 16 (16 int8 inputs, 32 int4
/// ones). A block's rows are streamed side by side, and more than 16 streams
/// a row apart read slower (int8 decode at 32 rows: 15.5 tokens/s on the
/// falcon-7b shape, 16 rows: docs/benchmarks.md).
constexpr int64_t kBlockCodeRows = 16;

/// What a quantized projection reads, and how.
struct QuantizedProjection {
  Value x, codes, scales, zeroPoints; // zeroPoints: null when symmetric
  int64_t bits, pack, group, block, inputs, outputs;
};

/// The activation code of `x` in a block whose largest magnitude is `amax`:
/// round(x * 127 / amax) as i32 (0 for a block of zeros).
Value quantizeActivation(OpBuilder &b, Location l, Value x, Value amax) {
  Type f32 = b.getF32Type();
  Value zero = arith::ConstantOp::create(b, l, f32, b.getF32FloatAttr(0));
  Value limit = arith::ConstantOp::create(b, l, f32, b.getF32FloatAttr(127));
  Value positive = arith::CmpFOp::create(b, l, arith::CmpFPredicate::OGT, amax, zero);
  Value inverse = arith::SelectOp::create(b, l, positive,
                                          arith::DivFOp::create(b, l, limit, amax), zero);
  Value scaled = math::RoundEvenOp::create(b, l, arith::MulFOp::create(b, l, x, inverse));
  return arith::FPToSIOp::create(b, l, b.getI32Type(), scaled);
}

/// A tensor of `shape` (sizes as values or constants) filled with `value`.
Value filled(OpBuilder &b, Location l, ArrayRef<OpFoldResult> shape, TypedAttr value) {
  Value empty = tensor::EmptyOp::create(b, l, shape, value.getType());
  Value constant = arith::ConstantOp::create(b, l, value);
  return linalg::FillOp::create(b, l, constant, empty).getResult(0);
}

/// The activations quantized per block: their largest magnitude per block
/// [B, S, K / Q] (the scale is that / 127), the sum of their codes per block
/// [B, S, K / Q] (f32), and the codes packed four to an i32 [B, S, K / 4] in
/// the order the weight lanes take them.
struct QuantizedActivations {
  Value amax, sums, quads;
};

QuantizedActivations quantizeActivations(OpBuilder &b, Location loc,
                                         const QuantizedProjection &p) {
  MLIRContext *context = b.getContext();
  using utils::IteratorType;
  SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(b, loc, p.x);
  SmallVector<OpFoldResult> blockShape = {sizes[0], sizes[1],
                                          b.getIndexAttr(p.inputs / p.block)};
  AffineExpr d0, d1, d2, d3;
  bindDims(context, d0, d1, d2, d3);
  // x read as [B, S, K / Q, Q] by (b, s, block, j), the per-block values by
  // (b, s, block).
  auto xType = cast<RankedTensorType>(p.x.getType());
  Value blocked = tensor::ExpandShapeOp::create(
      b, loc,
      RankedTensorType::get({xType.getDimSize(0), xType.getDimSize(1), p.inputs / p.block,
                             p.block},
                            xType.getElementType()),
      p.x, ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3}},
      {sizes[0], sizes[1], b.getIndexAttr(p.inputs / p.block), b.getIndexAttr(p.block)});
  AffineMap xByBlock = AffineMap::get(4, 0, {d0, d1, d2, d3}, context);
  AffineMap perBlock = AffineMap::get(4, 0, {d0, d1, d2}, context);
  SmallVector<IteratorType> reduction = {IteratorType::parallel, IteratorType::parallel,
                                         IteratorType::parallel, IteratorType::reduction};
  Type f32 = b.getF32Type();
  // The initial value of both per-block reductions.
  Value blockZeros = filled(b, loc, blockShape, b.getF32FloatAttr(0));
  auto amax = linalg::GenericOp::create(
      b, loc, TypeRange{blockZeros.getType()}, ValueRange{blocked}, ValueRange{blockZeros},
      ArrayRef<AffineMap>{xByBlock, perBlock}, reduction,
      [&](OpBuilder &nb, Location l, ValueRange args) {
        Value magnitude = math::AbsFOp::create(nb, l, args[0]);
        linalg::YieldOp::create(nb, l,
                                ValueRange{arith::MaximumFOp::create(nb, l, args[1], magnitude)});
      });
  Value amaxValue = amax.getResult(0);
  auto sums = linalg::GenericOp::create(
      b, loc, TypeRange{blockZeros.getType()}, ValueRange{blocked, amaxValue},
      ValueRange{blockZeros},
      ArrayRef<AffineMap>{xByBlock, perBlock, perBlock}, reduction,
      [&](OpBuilder &nb, Location l, ValueRange args) {
        Value code = quantizeActivation(nb, l, args[0], args[1]);
        Value value = arith::SIToFPOp::create(nb, l, f32, code);
        linalg::YieldOp::create(nb, l, ValueRange{arith::AddFOp::create(nb, l, args[2], value)});
      });
  // quads[b, s, q]: byte j holds the code of input 4q + j (int8), or of
  // input 8 (q / 2) + 2j + q % 2 (int4: the low nibbles of four byte rows
  // are the even inputs, the high ones the odd).
  Type i32 = b.getI32Type();
  SmallVector<OpFoldResult> quadShape = {sizes[0], sizes[1], b.getIndexAttr(p.inputs / 4)};
  Value quadInit = tensor::EmptyOp::create(b, loc, quadShape, i32);
  AffineMap quadMap = AffineMap::get(3, 0, {d0, d1, d2}, context);
  AffineMap quadBlock =
      AffineMap::get(3, 0, {d0, d1, d2.floorDiv(p.block / 4)}, context);
  Value x = p.x;
  int64_t pack = p.pack;
  auto quads = linalg::GenericOp::create(
      b, loc, TypeRange{quadInit.getType()}, ValueRange{amaxValue}, ValueRange{quadInit},
      ArrayRef<AffineMap>{quadBlock, quadMap},
      SmallVector<IteratorType>(3, IteratorType::parallel),
      [&](OpBuilder &nb, Location l, ValueRange args) {
        Value batch = linalg::IndexOp::create(nb, l, 0);
        Value row = linalg::IndexOp::create(nb, l, 1);
        Value q = linalg::IndexOp::create(nb, l, 2);
        AffineExpr e = nb.getAffineDimExpr(0);
        Value word = arith::ConstantIntOp::create(nb, l, i32, 0);
        Value byteMask = arith::ConstantIntOp::create(nb, l, i32, 255);
        for (int64_t j = 0; j < 4; ++j) {
          AffineExpr input = pack == 1 ? e * 4 + j : (e.floorDiv(2) * 8 + 2 * j + e % 2);
          Value k = affine::AffineApplyOp::create(nb, l, AffineMap::get(1, 0, input), q);
          Value value = tensor::ExtractOp::create(nb, l, x, ValueRange{batch, row, k});
          Value code = arith::AndIOp::create(nb, l, quantizeActivation(nb, l, value, args[0]),
                                             byteMask);
          if (j > 0)
            code = arith::ShLIOp::create(nb, l, code,
                                         arith::ConstantIntOp::create(nb, l, i32, 8 * j));
          word = arith::OrIOp::create(nb, l, word, code);
        }
        linalg::YieldOp::create(nb, l, ValueRange{word});
      });
  return {amaxValue, sums.getResult(0), quads.getResult(0)};
}

/// Four rows of 16 codes, from `row` on, as 16 lanes of four bytes (byte j
/// of lane n: row + j, column n).
Value transposedCodes(OpBuilder &b, Location l, Value codes, Value row, Value column) {
  auto i8x16 = VectorType::get({kLanes}, b.getI8Type());
  Value padding = arith::ConstantIntOp::create(b, l, b.getI8Type(), 0);
  SmallVector<Value> rows;
  for (int64_t j = 0; j < 4; ++j) {
    Value r = j == 0 ? row
                     : arith::AddIOp::create(b, l, row, arith::ConstantIndexOp::create(b, l, j));
    rows.push_back(vector::TransferReadOp::create(b, l, i8x16, codes, ValueRange{r, column},
                                                  padding, ArrayRef<bool>{true}));
  }
  SmallVector<int64_t> concat(2 * kLanes);
  std::iota(concat.begin(), concat.end(), 0);
  Value low = vector::ShuffleOp::create(b, l, rows[0], rows[1], concat);
  Value high = vector::ShuffleOp::create(b, l, rows[2], rows[3], concat);
  SmallVector<int64_t> transpose(4 * kLanes);
  for (int64_t n = 0; n < kLanes; ++n)
    for (int64_t j = 0; j < 4; ++j)
      transpose[4 * n + j] = j * kLanes + n;
  Value bytes = vector::ShuffleOp::create(b, l, low, high, transpose);
  return vector::BitCastOp::create(b, l, VectorType::get({kLanes}, b.getI32Type()), bytes);
}

/// acc + the lane-wise dot products of `unsignedBytes` and `signedBytes`.
Value dotBytes(OpBuilder &b, Location l, Value acc, Value unsignedBytes, Value signedBytes) {
  return DotBytesOp::create(b, l, acc, unsignedBytes, signedBytes);
}

/// The integer sums of one block of activations (row `b`, `s` of `quads`)
/// with 16 columns of the codes from `column` on: vector<16xi32>.
Value blockDot(OpBuilder &b, Location l, const QuantizedProjection &p, Value quads,
               Value batch, Value seq, Value block, Value column) {
  Type i32 = b.getI32Type();
  auto i32x16 = VectorType::get({kLanes}, i32);
  auto splat = [&](int32_t value) {
    return arith::ConstantOp::create(b, l,
                                     DenseElementsAttr::get(i32x16, ArrayRef<int32_t>(value)));
  };
  Value acc = splat(0);
  // The codes' first row and the activations' first quad of the block.
  Value firstRow = arith::MulIOp::create(
      b, l, block, arith::ConstantIndexOp::create(b, l, p.block / p.pack));
  Value firstQuad =
      arith::MulIOp::create(b, l, block, arith::ConstantIndexOp::create(b, l, p.block / 4));
  auto activation = [&](int64_t quad) {
    Value index = arith::AddIOp::create(b, l, firstQuad, arith::ConstantIndexOp::create(b, l, quad));
    Value word = tensor::ExtractOp::create(b, l, quads, ValueRange{batch, seq, index});
    return vector::BroadcastOp::create(b, l, i32x16, word);
  };
  // Codes are signed; + 2^(bits-1) (in every byte, or nibble) is unsigned.
  Value offset = splat(p.bits == 8 ? int32_t(0x80808080u) : int32_t(0x88888888u));
  Value nibbles = splat(0x0F0F0F0F);
  Value four = splat(4);
  for (int64_t group = 0; group < p.block / 4 / p.pack; ++group) {
    Value row = arith::AddIOp::create(b, l, firstRow,
                                      arith::ConstantIndexOp::create(b, l, 4 * group));
    Value codes = arith::XOrIOp::create(b, l, transposedCodes(b, l, p.codes, row, column), offset);
    if (p.pack == 1) {
      acc = dotBytes(b, l, acc, codes, activation(group));
      continue;
    }
    Value low = arith::AndIOp::create(b, l, codes, nibbles);
    Value high = arith::AndIOp::create(b, l, arith::ShRUIOp::create(b, l, codes, four), nibbles);
    acc = dotBytes(b, l, acc, low, activation(2 * group));
    acc = dotBytes(b, l, acc, high, activation(2 * group + 1));
  }
  return acc;
}
} // namespace

Value mlir::falcon::combinePartialSums(OpBuilder &builder, Location loc, Value partial,
                                       Value init) {
  MLIRContext *context = builder.getContext();
  auto map = [&](unsigned numDims, ArrayRef<unsigned> dims) {
    return AffineMap::getMultiDimMapWithTargets(numDims, dims, context);
  };
  using utils::IteratorType;
  // Loops (b, s, n, c).
  auto combine = linalg::GenericOp::create(
      builder, loc, TypeRange{init.getType()}, ValueRange{partial}, ValueRange{init},
      ArrayRef<AffineMap>{map(4, {3, 0, 1, 2}), map(4, {0, 1, 2})},
      ArrayRef<IteratorType>{IteratorType::parallel, IteratorType::parallel,
                             IteratorType::parallel, IteratorType::reduction},
      [&](OpBuilder &b, Location l, ValueRange args) {
        linalg::YieldOp::create(b, l,
                                ValueRange{arith::AddFOp::create(b, l, args[1], args[0])});
      });
  return combine.getResult(0);
}

FailureOr<Value> mlir::falcon::emitInt8Decode(RewriterBase &rewriter, linalg::GenericOp op,
                                              WeightEncodingAttr encoding, int64_t chunks) {
  // What the projection reads: [x, codes, scales, zero points?] (the order
  // falcon-quantize-weights' dequantizing generic fused in).
  SmallVector<Value> inputs = op.getDpsInputs();
  bool symmetric = encoding.getSymmetric();
  if (inputs.size() != (symmetric ? 3u : 4u))
    return failure();
  QuantizedProjection p;
  p.x = inputs[0];
  p.codes = inputs[1];
  p.scales = inputs[2];
  p.zeroPoints = symmetric ? Value() : inputs[3];
  p.bits = encoding.getQuantization() == Quantization::Int8 ? 8 : 4;
  p.pack = encoding.getPack();
  p.group = encoding.getGroupSize();
  auto xType = cast<RankedTensorType>(p.x.getType());
  auto codesType = cast<RankedTensorType>(p.codes.getType());
  auto yType = cast<RankedTensorType>(op.getDpsInits()[0].getType());
  p.inputs = xType.getDimSize(2);
  p.outputs = yType.getDimSize(2);
  p.block = std::min(kBlockCodeRows * p.pack, p.group);
  if (p.pack != 8 / p.bits || !codesType.getElementType().isInteger(8) ||
      !xType.getElementType().isF32() || ShapedType::isDynamic(p.inputs) ||
      ShapedType::isDynamic(p.outputs) || p.outputs % kLanes != 0 || p.group % p.block != 0 ||
      p.block % (4 * p.pack) != 0 || p.inputs % p.group != 0 ||
      codesType.getDimSize(0) * p.pack != p.inputs)
    return failure();
  // Equal blocks of whole groups per thread (as the f32 decode splits).
  int64_t blocks = p.inputs / p.block, groupBlocks = p.group / p.block;
  while (chunks > 1 && (blocks % chunks != 0 || (blocks / chunks) % groupBlocks != 0))
    --chunks;

  Location loc = op.getLoc();
  rewriter.setInsertionPoint(op);
  QuantizedActivations activations = quantizeActivations(rewriter, loc, p);
  Value init = op.getDpsInits()[0];
  SmallVector<OpFoldResult> ySizes = tensor::getMixedSizes(rewriter, loc, init);
  Type f32 = rewriter.getF32Type();
  Value partials = filled(rewriter, loc,
                          {rewriter.getIndexAttr(chunks), ySizes[0], ySizes[1], ySizes[2]},
                          rewriter.getF32FloatAttr(0));
  auto forall = scf::ForallOp::create(rewriter, loc,
                                      ArrayRef<OpFoldResult>{rewriter.getIndexAttr(chunks)},
                                      ValueRange{partials}, std::nullopt);
  Value chunk = forall.getInductionVars()[0];
  Value shared = forall.getRegionIterArgs()[0];
  rewriter.setInsertionPointToStart(forall.getBody());
  Location l = loc;
  OpBuilder &b = rewriter;
  SmallVector<OpFoldResult> offsets = {chunk, b.getIndexAttr(0), b.getIndexAttr(0),
                                       b.getIndexAttr(0)};
  SmallVector<OpFoldResult> sliceSizes = {b.getIndexAttr(1), ySizes[0], ySizes[1], ySizes[2]};
  SmallVector<OpFoldResult> strides(4, b.getIndexAttr(1));
  Value slice = tensor::ExtractSliceOp::create(b, l, shared, offsets, sliceSizes, strides);
  Value c0 = arith::ConstantIndexOp::create(b, l, 0);
  Value c1 = arith::ConstantIndexOp::create(b, l, 1);
  Value perChunk = arith::ConstantIndexOp::create(b, l, blocks / chunks);
  Value firstBlock = arith::MulIOp::create(b, l, chunk, perChunk);
  Value lastBlock = arith::AddIOp::create(b, l, firstBlock, perChunk);
  Value batches = tensor::DimOp::create(b, l, p.x, 0);
  Value rows = tensor::DimOp::create(b, l, p.x, 1);
  Value columns = arith::ConstantIndexOp::create(b, l, p.outputs / kLanes);
  auto f32x16 = VectorType::get({kLanes}, f32);
  auto f16x16 = VectorType::get({kLanes}, b.getF16Type());
  Value halfRange =
      arith::ConstantOp::create(b, l, DenseElementsAttr::get(
                                          f32x16, ArrayRef<float>(float(1 << (p.bits - 1)))));
  Value f16Zero = arith::ConstantOp::create(b, l, b.getF16Type(), b.getF16FloatAttr(0));
  Value f32Zero = arith::ConstantOp::create(b, l, f32, b.getF32FloatAttr(0));
  Value limit = arith::ConstantOp::create(b, l, f32, b.getF32FloatAttr(127));
  Value lanes = arith::ConstantIndexOp::create(b, l, kLanes);
  Value blocksPerGroup = arith::ConstantIndexOp::create(b, l, groupBlocks);
  // Loops (block of this thread's rows, batch, row, columns by 16): the
  // block's weight rows are streamed once per activation row.
  auto blockLoop = scf::ForOp::create(
      b, l, firstBlock, lastBlock, c1, ValueRange{slice},
      [&](OpBuilder &b, Location l, Value block, ValueRange blockAcc) {
        Value group = arith::DivUIOp::create(b, l, block, blocksPerGroup);
        auto batchLoop = scf::ForOp::create(
            b, l, c0, batches, c1, blockAcc,
            [&](OpBuilder &b, Location l, Value batch, ValueRange batchAcc) {
              auto rowLoop = scf::ForOp::create(
                  b, l, c0, rows, c1, batchAcc,
                  [&](OpBuilder &b, Location l, Value seq, ValueRange rowAcc) {
                    Value amax = tensor::ExtractOp::create(b, l, activations.amax,
                                                           ValueRange{batch, seq, block});
                    Value scale = arith::DivFOp::create(b, l, amax, limit);
                    Value sum = tensor::ExtractOp::create(b, l, activations.sums,
                                                          ValueRange{batch, seq, block});
                    Value scaleSplat = vector::BroadcastOp::create(b, l, f32x16, scale);
                    Value sumSplat = vector::BroadcastOp::create(b, l, f32x16, sum);
                    auto columnLoop = scf::ForOp::create(
                        b, l, c0, columns, c1, rowAcc,
                        [&](OpBuilder &b, Location l, Value vector, ValueRange acc) {
                          Value column = arith::MulIOp::create(b, l, vector, lanes);
                          Value dot = arith::SIToFPOp::create(
                              b, l, f32x16,
                              blockDot(b, l, p, activations.quads, batch, seq, block, column));
                          // Row `group` of f16 [groups, N] from `column` on, in f32.
                          auto groupRow = [&](Value halves) -> Value {
                            Value read = vector::TransferReadOp::create(
                                b, l, f16x16, halves, ValueRange{group, column}, f16Zero,
                                ArrayRef<bool>{true});
                            return arith::ExtFOp::create(b, l, f32x16, read);
                          };
                          Value zero = halfRange;
                          if (p.zeroPoints)
                            zero = arith::AddFOp::create(b, l, groupRow(p.zeroPoints), halfRange);
                          // sum u a - z sum a, exact in f32.
                          Value centred = vector::FMAOp::create(
                              b, l, arith::NegFOp::create(b, l, zero), sumSplat, dot);
                          Value weightScale = groupRow(p.scales);
                          Value factor = arith::MulFOp::create(b, l, weightScale, scaleSplat);
                          SmallVector<Value> at = {c0, batch, seq, column};
                          Value y = vector::TransferReadOp::create(b, l, f32x16, acc[0],
                                                                   at, f32Zero,
                                                                   ArrayRef<bool>{true});
                          y = vector::FMAOp::create(b, l, factor, centred, y);
                          scf::YieldOp::create(
                              b, l,
                              vector::TransferWriteOp::create(b, l, y, acc[0], at,
                                                              ArrayRef<bool>{true})
                                  .getResult());
                        });
                    scf::YieldOp::create(b, l, columnLoop.getResults());
                  });
              scf::YieldOp::create(b, l, rowLoop.getResults());
            });
        scf::YieldOp::create(b, l, batchLoop.getResults());
      });
  rewriter.setInsertionPointToStart(forall.getTerminator().getBody());
  tensor::ParallelInsertSliceOp::create(rewriter, loc, blockLoop.getResult(0), shared, offsets,
                                        sliceSizes, strides);
  rewriter.setInsertionPointAfter(forall);
  return combinePartialSums(rewriter, loc, forall.getResult(0), init);
}

namespace {
struct FalconCPULowerDotBytesPass
    : public mlir::falcon::impl::FalconCPULowerDotBytesBase<FalconCPULowerDotBytesPass> {
  void runOnOperation() override {
    auto module = getOperation()->getParentOfType<ModuleOp>();
    if (!module)
      return signalPassFailure();
    FailureOr<CPUTargetAttr> target = getCPUTarget(module);
    if (failed(target))
      return signalPassFailure();
    // Without AVX512-VNNI, the AVX2 form (int4 codes only: the strategy
    // asks for no other there).
    bool vnni = hasIntegerDecode(*target, /*weightBits=*/8);
    IRRewriter rewriter(&getContext());
    getOperation().walk([&](DotBytesOp op) {
      rewriter.setInsertionPoint(op);
      Location loc = op.getLoc();
      if (vnni) {
        // The intrinsic takes the bytes as <64 x i8>.
        auto bytes = VectorType::get({4 * kLanes}, rewriter.getI8Type());
        Value lhs = vector::BitCastOp::create(rewriter, loc, bytes, op.getLhs());
        Value rhs = vector::BitCastOp::create(rewriter, loc, bytes, op.getRhs());
        rewriter.replaceOpWithNewOp<LLVM::CallIntrinsicOp>(
            op, op.getType(), rewriter.getStringAttr("llvm.x86.avx512.vpdpbusd.512"),
            ValueRange{op.getAcc(), lhs, rhs});
        return;
      }
      // Each 256-bit half: vpmaddubsw sums the unsigned-by-signed products of
      // byte pairs into 16-bit lanes (exact while the unsigned bytes are
      // below 128: |2 * 128 * 127| < 2^15), vpmaddwd by ones sums those pairs
      // into the 32-bit lanes.
      constexpr int64_t kHalf = kLanes / 2;
      auto i32x8 = VectorType::get({kHalf}, rewriter.getI32Type());
      auto i8x32 = VectorType::get({4 * kHalf}, rewriter.getI8Type());
      auto i16x16 = VectorType::get({2 * kHalf}, rewriter.getI16Type());
      Value ones = arith::ConstantOp::create(
          rewriter, loc, DenseElementsAttr::get(i16x16, rewriter.getI16IntegerAttr(1)));
      Value result = op.getAcc();
      for (int64_t half = 0; half < 2; ++half) {
        auto slice = [&](Value vector) {
          return vector::ExtractStridedSliceOp::create(rewriter, loc, vector, {half * kHalf},
                                                       {kHalf}, {1});
        };
        Value lhs = vector::BitCastOp::create(rewriter, loc, i8x32, slice(op.getLhs()));
        Value rhs = vector::BitCastOp::create(rewriter, loc, i8x32, slice(op.getRhs()));
        Value pairs = LLVM::CallIntrinsicOp::create(
                          rewriter, loc, i16x16,
                          rewriter.getStringAttr("llvm.x86.avx2.pmadd.ub.sw"),
                          ValueRange{lhs, rhs})
                          ->getResult(0);
        Value quads = LLVM::CallIntrinsicOp::create(
                          rewriter, loc, i32x8, rewriter.getStringAttr("llvm.x86.avx2.pmadd.wd"),
                          ValueRange{pairs, ones})
                          ->getResult(0);
        Value sum = arith::AddIOp::create(rewriter, loc, slice(op.getAcc()), quads);
        result = vector::InsertStridedSliceOp::create(rewriter, loc, sum, result,
                                                      {half * kHalf}, {1});
      }
      rewriter.replaceOp(op, result);
    });
  }
};
} // namespace
