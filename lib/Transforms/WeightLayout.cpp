//===- WeightLayout.cpp - placement of weights in weights.bin -------------===//

#include "falcon/Transforms/WeightLayout.h"
#include "Falcon/IR/FalconOps.h"

#include "llvm/Support/MathExtras.h"

using namespace mlir;
using namespace mlir::falcon;

const WeightSlot *WeightLayout::lookup(llvm::StringRef name,
                                       WeightEncodingAttr encoding) const {
  for (const WeightSlot &slot : slots)
    if (slot.name == name && slot.encoding == encoding)
      return &slot;
  return nullptr;
}

FailureOr<WeightLayout> mlir::falcon::computeWeightLayout(ModuleOp module) {
  WeightLayout layout;
  auto config = module->getAttrOfType<ModelConfigAttr>(FalconDialect::kModelConfigAttrName);
  bool hasLayerParams = false;
  module.walk([&](ParamOp op) { hasLayerParams |= bool(op.getLayer()); });
  if (hasLayerParams && !config)
    return module.emitError("expects a '#falcon.model_config' as 'falcon.config' on the "
                            "module to lay out per-layer weights");
  layout.numLayers = config ? config.getNumHiddenLayers() : 1;

  WalkResult result = module.walk([&](ParamOp op) -> WalkResult {
    auto type = cast<RankedTensorType>(op.getType());
    if (const WeightSlot *existing =
            layout.lookup(op.getName(), op.getEncodingAttr())) {
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
    slot.encoding = op.getEncodingAttr();
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

void mlir::falcon::setWeightLayoutAttr(ModuleOp module,
                                       const WeightLayout &layout) {
  Builder builder(module.getContext());
  SmallVector<Attribute> slots;
  for (const WeightSlot &slot : layout.slots) {
    SmallVector<NamedAttribute> entries = {
        builder.getNamedAttr("name", builder.getStringAttr(slot.name)),
        builder.getNamedAttr("type", TypeAttr::get(slot.type)),
        builder.getNamedAttr("offset", builder.getI64IntegerAttr(slot.offset)),
        builder.getNamedAttr("layer_stride",
                             builder.getI64IntegerAttr(slot.layerStride)),
        builder.getNamedAttr("bytes", builder.getI64IntegerAttr(slot.bytes))};
    if (slot.perLayer)
      entries.push_back(builder.getNamedAttr("per_layer", builder.getUnitAttr()));
    if (slot.encoding)
      entries.push_back(builder.getNamedAttr("encoding", slot.encoding));
    slots.push_back(builder.getDictionaryAttr(entries));
  }
  module->setAttr(kWeightLayoutAttrName,
                  builder.getDictionaryAttr(
                      {builder.getNamedAttr("num_layers",
                                            builder.getI64IntegerAttr(layout.numLayers)),
                       builder.getNamedAttr("total_bytes",
                                            builder.getI64IntegerAttr(layout.totalBytes)),
                       builder.getNamedAttr("slots", builder.getArrayAttr(slots))}));
}

FailureOr<WeightLayout> mlir::falcon::getWeightLayoutAttr(ModuleOp module) {
  auto dict = module->getAttrOfType<DictionaryAttr>(kWeightLayoutAttrName);
  auto fail = [&]() -> FailureOr<WeightLayout> {
    return module.emitError() << "expects a valid '" << kWeightLayoutAttrName
                              << "' attribute (run falcon-bind-weights)";
  };
  if (!dict)
    return fail();
  auto numLayers = dyn_cast_or_null<IntegerAttr>(dict.get("num_layers"));
  auto totalBytes = dyn_cast_or_null<IntegerAttr>(dict.get("total_bytes"));
  auto slots = dyn_cast_or_null<ArrayAttr>(dict.get("slots"));
  if (!numLayers || !totalBytes || !slots)
    return fail();
  WeightLayout layout;
  layout.numLayers = numLayers.getInt();
  layout.totalBytes = totalBytes.getInt();
  for (Attribute attr : slots) {
    auto entry = dyn_cast<DictionaryAttr>(attr);
    auto name = entry ? dyn_cast_or_null<StringAttr>(entry.get("name")) : nullptr;
    auto type = entry ? dyn_cast_or_null<TypeAttr>(entry.get("type")) : nullptr;
    auto offset = entry ? dyn_cast_or_null<IntegerAttr>(entry.get("offset")) : nullptr;
    auto stride = entry ? dyn_cast_or_null<IntegerAttr>(entry.get("layer_stride")) : nullptr;
    auto bytes = entry ? dyn_cast_or_null<IntegerAttr>(entry.get("bytes")) : nullptr;
    if (!name || !type || !isa<RankedTensorType>(type.getValue()) || !offset ||
        !stride || !bytes)
      return fail();
    WeightSlot slot;
    slot.name = name.str();
    slot.type = cast<RankedTensorType>(type.getValue());
    slot.offset = offset.getInt();
    slot.layerStride = stride.getInt();
    slot.bytes = bytes.getInt();
    slot.perLayer = bool(entry.get("per_layer"));
    slot.encoding = dyn_cast_or_null<WeightEncodingAttr>(entry.get("encoding"));
    if (entry.get("encoding") && !slot.encoding)
      return fail();
    layout.slots.push_back(std::move(slot));
  }
  return layout;
}

llvm::Expected<::falcon::WeightTransform>
mlir::falcon::getWeightTransform(const WeightSlot &slot, llvm::StringRef name,
                                 llvm::ArrayRef<int64_t> sourceShape) {
  ::falcon::WeightTransform transform;
  transform.name = name.str();
  transform.elementBytes = slot.type.getElementTypeBitWidth() / 8;
  transform.sourceShape.assign(sourceShape.begin(), sourceShape.end());
  WeightEncodingAttr encoding = slot.encoding;
  if (!encoding)
    return transform;
  if (encoding.getQuantization() != Quantization::None)
    return llvm::createStringError("weight '" + name + "': quantized encodings are not "
                                   "packed by this version");
  using Step = ::falcon::WeightTransformStep;
  if (ArrayRef<int64_t> slice = encoding.getSlice(); !slice.empty())
    transform.steps.push_back(Step::slice(slice[0], slice[1], slice[2]));
  if (ArrayRef<int64_t> gather = encoding.getGather(); !gather.empty())
    transform.steps.push_back(Step::gather(gather[0], gather.drop_front()));
  if (ArrayRef<int64_t> permutation = encoding.getPermutation(); !permutation.empty())
    transform.steps.push_back(Step::permute(permutation));
  return transform;
}
