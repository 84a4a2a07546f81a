//===- ComputePrecision.cpp - bf16/f16 activations into the projections ---===//
//
// y[b,s,n] += x[b,s,k] * W[k,n] with a float W becomes
//
//   x'       = linalg.generic (b, s, k): truncf x[b,s,k] to bf16
//   y[b,s,n] += extf(x'[b,s,k]) * W[k,n]
//
// and for f16 x' = extf(truncf x) stays f32 (no conversion in the
// projections' inner loops; no target here has f16 dot products).
//
// Target-neutral: a target's strategy may then sum pairs of bf16 operands
// natively (falcon-cpu-select-lowering-strategy's bf16_dot_products).
//
// With `guard` (f16 only) each rounding reads its layer's entry of the
// entry point's `precision_guard` argument, rounds to bf16 instead where the
// runtime set bit 0, and sets bit 1 where a rounded value is not finite:
//
//   %mode = memref.load %guard[%layer]
//   x'    = linalg.generic: select(%mode & 1, extf(truncf_bf16 x), extf(truncf_f16 x))
//   %bad  = linalg.generic (reduction): or over !(|x'| < inf)
//   scf.if %bad { %guard[%layer] = %mode | 2 }
//
//===----------------------------------------------------------------------===//

#include "falcon/Conversion/Passes.h"
#include "falcon/Transforms/Passes.h"

#include "falcon/Import/Importer.h"

#include "Falcon/IR/FalconOps.h"

#include "mlir/Dialect/Tensor/Utils/Utils.h"

#include <limits>

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
    if (guard && dtype != "f16") {
      getOperation().emitError() << "falcon-compute-precision: the guard needs dtype f16 (bf16 "
                                    "has f32's range), found '"
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
    Value guardBuffer;
    if (guard && failed(addGuardArgument(guardBuffer)))
      return signalPassFailure();
    DenseMap<Value, Value> rounded;
    OpBuilder builder(context);
    for (linalg::GenericOp op : projections) {
      Value x = op.getDpsInputs()[0];
      Value &narrow = rounded[x];
      // f16 has no dot-product instructions here: f32 values on the f16
      // grid spare the projections' inner loops a conversion per element
      // (the body reads them as before).
      if (type.isF16()) {
        if (!narrow)
          narrow = roundToF16Grid(builder, x, guardBuffer,
                                  guardBuffer ? layerOf(op, guardBuffer) : Value());
        op->setOperand(0, narrow);
        continue;
      }
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

  /// Appends `precision_guard` (memref<(L+1)xi8>) to the entry point; L is
  /// its caches' layer count.
  LogicalResult addGuardArgument(Value &guardBuffer) {
    ModuleOp module = getOperation();
    auto forward = module.lookupSymbol<func::FuncOp>(kForwardFunctionName);
    if (!forward || forward.isExternal())
      return module.emitError("falcon-compute-precision: the guard needs the entry point @")
             << kForwardFunctionName;
    int64_t layers = ShapedType::kDynamic;
    for (auto [index, type] : llvm::enumerate(forward.getArgumentTypes()))
      if (auto name = forward.getArgAttrOfType<StringAttr>(index, FalconDialect::kArgNameAttrName);
          name && name.getValue() == "key_cache")
        layers = cast<ShapedType>(type).getDimSize(0);
    if (ShapedType::isDynamic(layers))
      return forward.emitError("falcon-compute-precision: the guard needs a key_cache argument "
                               "of static layer count");
    // One layer's loop is folded away: its projections and the LM head's
    // would share entry L.
    if (layers < 2)
      return forward.emitError("falcon-compute-precision: the guard needs two or more layers");
    MLIRContext *context = &getContext();
    unsigned index = forward.getNumArguments();
    auto type = MemRefType::get({layers + 1}, IntegerType::get(context, 8));
    auto name = NamedAttribute(StringAttr::get(context, FalconDialect::kArgNameAttrName),
                               StringAttr::get(context, "precision_guard"));
    if (failed(forward.insertArgument(index, type, DictionaryAttr::get(context, {name}),
                                      forward.getLoc())))
      return failure();
    guardBuffer = forward.getArgument(index);
    return success();
  }

  /// The guard entry of `op`: its layer loop's induction variable, or L
  /// outside the loop (the LM head). Null when `op` is not in the entry
  /// point.
  static Value layerOf(linalg::GenericOp op, Value guardBuffer) {
    auto forward = cast<BlockArgument>(guardBuffer).getOwner()->getParentOp();
    if (op->getParentOfType<func::FuncOp>() != forward)
      return Value();
    if (auto loop = op->getParentOfType<scf::ForOp>())
      return loop.getInductionVar();
    return Value();
  }

  /// x rounded to f16 as f32 values. With `guardBuffer`: to bf16 instead
  /// where the guard says so, and the guard's bit 1 set where a value is not
  /// finite.
  static Value roundToF16Grid(OpBuilder &builder, Value x, Value guardBuffer, Value layer) {
    setInsertionPointAfterDefinition(builder, x);
    Location loc = x.getLoc();
    Type f32 = builder.getF32Type();
    auto through = [&](OpBuilder &b, Location l, Type narrow, Value element) -> Value {
      return arith::ExtFOp::create(b, l, f32,
                                   arith::TruncFOp::create(b, l, narrow, element).getResult());
    };
    if (!guardBuffer)
      return map(builder, x, f32, [&](OpBuilder &b, Location l, Value element) {
        return through(b, l, b.getF16Type(), element);
      });
    if (!layer) {
      int64_t entries = cast<MemRefType>(guardBuffer.getType()).getDimSize(0);
      layer = arith::ConstantIndexOp::create(builder, loc, entries - 1);
    }
    Type i1 = builder.getI1Type(), i8 = builder.getI8Type();
    Value mode = memref::LoadOp::create(builder, loc, guardBuffer, ValueRange{layer});
    Value one = arith::ConstantIntOp::create(builder, loc, i8, 1);
    Value fallback = arith::TruncIOp::create(builder, loc, i1,
                                             arith::AndIOp::create(builder, loc, mode, one));
    Value y = map(builder, x, f32, [&](OpBuilder &b, Location l, Value element) -> Value {
      Value toBF16 = through(b, l, b.getBF16Type(), element);
      Value toF16 = through(b, l, b.getF16Type(), element);
      return arith::SelectOp::create(b, l, fallback, toBF16, toF16);
    });
    // Any element not finite: !(|y| < inf) also holds for NaN.
    auto xType = cast<RankedTensorType>(x.getType());
    Value falseValue = arith::ConstantIntOp::create(builder, loc, i1, 0);
    Value init = linalg::FillOp::create(builder, loc, ValueRange{falseValue},
                                        ValueRange{tensor::EmptyOp::create(
                                            builder, loc, ArrayRef<int64_t>{}, i1)})
                     .getResult(0);
    AffineMap identity = builder.getMultiDimIdentityMap(xType.getRank());
    auto any = linalg::GenericOp::create(
        builder, loc, TypeRange{init.getType()}, ValueRange{y}, ValueRange{init},
        ArrayRef<AffineMap>{identity, AffineMap::get(xType.getRank(), 0, builder.getContext())},
        SmallVector<utils::IteratorType>(xType.getRank(), utils::IteratorType::reduction),
        [&](OpBuilder &b, Location l, ValueRange args) {
          Value infinity = arith::ConstantOp::create(
              b, l, b.getF32FloatAttr(std::numeric_limits<float>::infinity()));
          Value finite = arith::CmpFOp::create(b, l, arith::CmpFPredicate::OLT,
                                               math::AbsFOp::create(b, l, args[0]), infinity);
          Value bad = arith::XOrIOp::create(b, l, finite,
                                            arith::ConstantIntOp::create(b, l, i1, 1));
          linalg::YieldOp::create(b, l, ValueRange{arith::OrIOp::create(b, l, args[1], bad)});
        });
    Value overflow = tensor::ExtractOp::create(builder, loc, any.getResult(0), ValueRange{});
    scf::IfOp::create(builder, loc, overflow, [&](OpBuilder &b, Location l) {
      Value flagged = arith::OrIOp::create(b, l, mode, arith::ConstantIntOp::create(b, l, i8, 2));
      memref::StoreOp::create(b, l, flagged, guardBuffer, ValueRange{layer});
      scf::YieldOp::create(b, l);
    });
    return y;
  }

  static void setInsertionPointAfterDefinition(OpBuilder &builder, Value x) {
    if (auto result = dyn_cast<OpResult>(x))
      builder.setInsertionPointAfter(result.getOwner());
    else
      builder.setInsertionPointToStart(cast<BlockArgument>(x).getOwner());
  }

  /// An elementwise linalg.generic of `fn` over x into `type`.
  static Value map(OpBuilder &builder, Value x, Type type,
                   function_ref<Value(OpBuilder &, Location, Value)> fn) {
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
          linalg::YieldOp::create(b, l, ValueRange{fn(b, l, args[0])});
        });
    return generic.getResult(0);
  }

  /// x rounded to `type`, right after its definition.
  static Value round(OpBuilder &builder, Value x, Type type) {
    setInsertionPointAfterDefinition(builder, x);
    return map(builder, x, type, [&](OpBuilder &b, Location l, Value element) -> Value {
      return arith::TruncFOp::create(b, l, type, element);
    });
  }
};
} // namespace
