//===- WeightLayout.cpp - placement of weights in weights.bin -------------===//

#include "falcon/Transforms/WeightLayout.h"
#include "Falcon/IR/FalconOps.h"

#include "llvm/Support/MathExtras.h"

using namespace mlir;
using namespace mlir::falcon;

const WeightSlot *WeightLayout::lookup(llvm::StringRef name) const {
  for (const WeightSlot &slot : slots)
    if (slot.name == name)
      return &slot;
  return nullptr;
}

FailureOr<WeightLayout> mlir::falcon::computeWeightLayout(ModuleOp module) {
  WeightLayout layout;
  auto config = module->getAttrOfType<DictionaryAttr>("falcon.config");
  auto numLayers =
      config ? dyn_cast_or_null<IntegerAttr>(config.get("num_hidden_layers"))
             : IntegerAttr();
  bool hasLayerParams = false;
  module.walk([&](ParamOp op) { hasLayerParams |= bool(op.getLayer()); });
  if (hasLayerParams && !numLayers)
    return module.emitError("expects a 'falcon.config' dictionary with "
                            "'num_hidden_layers' to lay out per-layer weights");
  layout.numLayers = numLayers ? numLayers.getInt() : 1;

  WalkResult result = module.walk([&](ParamOp op) -> WalkResult {
    auto type = cast<RankedTensorType>(op.getType());
    if (const WeightSlot *existing = layout.lookup(op.getName())) {
      if (existing->type != type)
        return op.emitOpError() << "uses parameter \"" << op.getName()
                                << "\" with type " << type << ", but it was "
                                << existing->type << " before";
      return WalkResult::advance();
    }
    WeightSlot slot;
    slot.name = op.getName().str();
    slot.type = type;
    slot.perLayer = bool(op.getLayer());
    unsigned bitWidth = type.getElementTypeBitWidth();
    slot.bytes = uint64_t(type.getNumElements()) * bitWidth / 8;
    slot.layerStride = llvm::alignTo(slot.bytes, kWeightAlignment);
    slot.offset = layout.totalBytes;
    layout.totalBytes +=
        slot.layerStride * (slot.perLayer ? uint64_t(layout.numLayers) : 1);
    layout.slots.push_back(std::move(slot));
    return WalkResult::advance();
  });
  if (result.wasInterrupted())
    return failure();
  return layout;
}
