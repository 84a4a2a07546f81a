//===- LinalgBuilder.h - building linalg on tensors --------------*- C++ -*-===//
//
// The small builder every lowering to linalg uses (the target-neutral
// falcon-to-linalg conversion and the targets' decompositions of
// falcon.attention), so that each builds generics, fills and casts one way.
//
//===----------------------------------------------------------------------===//
#ifndef FALCON_CONVERSION_LINALGBUILDER_H
#define FALCON_CONVERSION_LINALGBUILDER_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/AffineMap.h"
#include "mlir/IR/Builders.h"

namespace mlir::falcon {

inline constexpr utils::IteratorType kParallel = utils::IteratorType::parallel;
inline constexpr utils::IteratorType kReduction = utils::IteratorType::reduction;

/// Builds linalg ops at one location.
class LinalgBuilder {
public:
  LinalgBuilder(OpBuilder &builder, Location loc) : b(builder), loc(loc) {}

  Value constantFloat(Type type, double value) {
    return arith::ConstantOp::create(b, loc, type, b.getFloatAttr(type, value));
  }
  Value index(int64_t value) {
    return arith::ConstantIndexOp::create(b, loc, value);
  }

  /// `value` converted to `type` (extended or truncated float).
  Value castFloat(Value value, Type type) {
    if (value.getType() == type)
      return value;
    unsigned from = value.getType().getIntOrFloatBitWidth();
    unsigned to = type.getIntOrFloatBitWidth();
    if (from == to) // f16 <-> bf16: through f32, which holds both exactly.
      return castFloat(castFloat(value, b.getF32Type()), type);
    if (from < to)
      return arith::ExtFOp::create(b, loc, type, value);
    return arith::TruncFOp::create(b, loc, type, value);
  }

  /// An uninitialized tensor of `shape` whose dynamic sizes are `dynSizes`.
  Value empty(ArrayRef<OpFoldResult> shape, Type elementType) {
    return tensor::EmptyOp::create(b, loc, shape, elementType);
  }
  /// A tensor of `shape` filled with `value`.
  Value filled(ArrayRef<OpFoldResult> shape, Type elementType, double value) {
    Value init = empty(shape, elementType);
    return linalg::FillOp::create(b, loc, constantFloat(elementType, value), init)
        .getResult(0);
  }

  /// One linalg.generic with a single result.
  Value generic(ValueRange inputs, Value init, ArrayRef<AffineMap> maps,
                ArrayRef<utils::IteratorType> iterators,
                function_ref<Value(OpBuilder &, Location, ValueRange)> body) {
    auto op = linalg::GenericOp::create(
        b, loc, init.getType(), inputs, init, maps, iterators,
        [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
          linalg::YieldOp::create(nested, nestedLoc,
                                  body(nested, nestedLoc, args));
        });
    return op.getResult(0);
  }

  /// Elementwise map over tensors of one shape (identity maps).
  Value elementwise(ValueRange inputs, Type resultType,
                    function_ref<Value(OpBuilder &, Location, ValueRange)> body) {
    Value first = inputs.front();
    auto type = cast<RankedTensorType>(first.getType());
    Value init = empty(tensor::getMixedSizes(b, loc, first),
                       cast<ShapedType>(resultType).getElementType());
    SmallVector<AffineMap> maps(inputs.size() + 1,
                                b.getMultiDimIdentityMap(type.getRank()));
    SmallVector<utils::IteratorType> iterators(type.getRank(), kParallel);
    return generic(inputs, init, maps, iterators, body);
  }

  OpBuilder &b;
  Location loc;
};

/// Affine map from `numDims` loop dims to the dims listed in `results`.
inline AffineMap dimsMap(MLIRContext *context, unsigned numDims,
                  ArrayRef<unsigned> results) {
  return AffineMap::getMultiDimMapWithTargets(numDims, results, context);
}

inline Type elementTypeOf(Value value) {
  return cast<ShapedType>(value.getType()).getElementType();
}

/// The body of a contraction: acc + a * b (block arguments a, b, acc).
inline Value multiplyAccumulate(OpBuilder &b, Location loc, ValueRange args) {
  Value mul = arith::MulFOp::create(b, loc, args[0], args[1]);
  return arith::AddFOp::create(b, loc, args[2], mul);
}

} // namespace mlir::falcon

#endif // FALCON_CONVERSION_LINALGBUILDER_H
