//===- CPUWeightLayout.cpp - [in, out] projection weights -----------------===//

#include "falcon/Codegen/CPU/Passes.h"

#define DEBUG_TYPE "falcon-cpu-weight-layout"

namespace mlir::falcon {
#define GEN_PASS_DEF_FALCONCPUWEIGHTLAYOUT
#include "falcon/Codegen/CPU/Passes.h.inc"
} // namespace mlir::falcon

using namespace mlir;
using namespace mlir::falcon;

/// Makes a projection (a linear or LM head) read its weight parameter
/// transposed.
static void transposeWeight(ProjectionOpInterface projection) {
  OpOperand &weightOperand = projection.getWeightMutable();
  auto param = weightOperand.get().getDefiningOp<ParamOp>();
  if (!param || param.getEncodingAttr())
    return;
  auto type = cast<RankedTensorType>(param.getType());
  auto transposedType = RankedTensorType::get(
      {type.getShape()[1], type.getShape()[0]}, type.getElementType());
  OpBuilder builder(param);
  auto encoding = WeightEncodingAttr::get(builder.getContext(), /*slice=*/{}, /*gather=*/{},
                                          /*permutation=*/{1, 0}, Quantization::None,
                                          /*groupSize=*/0, /*pack=*/1);
  auto transposed = ParamOp::create(builder, param.getLoc(), transposedType,
                                    param.getNameAttr(), param.getLayer(), encoding);
  weightOperand.set(transposed);
  projection.setTransposedWeight(true);
  if (param->use_empty())
    param->erase();
}

namespace {
struct FalconCPUWeightLayoutPass
    : public mlir::falcon::impl::FalconCPUWeightLayoutBase<
          FalconCPUWeightLayoutPass> {
  void runOnOperation() override {
    getOperation().walk(transposeWeight);
  }
};
} // namespace
