//===- ComputePrecision.cpp - bf16/f16 activations into the projections ---===//
//
// y[b,s,n] += x[b,s,k] * W[k,n] with a float W becomes
//
//   x'       = linalg.generic (b, s, k): truncf x[b,s,k] to dtype
//   y[b,s,n] += extf(x'[b,s,k]) * W[k,n]
//
// Target-neutral: a target's strategy may then sum pairs of bf16 operands
// natively (falcon-cpu-select-lowering-strategy's bf16_dot_products).
//
//===----------------------------------------------------------------------===//

#include "falcon/Conversion/Passes.h"
#include "falcon/Transforms/Passes.h"

#include "Falcon/IR/FalconOps.h"

#include "mlir/Dialect/Tensor/Utils/Utils.h"

namespace mlir::falcon {
#define GEN_PASS_DEF_FALCONCOMPUTEPRECISION
#include "falcon/Transforms/Passes.h.inc"
} // namespace mlir::falcon

using namespace mlir;
using namespace mlir::falcon;

namespace {
struct FalconComputePrecisionPass
    : public mlir::falcon::impl::FalconComputePrecisionBase<FalconComputePrecisionPass> {
  using Base::Base;

  void runOnOperation() override {
    MLIRContext *context = &getContext();
    Type type = dtype == "bf16"  ? Type(BFloat16Type::get(context))
                : dtype == "f16" ? Type(Float16Type::get(context))
                                 : Type();
    if (dtype == "f32")
      return;
    if (!type) {
      getOperation().emitError() << "falcon-compute-precision: dtype must be f32, bf16 or f16, "
                                    "found '"
                                 << dtype << "'";
      return signalPassFailure();
    }
    SmallVector<linalg::GenericOp> projections;
    getOperation().walk([&](linalg::GenericOp op) {
      if (!isProjection(op) && !isProjection(op, /*weightInOut=*/false))
        return;
      // A quantized weight is dequantized by its producer.
      auto producer = op.getDpsInputs()[1].getDefiningOp();
      if (producer && producer->hasAttr(FalconDialect::kDequantizeAttrName))
        return;
      if (getElementTypeOrSelf(op.getDpsInputs()[0].getType()).isF32())
        projections.push_back(op);
    });
    DenseMap<Value, Value> rounded;
    OpBuilder builder(context);
    for (linalg::GenericOp op : projections) {
      Value x = op.getDpsInputs()[0];
      Value &narrow = rounded[x];
      if (!narrow)
        narrow = round(builder, x, type);
      op->setOperand(0, narrow);
      // The body reads the narrow element and extends it.
      Block &body = op.getRegion().front();
      BlockArgument argument = body.getArgument(0);
      argument.setType(type);
      builder.setInsertionPointToStart(&body);
      Value wide = arith::ExtFOp::create(builder, op.getLoc(), builder.getF32Type(), argument);
      argument.replaceAllUsesExcept(wide, wide.getDefiningOp());
    }
  }

  /// x rounded to `type`, right after its definition.
  static Value round(OpBuilder &builder, Value x, Type type) {
    if (auto result = dyn_cast<OpResult>(x))
      builder.setInsertionPointAfter(result.getOwner());
    else
      builder.setInsertionPointToStart(cast<BlockArgument>(x).getOwner());
    Location loc = x.getLoc();
    auto xType = cast<RankedTensorType>(x.getType());
    Value init = tensor::EmptyOp::create(builder, loc,
                                         tensor::getMixedSizes(builder, loc, x), type);
    AffineMap identity = builder.getMultiDimIdentityMap(xType.getRank());
    auto generic = linalg::GenericOp::create(
        builder, loc, TypeRange{init.getType()}, ValueRange{x}, ValueRange{init},
        ArrayRef<AffineMap>{identity, identity},
        SmallVector<utils::IteratorType>(xType.getRank(), utils::IteratorType::parallel),
        [&](OpBuilder &b, Location l, ValueRange args) {
          linalg::YieldOp::create(b, l, ValueRange{arith::TruncFOp::create(b, l, type, args[0])});
        });
    return generic.getResult(0);
  }
};
} // namespace
