//===- QuantizeWeights.cpp - weight-only int8/int4 projections ------------===//
//
// A projection y[b,s,n] += x[b,s,k] * W[k,n] whose W is a per-layer param
// becomes
//
//   codes  = falcon.param {quantization, part = codes}       [K / pack, N] i8
//   scales = falcon.param {quantization, part = scales}      [K / g, N] f16
//   W'     = linalg.generic (k, n): (code(k, n) - zero(k / g, n)) * scale(k / g, n)
//   y[b,s,n] += x[b,s,k] * W'[k,n]
//
// (with act-order, x[b,s,order[k]] for x[b,s,k], `order` a param part too)
// with int4 codes two per byte along k (k even in the low nibble), each
// extracted from the byte sign-extended to i32. The
// target's tiling fuses W' into the projection's tiles; nothing here is
// target-specific but the [in, out] layout the projection reads.
//
//===----------------------------------------------------------------------===//

#include "falcon/Conversion/Passes.h"
#include "falcon/Support/WeightTransform.h"
#include "falcon/Transforms/Passes.h"

#include "Falcon/IR/FalconOps.h"

#define DEBUG_TYPE "falcon-quantize-weights"

namespace mlir::falcon {
#define GEN_PASS_DEF_FALCONQUANTIZEWEIGHTS
#include "falcon/Transforms/Passes.h.inc"
} // namespace mlir::falcon

using namespace mlir;
using namespace mlir::falcon;

namespace {
struct FalconQuantizeWeightsPass
    : public mlir::falcon::impl::FalconQuantizeWeightsBase<FalconQuantizeWeightsPass> {
  using Base::Base;

  void runOnOperation() override {
    for (int64_t width : {int64_t(bits), int64_t(lmHeadBits)}) {
      if (width == 0)
        continue;
      ::falcon::WeightQuantization scheme{unsigned(width), groupSize, symmetric};
      if (std::string problem = ::falcon::checkWeightQuantization(scheme); !problem.empty()) {
        getOperation().emitError() << "falcon-quantize-weights: " << problem;
        return signalPassFailure();
      }
    }
    if (lmHeadBits != 0 && lmHeadBits != 8) {
      getOperation().emitError() << "falcon-quantize-weights: the LM head is quantized to int8 "
                                    "or not at all, not to "
                                 << int64_t(lmHeadBits) << " bits";
      return signalPassFailure();
    }
    // (projection, bits): a per-layer weight is a decoder layer's, another
    // one the LM head's.
    SmallVector<std::pair<linalg::GenericOp, int64_t>> projections;
    getOperation().walk([&](linalg::GenericOp op) {
      if (!isProjection(op))
        return;
      auto param = op.getDpsInputs()[1].getDefiningOp<ParamOp>();
      WeightEncodingAttr encoding = param ? param.getEncodingAttr() : WeightEncodingAttr();
      if (!param || (encoding && encoding.getQuantization() != Quantization::None))
        return;
      int64_t width = param.getLayer() ? int64_t(bits) : int64_t(lmHeadBits);
      if (width != 0)
        projections.push_back({op, width});
    });
    for (auto [op, width] : projections)
      quantize(op, width);
  }

  /// The param `part` of `param`'s weight quantized with `group` inputs per
  /// scale.
  Value createPart(OpBuilder &builder, ParamOp param, int64_t bits, int64_t group,
                   QuantizedPart part, RankedTensorType type) {
    WeightEncodingAttr existing = param.getEncodingAttr();
    auto encoding = WeightEncodingAttr::get(
        builder.getContext(), existing ? existing.getSlice() : ArrayRef<int64_t>(),
        existing ? existing.getGather() : ArrayRef<int64_t>(),
        existing ? existing.getPermutation() : ArrayRef<int64_t>(),
        bits == 8 ? Quantization::Int8 : Quantization::Int4, group, 8 / bits, symmetric, part);
    return ParamOp::create(builder, param.getLoc(), type, param.getNameAttr(), param.getLayer(),
                           encoding);
  }

  /// x'[b, s, k] = x[b, s, order[k]].
  static Value gatherInputs(OpBuilder &builder, Location loc, Value x, Value order) {
    auto type = cast<RankedTensorType>(x.getType());
    MLIRContext *context = builder.getContext();
    Value empty = tensor::EmptyOp::create(builder, loc, tensor::getMixedSizes(builder, loc, x),
                                          type.getElementType());
    AffineExpr k = builder.getAffineDimExpr(2);
    SmallVector<AffineMap> maps = {AffineMap::get(3, 0, {k}, context),
                                   builder.getMultiDimIdentityMap(3)};
    auto gather = linalg::GenericOp::create(
        builder, loc, TypeRange{empty.getType()}, ValueRange{order}, ValueRange{empty}, maps,
        SmallVector<utils::IteratorType>(3, utils::IteratorType::parallel),
        [&](OpBuilder &b, Location l, ValueRange args) {
          Value input = arith::IndexCastOp::create(b, l, b.getIndexType(), args[0]);
          Value batch = linalg::IndexOp::create(b, l, 0);
          Value position = linalg::IndexOp::create(b, l, 1);
          Value value = tensor::ExtractOp::create(b, l, x, ValueRange{batch, position, input});
          linalg::YieldOp::create(b, l, value);
        });
    return gather.getResult(0);
  }

  void quantize(linalg::GenericOp op, int64_t bits) {
    auto param = op.getDpsInputs()[1].getDefiningOp<ParamOp>();
    auto weightType = cast<RankedTensorType>(param.getType());
    int64_t inputs = weightType.getDimSize(0), outputs = weightType.getDimSize(1);
    llvm::Expected<int64_t> group =
        ::falcon::getEffectiveGroupSize(param.getName(), inputs, groupSize);
    if (!group) {
      // A toy model's odd width: the weight stays as stored.
      llvm::consumeError(group.takeError());
      return;
    }
    MLIRContext *context = op.getContext();
    Location loc = op.getLoc();
    OpBuilder builder(op);
    int64_t pack = 8 / bits;
    Type f32 = cast<RankedTensorType>(op.getDpsInits()[0].getType()).getElementType();
    Type i8 = builder.getI8Type(), f16 = builder.getF16Type();
    SmallVector<Value> parts = {
        createPart(builder, param, bits, *group, QuantizedPart::Codes,
                   RankedTensorType::get({inputs / pack, outputs}, i8)),
        createPart(builder, param, bits, *group, QuantizedPart::Scales,
                   RankedTensorType::get({inputs / *group, outputs}, f16))};
    if (!symmetric)
      parts.push_back(createPart(builder, param, bits, *group, QuantizedPart::ZeroPoints,
                                 RankedTensorType::get({inputs / *group, outputs}, f16)));

    // W'[k, n], loops (k, n).
    AffineExpr k = builder.getAffineDimExpr(0), n = builder.getAffineDimExpr(1);
    auto map = [&](AffineExpr row) { return AffineMap::get(2, 0, {row, n}, context); };
    SmallVector<AffineMap> maps = {map(k.floorDiv(pack)), map(k.floorDiv(*group))};
    if (!symmetric)
      maps.push_back(maps.back());
    maps.push_back(map(k));
    Value empty = tensor::EmptyOp::create(builder, loc, weightType.getShape(), f32);
    auto dequantize = linalg::GenericOp::create(
        builder, loc, TypeRange{empty.getType()}, parts, ValueRange{empty}, maps,
        SmallVector<utils::IteratorType>(2, utils::IteratorType::parallel),
        [&](OpBuilder &b, Location l, ValueRange args) {
          Value code = args[0];
          if (pack == 2) {
            // The nibble of input k, on the byte sign-extended to i32 (whose
            // shifts CPUs have, unlike i8's): (code << (28 - 4 * (k % 2)))
            // >> 28, arithmetic, sign-extends either half.
            Type i32 = b.getI32Type();
            Value index = linalg::IndexOp::create(b, l, 0);
            Value two = arith::ConstantIndexOp::create(b, l, 2);
            Value odd = arith::IndexCastOp::create(
                b, l, i32, arith::RemUIOp::create(b, l, index, two));
            Value four = arith::ConstantIntOp::create(b, l, i32, 4);
            Value low = arith::ConstantIntOp::create(b, l, i32, 28);
            Value left = arith::SubIOp::create(b, l, low, arith::MulIOp::create(b, l, odd, four));
            Value wide = arith::ExtSIOp::create(b, l, i32, code);
            code = arith::ShRSIOp::create(b, l, arith::ShLIOp::create(b, l, wide, left), low);
          }
          Value value = arith::SIToFPOp::create(b, l, f32, code);
          if (!symmetric)
            value = arith::SubFOp::create(b, l, value, arith::ExtFOp::create(b, l, f32, args[2]));
          Value scale = arith::ExtFOp::create(b, l, f32, args[1]);
          linalg::YieldOp::create(b, l, ValueRange{arith::MulFOp::create(b, l, value, scale)});
        });
    // What it decodes, for a target's integer kernels.
    dequantize->setAttr(FalconDialect::kDequantizeAttrName,
                        parts[0].getDefiningOp<ParamOp>().getEncodingAttr());

    // The projection, reading W' (f32: the body needs no extension), and
    // with act-order its activations in the parts' input order.
    Value activations = op.getDpsInputs()[0];
    if (actOrder && param.getLayer())
      activations = gatherInputs(
          builder, loc, activations,
          createPart(builder, param, bits, *group, QuantizedPart::InputOrder,
                     RankedTensorType::get({inputs}, builder.getI32Type())));
    auto rewritten = linalg::GenericOp::create(
        builder, loc, op.getResultTypes(),
        ValueRange{activations, dequantize.getResult(0)}, op.getDpsInits(),
        getProjectionIndexingMaps(context), getProjectionIteratorTypes(),
        [&](OpBuilder &b, Location l, ValueRange args) {
          Value product = arith::MulFOp::create(b, l, args[0], args[1]);
          linalg::YieldOp::create(b, l, ValueRange{arith::AddFOp::create(b, l, args[2], product)});
        });
    for (NamedAttribute attribute : op->getDiscardableAttrs())
      rewritten->setAttr(attribute.getName(), attribute.getValue());
    op->replaceAllUsesWith(rewritten);
    op->erase();
    if (param->use_empty())
      param->erase();
  }
};
} // namespace
