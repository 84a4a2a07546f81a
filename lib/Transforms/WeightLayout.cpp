//===- WeightLayout.cpp - placement of weights in weights.bin -------------===//

#include "falcon/Transforms/WeightLayout.h"
#include "Falcon/IR/FalconOps.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/CheckedArithmetic.h"

#include <limits>

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
  // A pipeline stage's file holds its own layers only.
  if (auto rank = module->getAttrOfType<RankPlanAttr>(FalconDialect::kRankPlanAttrName)) {
    layout.numLayers = rank.getNumLayers();
    layout.firstLayer = rank.getFirstLayer();
  }

  // The distinct (name, encoding) pairs in order of first appearance; the
  // weight-transform library places them, as it does every weight file.
  std::vector<::falcon::WeightPlacementRequest> requests;
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
    std::optional<uint64_t> bytes = llvm::checkedMulUnsigned<uint64_t>(
        uint64_t(type.getNumElements()), type.getElementTypeBitWidth() / 8);
    if (!bytes)
      return op.emitOpError() << "parameter \"" << op.getName() << "\" is too large";
    slot.bytes = *bytes;
    requests.push_back({slot.name, /*rank=*/0, slot.bytes,
                        slot.perLayer ? uint64_t(layout.numLayers) : 1});
    layout.slots.push_back(std::move(slot));
    return WalkResult::advance();
  });
  if (result.wasInterrupted())
    return failure();
  llvm::Expected<::falcon::WeightFileLayout> placed =
      ::falcon::layoutWeightFiles(requests, /*numRanks=*/1, kWeightAlignment);
  if (!placed)
    return module.emitError(llvm::toString(placed.takeError()));
  for (auto [slot, placement] : llvm::zip_equal(layout.slots, placed->placements)) {
    slot.offset = placement.offset;
    slot.layerStride = placement.stride;
  }
  layout.totalBytes = placed->fileBytes[0];
  if (layout.totalBytes > uint64_t(std::numeric_limits<int64_t>::max()))
    return module.emitError("the weights need more than 2^63 bytes");
  return layout;
}

void mlir::falcon::setWeightLayoutAttr(ModuleOp module,
                                       const WeightLayout &layout) {
  MLIRContext *context = module.getContext();
  SmallVector<Attribute> slots;
  for (const WeightSlot &slot : layout.slots)
    slots.push_back(WeightSlotAttr::get(context, slot.name, slot.type, slot.offset,
                                        slot.layerStride, slot.bytes, slot.perLayer,
                                        slot.encoding));
  module->setAttr(kWeightLayoutAttrName,
                  WeightLayoutAttr::get(context, layout.numLayers, layout.totalBytes,
                                        ArrayAttr::get(context, slots)));
}

FailureOr<WeightLayout> mlir::falcon::getWeightLayoutAttr(ModuleOp module) {
  // The attribute verified itself when it was built or parsed.
  auto attr = module->getAttrOfType<WeightLayoutAttr>(kWeightLayoutAttrName);
  if (!attr)
    return module.emitError() << "expects a '#falcon.weight_layout' as '"
                              << kWeightLayoutAttrName << "' (run falcon-bind-weights)";
  WeightLayout layout;
  layout.numLayers = attr.getNumLayers();
  if (auto rank = module->getAttrOfType<RankPlanAttr>(FalconDialect::kRankPlanAttrName))
    layout.firstLayer = rank.getFirstLayer();
  layout.totalBytes = attr.getTotalBytes();
  for (auto slotAttr : attr.getSlots().getAsRange<WeightSlotAttr>()) {
    WeightSlot slot;
    slot.name = slotAttr.getName().str();
    slot.type = slotAttr.getType();
    slot.offset = slotAttr.getOffset();
    slot.layerStride = slotAttr.getLayerStride();
    slot.bytes = slotAttr.getBytes();
    slot.perLayer = slotAttr.getPerLayer();
    slot.encoding = slotAttr.getEncoding();
    layout.slots.push_back(std::move(slot));
  }
  return layout;
}

llvm::Expected<::falcon::WeightTransform>
mlir::falcon::getWeightTransform(const WeightSlot &slot, llvm::StringRef name,
                                 llvm::ArrayRef<int64_t> sourceShape,
                                 ::falcon::WeightTransform::Quantize::Float sourceFloat) {
  ::falcon::WeightTransform transform;
  transform.name = name.str();
  transform.elementBytes = slot.type.getElementTypeBitWidth() / 8;
  transform.sourceShape.assign(sourceShape.begin(), sourceShape.end());
  WeightEncodingAttr encoding = slot.encoding;
  if (!encoding)
    return transform;
  using Step = ::falcon::WeightTransformStep;
  if (ArrayRef<int64_t> slice = encoding.getSlice(); !slice.empty())
    transform.steps.push_back(Step::slice(slice[0], slice[1], slice[2]));
  if (ArrayRef<int64_t> gather = encoding.getGather(); !gather.empty())
    transform.steps.push_back(Step::gather(gather[0], gather.drop_front()));
  if (ArrayRef<int64_t> permutation = encoding.getPermutation(); !permutation.empty())
    transform.steps.push_back(Step::permute(permutation));
  if (encoding.getQuantization() == Quantization::None)
    return transform;
  unsigned bits = encoding.getQuantization() == Quantization::Int8 ? 8 : 4;
  if (encoding.getPack() != 8 / bits)
    return llvm::createStringError("weight '" + name + "': int4 codes are packed two per byte, "
                                   "the encoding says " + llvm::Twine(encoding.getPack()));
  if (encoding.getPart() == QuantizedPart::InputOrder)
    return llvm::createStringError("weight '" + name + "': its input order is read from the "
                                   "checkpoint's g_idx, it has no transform");
  using Quantize = ::falcon::WeightTransform::Quantize;
  Quantize quantize;
  quantize.quantization = {bits, encoding.getGroupSize(), encoding.getSymmetric()};
  quantize.part = encoding.getPart() == QuantizedPart::Codes    ? ::falcon::QuantizedPart::Codes
                  : encoding.getPart() == QuantizedPart::Scales ? ::falcon::QuantizedPart::Scales
                                                                : ::falcon::QuantizedPart::ZeroPoints;
  quantize.sourceFloat = sourceFloat;
  transform.elementBytes =
      sourceFloat == Quantize::Float::F32 || sourceFloat == Quantize::Float::Quantized ? 4 : 2;
  transform.quantize = quantize;
  return transform;
}
