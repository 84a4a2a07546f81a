//===- BindWeights.cpp - falcon.param to weight-buffer views --------------===//

#include "falcon/Transforms/Passes.h"
#include "falcon/Transforms/WeightLayout.h"
#include "Falcon/IR/FalconOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

#define DEBUG_TYPE "falcon-bind-weights"

namespace mlir::falcon {
#define GEN_PASS_DEF_FALCONBINDWEIGHTS
#include "falcon/Transforms/Passes.h.inc"
} // namespace mlir::falcon

using namespace mlir;
using namespace mlir::falcon;

namespace {
struct FalconBindWeightsPass
    : public mlir::falcon::impl::FalconBindWeightsBase<FalconBindWeightsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    FailureOr<WeightLayout> layout = computeWeightLayout(module);
    if (failed(layout))
      return signalPassFailure();
    setWeightLayoutAttr(module, *layout);
    auto bufferType = MemRefType::get({ShapedType::kDynamic},
                                      IntegerType::get(&getContext(), 8));
    for (auto func : module.getOps<func::FuncOp>()) {
      SmallVector<ParamOp> params;
      func.walk([&](ParamOp op) { params.push_back(op); });
      if (params.empty())
        continue;
      if (func.isExternal()) {
        func.emitOpError("reads weights but has no body");
        return signalPassFailure();
      }
      unsigned index = func.getNumArguments();
      if (failed(func.insertArgument(index, bufferType,
                                     DictionaryAttr::get(&getContext(),
                                         {NamedAttribute(StringAttr::get(&getContext(), FalconDialect::kArgNameAttrName),
                                                         StringAttr::get(&getContext(), "weights"))}),
                                     func.getLoc())))
        return signalPassFailure();
      Value buffer = func.getArgument(index);
      for (ParamOp op : params) {
        const WeightSlot *slot = layout->lookup(op.getName(), op.getEncodingAttr());
        OpBuilder builder(op);
        Location loc = op.getLoc();
        Value offset = arith::ConstantIndexOp::create(builder, loc, slot->offset);
        if (Value layer = op.getLayer()) {
          Value stride =
              arith::ConstantIndexOp::create(builder, loc, slot->layerStride);
          offset = arith::AddIOp::create(
              builder, loc, offset,
              arith::MulIOp::create(builder, loc, layer, stride));
        }
        auto viewType =
            MemRefType::get(slot->type.getShape(), slot->type.getElementType());
        Value view = memref::ViewOp::create(builder, loc, viewType, buffer,
                                            offset, ValueRange{});
        // Weights are read-only and alias nothing else.
        Value tensor = bufferization::ToTensorOp::create(
            builder, loc, slot->type, view, /*restrict=*/true,
            /*writable=*/false);
        op.replaceAllUsesWith(tensor);
        op.erase();
      }
    }
  }
};
} // namespace
