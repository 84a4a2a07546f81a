//===- CPUWeightLayout.cpp - [in, out] projection weights -----------------===//

#include "falcon/Codegen/CPU/Passes.h"
#include "falcon/Conversion/Passes.h"

#define DEBUG_TYPE "falcon-cpu-weight-layout"

namespace mlir::falcon {
#define GEN_PASS_DEF_FALCONCPUWEIGHTLAYOUT
#include "falcon/Codegen/CPU/Passes.h.inc"
} // namespace mlir::falcon

using namespace mlir;
using namespace mlir::falcon;

/// Rewrites a projection that reads a checkpoint-layout [out, in] weight
/// parameter into one that reads it packed [in, out] (a param with the weight
/// encoding `permutation = [1, 0]`), loops (b, k, s, n): the same body, the
/// same sums in the same order per output.
static void packWeightInOut(linalg::GenericOp op) {
  if (!isProjection(op, /*weightInOut=*/false))
    return;
  OpOperand &weightOperand = op->getOpOperand(1);
  auto param = weightOperand.get().getDefiningOp<ParamOp>();
  if (!param)
    return;
  // A tensor-parallel shard (falcon-shard's slice or gather) is kept: the
  // encoding applies the shard first, then the permutation.
  WeightEncodingAttr existing = param.getEncodingAttr();
  if (existing && (!existing.getPermutation().empty() ||
                   existing.getQuantization() != Quantization::None))
    return;
  auto type = cast<RankedTensorType>(param.getType());
  auto transposedType = RankedTensorType::get(
      {type.getShape()[1], type.getShape()[0]}, type.getElementType());
  OpBuilder builder(param);
  auto encoding = WeightEncodingAttr::get(
      builder.getContext(), existing ? existing.getSlice() : ArrayRef<int64_t>(),
      existing ? existing.getGather() : ArrayRef<int64_t>(),
      /*permutation=*/{1, 0}, Quantization::None, /*groupSize=*/0, /*pack=*/1,
      /*symmetric=*/true, QuantizedPart::Codes);
  Value packed = ParamOp::create(builder, param.getLoc(), transposedType,
                                 param.getNameAttr(), param.getLayer(), encoding);
  builder.setInsertionPoint(op);
  auto rewritten = linalg::GenericOp::create(
      builder, op.getLoc(), op.getResultTypes(), ValueRange{op.getDpsInputs()[0], packed},
      op.getDpsInits(), getProjectionIndexingMaps(op.getContext()),
      getProjectionIteratorTypes());
  rewritten.getRegion().takeBody(op.getRegion());
  op->replaceAllUsesWith(rewritten);
  op->erase();
  if (param->use_empty())
    param->erase();
}

namespace {
struct FalconCPUWeightLayoutPass
    : public mlir::falcon::impl::FalconCPUWeightLayoutBase<
          FalconCPUWeightLayoutPass> {
  void runOnOperation() override {
    SmallVector<linalg::GenericOp> generics;
    getOperation().walk([&](linalg::GenericOp op) { generics.push_back(op); });
    for (linalg::GenericOp op : generics)
      packWeightInOut(op);
  }
};
} // namespace
