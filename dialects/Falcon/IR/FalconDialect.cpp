//===- FalconDialect.cpp - falcon dialect ---------------------------------===//
#include "Falcon/IR/FalconDialect.h"
#include "Falcon/IR/FalconOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/Transforms/InliningUtils.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::falcon;

#include "Falcon/FalconDialect.cpp.inc"
#include "Falcon/FalconEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "Falcon/FalconAttrs.cpp.inc"

namespace {
/// Every falcon op is pure and position-independent: calls to the layer
/// function may be inlined into the layer loop.
struct FalconInlinerInterface : public DialectInlinerInterface {
  using DialectInlinerInterface::DialectInlinerInterface;
  bool isLegalToInline(Operation *, Operation *, bool) const final {
    return true;
  }
  bool isLegalToInline(Region *, Region *, bool, IRMapping &) const final {
    return true;
  }
  bool isLegalToInline(Operation *, Region *, bool, IRMapping &) const final {
    return true;
  }
};
} // namespace

void FalconDialect::initialize() {
  addInterfaces<FalconInlinerInterface>();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "Falcon/FalconAttrs.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "Falcon/FalconOps.cpp.inc"
      >();
}

//===----------------------------------------------------------------------===//
// Discardable attributes
//===----------------------------------------------------------------------===//

LogicalResult FalconDialect::verifyOperationAttribute(Operation *op,
                                                      NamedAttribute attribute) {
  StringRef name = attribute.getName().getValue();
  Attribute value = attribute.getValue();
  auto expect = [&](bool ok, StringRef what) -> LogicalResult {
    if (ok)
      return success();
    return op->emitOpError() << "expects '" << name << "' to be " << what << ", found "
                             << value;
  };
  if (name == kTargetAttrName)
    return expect(isa<CPUTargetAttr>(value) && isa<ModuleOp>(op),
                  "a #falcon.cpu_target on a module");
  if (name == kLoweringConfigAttrName)
    return expect(isa<LoweringConfigAttr>(value), "a #falcon.lowering_config");
  if (name == kDequantizeAttrName)
    return expect(isa<WeightEncodingAttr>(value) &&
                      cast<WeightEncodingAttr>(value).getQuantization() != Quantization::None,
                  "a quantized #falcon.weight_encoding");
  if (name == kModelConfigAttrName)
    return expect(isa<ModelConfigAttr>(value) && isa<ModuleOp>(op),
                  "a #falcon.model_config on a module");
  if (name == kWeightLayoutAttrName)
    return expect(isa<WeightLayoutAttr>(value) && isa<ModuleOp>(op),
                  "a #falcon.weight_layout on a module");
  if (name == kRankPlanAttrName)
    return expect(isa<RankPlanAttr>(value) && isa<ModuleOp>(op),
                  "a #falcon.rank_plan on a module");
  return op->emitOpError() << "has unknown falcon attribute '" << name << "'";
}

LogicalResult FalconDialect::verifyRegionArgAttribute(Operation *op, unsigned,
                                                      unsigned argIndex,
                                                      NamedAttribute attribute) {
  StringRef name = attribute.getName().getValue();
  if (name != kArgNameAttrName && name != kArgWeightAttrName)
    return op->emitOpError() << "has unknown falcon argument attribute '" << name
                             << "' on argument " << argIndex;
  if (!isa<StringAttr>(attribute.getValue()))
    return op->emitOpError() << "expects '" << name << "' on argument " << argIndex
                             << " to be a string, found " << attribute.getValue();
  return success();
}

bool CPUTargetAttr::hasFeature(StringRef name) const {
  SmallVector<StringRef> features;
  getFeatures().split(features, ',', /*MaxSplit=*/-1, /*KeepEmpty=*/false);
  // A later entry overrides an earlier one, as in LLVM's feature strings.
  bool enabled = false;
  for (StringRef feature : features)
    if (feature.drop_front() == name)
      enabled = feature.front() == '+';
  return enabled;
}

SmallVector<StringRef> CPUTargetAttr::getRequiredFeatures() const {
  SmallVector<StringRef> features, required;
  getFeatures().split(features, ',', /*MaxSplit=*/-1, /*KeepEmpty=*/false);
  for (StringRef feature : features)
    if (feature.front() == '+' && hasFeature(feature.drop_front()) &&
        !llvm::is_contained(required, feature.drop_front()))
      required.push_back(feature.drop_front());
  return required;
}

LogicalResult CPUTargetAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                    StringRef triple, StringRef cpu, StringRef features,
                                    int64_t vectorBits, int64_t vectorRegisters,
                                    int64_t threads) {
  if (triple.empty())
    return emitError() << "expects a target triple";
  SmallVector<StringRef> entries;
  features.split(entries, ',', /*MaxSplit=*/-1, /*KeepEmpty=*/true);
  if (!features.empty())
    for (StringRef feature : entries)
      if (feature.size() < 2 || (feature.front() != '+' && feature.front() != '-'))
        return emitError() << "expects features as '+name' or '-name' separated by commas, "
                              "found '"
                           << feature << "'";
  if (vectorBits != 128 && vectorBits != 256 && vectorBits != 512)
    return emitError() << "expects vector_bits to be 128, 256 or 512, found " << vectorBits;
  if (vectorRegisters < 8 || vectorRegisters > 64)
    return emitError() << "expects vector_registers in [8, 64], found " << vectorRegisters;
  if (threads < 1 || threads > 1024)
    return emitError() << "expects threads in [1, 1024], found " << threads;
  (void)cpu;
  return success();
}

LogicalResult
LoweringConfigAttr::verify(function_ref<InFlightDiagnostic()> emitError, int64_t threads,
                           int64_t threadDim, ArrayRef<int64_t> registerTile,
                           ArrayRef<int64_t> attentionBlock, int64_t decodeActivationBits,
                           bool bf16DotProducts) {
  if (decodeActivationBits != 0 && decodeActivationBits != 8)
    return emitError() << "expects decode_activation_bits 0 or 8, found "
                       << decodeActivationBits;
  if (threads < 1 || threads > 1024)
    return emitError() << "expects threads in [1, 1024], found " << threads;
  if (threadDim < -1)
    return emitError() << "expects thread_dim to be a loop dimension or -1, found "
                       << threadDim;
  if (!registerTile.empty()) {
    if (registerTile.size() != 3)
      return emitError() << "expects register_tile as [rows, cols, depth], found "
                         << registerTile.size() << " sizes";
    if (registerTile[0] < 1 || registerTile[0] > 64 || registerTile[1] < 1 ||
        registerTile[1] > 1024 || registerTile[2] < 1 || registerTile[2] > (1 << 20))
      return emitError() << "expects register_tile rows in [1, 64], cols in [1, 1024] "
                            "and depth in [1, 1048576]";
  }
  if (bf16DotProducts && (registerTile.size() != 3 || registerTile[1] % 16 != 0))
    return emitError() << "expects bf16_dot_products only with a register_tile whose cols are "
                          "a multiple of 16";
  if (!attentionBlock.empty()) {
    if (attentionBlock.size() != 2)
      return emitError() << "expects attention_block as [rows, keys], found "
                         << attentionBlock.size() << " sizes";
    if (attentionBlock[0] < 1 || attentionBlock[0] > FalconDialect::kMaxAttentionBlock ||
        attentionBlock[1] < 1 || attentionBlock[1] > FalconDialect::kMaxAttentionBlock)
      return emitError() << "expects attention_block rows and keys in [1, "
                         << FalconDialect::kMaxAttentionBlock << "], found [" << attentionBlock[0]
                         << ", " << attentionBlock[1] << "]";
  }
  return success();
}

//===----------------------------------------------------------------------===//
// WeightEncodingAttr
//===----------------------------------------------------------------------===//

LogicalResult WeightEncodingAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                         ArrayRef<int64_t> slice, ArrayRef<int64_t> gather,
                                         ArrayRef<int64_t> permutation,
                                         Quantization quantization, int64_t groupSize,
                                         int64_t pack, bool symmetric, QuantizedPart part) {
  if (!slice.empty() && !gather.empty())
    return emitError() << "expects at most one shard: a slice or a gather";
  if (!slice.empty() && (slice.size() != 3 || slice[0] < 0 || slice[1] < 0 || slice[2] < 1))
    return emitError() << "expects slice as [dim, begin, size] with size >= 1";
  if (!gather.empty() && (gather.size() < 2 || gather[0] < 0 ||
                          llvm::any_of(gather.drop_front(), [](int64_t i) { return i < 0; })))
    return emitError() << "expects gather as [dim, index, ...] with non-negative indices";
  SmallVector<int64_t> sorted(permutation);
  llvm::sort(sorted);
  for (auto [position, dim] : llvm::enumerate(sorted))
    if (dim != int64_t(position))
      return emitError() << "expects permutation to be a permutation of [0, "
                         << permutation.size() << ")";
  bool quantized = quantization != Quantization::None;
  if (quantized != (groupSize > 0))
    return emitError() << "expects group_size > 0 exactly when quantized";
  // Values per byte: one, or two int4 values.
  int64_t mostPerByte = quantization == Quantization::Int4 ? 2 : 1;
  if (pack < 1 || pack > mostPerByte)
    return emitError() << "expects pack in [1, " << mostPerByte << "] values per byte for "
                       << stringifyQuantization(quantization) << " weights, found " << pack;
  if (!quantized && (part != QuantizedPart::Codes || !symmetric))
    return emitError() << "expects no part or symmetric = false without quantization";
  if (part == QuantizedPart::ZeroPoints && symmetric)
    return emitError() << "expects zero_points only of an asymmetric quantization";
  return success();
}

bool WeightEncodingAttr::isTranspose() const {
  ArrayRef<int64_t> permutation = getPermutation();
  return permutation.size() == 2 && permutation[0] == 1 && permutation[1] == 0;
}

FailureOr<SmallVector<int64_t>>
WeightEncodingAttr::getEncodedShape(ArrayRef<int64_t> shape,
                                    function_ref<InFlightDiagnostic()> emitError) const {
  SmallVector<int64_t> result(shape);
  auto checkDim = [&](int64_t dim, StringRef what) -> LogicalResult {
    if (dim < int64_t(result.size()))
      return success();
    return emitError() << "weight encoding " << what << " dimension " << dim
                       << " is out of range for rank " << result.size();
  };
  if (ArrayRef<int64_t> slice = getSlice(); !slice.empty()) {
    if (failed(checkDim(slice[0], "slice")))
      return failure();
    if (slice[1] + slice[2] > result[slice[0]])
      return emitError() << "weight encoding slice [" << slice[1] << ", +" << slice[2]
                         << ") exceeds dimension " << slice[0] << " of size "
                         << result[slice[0]];
    result[slice[0]] = slice[2];
  }
  if (ArrayRef<int64_t> gather = getGather(); !gather.empty()) {
    if (failed(checkDim(gather[0], "gather")))
      return failure();
    for (int64_t index : gather.drop_front())
      if (index >= result[gather[0]])
        return emitError() << "weight encoding gathers index " << index << " of dimension "
                           << gather[0] << " of size " << result[gather[0]];
    result[gather[0]] = int64_t(gather.size()) - 1;
  }
  if (ArrayRef<int64_t> permutation = getPermutation(); !permutation.empty()) {
    if (permutation.size() != result.size())
      return emitError() << "weight encoding permutation has " << permutation.size()
                         << " dimensions, the tensor " << result.size();
    SmallVector<int64_t> permuted;
    for (int64_t dim : permutation)
      permuted.push_back(result[dim]);
    result = permuted;
  }
  if (getQuantization() == Quantization::None)
    return result;
  int64_t group = getGroupSize(), pack = getPack();
  if (result.size() != 2 || result[0] % group != 0 || result[0] % pack != 0)
    return emitError() << "weight encoding quantizes an [inputs, outputs] tensor whose "
                          "inputs are a multiple of group_size "
                       << group << " and pack " << pack;
  if (getPart() == QuantizedPart::InputOrder)
    return SmallVector<int64_t>{result[0]};
  result[0] /= getPart() == QuantizedPart::Codes ? pack : group;
  return result;
}

//===----------------------------------------------------------------------===//
// WeightSlotAttr, WeightLayoutAttr
//===----------------------------------------------------------------------===//

LogicalResult WeightSlotAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                     StringRef name, RankedTensorType type, int64_t offset,
                                     int64_t layerStride, int64_t bytes, bool perLayer,
                                     WeightEncodingAttr) {
  if (name.empty())
    return emitError() << "expects a non-empty weight name";
  if (!type || !type.hasStaticShape())
    return emitError() << "expects a statically shaped tensor type for '" << name << "'";
  if (offset < 0 || bytes < 0 || layerStride < bytes)
    return emitError() << "expects offset >= 0, bytes >= 0 and layer_stride >= bytes for '"
                       << name << "'";
  if (perLayer != name.contains("{}"))
    return emitError() << "expects '" << name << "' to hold '{}' exactly when per_layer";
  return success();
}

LogicalResult WeightLayoutAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                       int64_t numLayers, int64_t totalBytes, ArrayAttr slots) {
  if (numLayers < 1 || totalBytes < 0)
    return emitError() << "expects num_layers >= 1 and total_bytes >= 0";
  for (Attribute slot : slots) {
    auto typed = dyn_cast<WeightSlotAttr>(slot);
    if (!typed)
      return emitError() << "expects every slot to be a #falcon.weight_slot, found " << slot;
    // The last copy must end inside the file (no overflow: each term is
    // below 2^63 and checked in 128 bits).
    __int128 copies = typed.getPerLayer() ? numLayers : 1;
    if (typed.getOffset() + (copies - 1) * typed.getLayerStride() + typed.getBytes() >
        totalBytes)
      return emitError() << "slot '" << typed.getName() << "' ends beyond total_bytes ("
                         << totalBytes << ")";
  }
  return success();
}

//===----------------------------------------------------------------------===//
// ModelConfigAttr
//===----------------------------------------------------------------------===//

LogicalResult RankPlanAttr::verify(function_ref<InFlightDiagnostic()> emitError, int64_t tp,
                                   int64_t pp, int64_t rank, int64_t firstLayer,
                                   int64_t numLayers, int64_t firstHead, int64_t numHeads,
                                   int64_t firstKVHead, int64_t numKVHeads, bool,
                                   int64_t ffnOffset, int64_t ffnSize, int64_t vocabOffset,
                                   int64_t vocabSize) {
  if (tp < 1 || pp < 1 || rank < 0 || rank >= tp * pp)
    return emitError() << "expects rank in [0, tp * pp) with positive tp and pp, found rank "
                       << rank << " of tp " << tp << " x pp " << pp;
  for (auto [name, value] : {std::pair<StringRef, int64_t>{"num_layers", numLayers},
                             {"num_heads", numHeads},
                             {"num_kv_heads", numKVHeads},
                             {"ffn_size", ffnSize},
                             {"vocab_size", vocabSize}})
    if (value < 1)
      return emitError() << "expects a positive " << name << ", found " << value;
  for (auto [name, value] : {std::pair<StringRef, int64_t>{"first_layer", firstLayer},
                             {"first_head", firstHead},
                             {"first_kv_head", firstKVHead},
                             {"ffn_offset", ffnOffset},
                             {"vocab_offset", vocabOffset}})
    if (value < 0)
      return emitError() << "expects a non-negative " << name << ", found " << value;
  return success();
}

LogicalResult ModelConfigAttr::verify(
    function_ref<InFlightDiagnostic()> emitError, int64_t vocabSize, int64_t hiddenSize,
    int64_t numLayers, int64_t numHeads, int64_t numKVHeads, int64_t headDim,
    int64_t ffnHiddenSize, QKVLayoutAttr, BoolAttr, int64_t layerNormsPerBlock, BoolAttr,
    BoolAttr, BoolAttr, FloatAttr layerNormEpsilon, int64_t maxPositionEmbeddings) {
  for (auto [name, value] : {std::pair<StringRef, int64_t>{"vocab_size", vocabSize},
                             {"hidden_size", hiddenSize},
                             {"num_hidden_layers", numLayers},
                             {"num_attention_heads", numHeads},
                             {"num_kv_heads", numKVHeads},
                             {"head_dim", headDim},
                             {"ffn_hidden_size", ffnHiddenSize},
                             {"max_position_embeddings", maxPositionEmbeddings}})
    if (value < 1)
      return emitError() << "expects " << name << " to be positive, found " << value;
  if (numHeads % numKVHeads != 0)
    return emitError() << "expects num_attention_heads (" << numHeads
                       << ") to be a multiple of num_kv_heads (" << numKVHeads << ")";
  if (layerNormsPerBlock != 1 && layerNormsPerBlock != 2)
    return emitError() << "expects layer_norms_per_block to be 1 or 2, found "
                       << layerNormsPerBlock;
  if (!layerNormEpsilon || !(layerNormEpsilon.getValueAsDouble() > 0))
    return emitError() << "expects a positive layer_norm_epsilon";
  return success();
}
