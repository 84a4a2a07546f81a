//===- CPUWeightLayout.cpp - [in, out] projection weights -----------------===//

#include "falcon/Codegen/CPU/Passes.h"

#define DEBUG_TYPE "falcon-cpu-weight-layout"

namespace mlir::falcon {
#define GEN_PASS_DEF_FALCONCPUWEIGHTLAYOUT
#include "falcon/Codegen/CPU/Passes.h.inc"
} // namespace mlir::falcon

using namespace mlir;
using namespace mlir::falcon;

/// Makes `op` (a linear or LM head) read its weight parameter transposed.
static void transposeWeight(Operation *op, OpOperand &weightOperand) {
  auto param = weightOperand.get().getDefiningOp<ParamOp>();
  if (!param || param.getTransposed())
    return;
  auto type = cast<RankedTensorType>(param.getType());
  auto transposedType = RankedTensorType::get(
      {type.getShape()[1], type.getShape()[0]}, type.getElementType());
  OpBuilder builder(param);
  auto transposed = ParamOp::create(builder, param.getLoc(), transposedType,
                                    param.getNameAttr(), param.getLayer(),
                                    builder.getUnitAttr());
  weightOperand.set(transposed);
  op->setAttr("transposed_weight", builder.getUnitAttr());
  if (param->use_empty())
    param->erase();
}

namespace {
struct FalconCPUWeightLayoutPass
    : public mlir::falcon::impl::FalconCPUWeightLayoutBase<
          FalconCPUWeightLayoutPass> {
  void runOnOperation() override {
    getOperation().walk([](Operation *op) {
      if (auto linear = dyn_cast<LinearOp>(op))
        transposeWeight(op, linear.getWeightMutable());
      else if (auto head = dyn_cast<LMHeadOp>(op))
        transposeWeight(op, head.getWeightMutable());
    });
  }
};
} // namespace
