//===- WeightLayout.h - placement of weights in weights.bin ----*- C++ -*-===//
//
// One function decides where every weight lives in the packed buffer; the
// falcon-bind-weights pass (which builds the views) and the artifact writer
// (which writes the bytes) both call it, so they cannot disagree.
//
//===----------------------------------------------------------------------===//
#ifndef FALCON_TRANSFORMS_WEIGHTLAYOUT_H
#define FALCON_TRANSFORMS_WEIGHTLAYOUT_H

#include "Falcon/IR/FalconOps.h"
#include "falcon/Support/WeightTransform.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/BuiltinTypes.h"

#include <string>
#include <vector>

namespace mlir::falcon {

/// Alignment of every tensor in the packed buffer: the weight-transform
/// library's, whose layoutWeightFiles places them.
inline constexpr uint64_t kWeightAlignment = ::falcon::kWeightFileAlignment;

struct WeightSlot {
  /// The falcon.param name (with `{}` for per-layer weights).
  std::string name;
  RankedTensorType type;
  bool perLayer = false;
  /// How the checkpoint tensor is sharded, permuted or quantized into
  /// `type` (null: stored as it is).
  WeightEncodingAttr encoding;
  /// Byte offset of the tensor (of layer 0 for per-layer weights).
  uint64_t offset = 0;
  /// Distance between consecutive layers' copies (per-layer weights).
  uint64_t layerStride = 0;
  /// Bytes of one copy.
  uint64_t bytes = 0;
};

struct WeightLayout {
  std::vector<WeightSlot> slots;
  int64_t numLayers = 0;
  /// The checkpoint layer of copy 0 (a pipeline stage's first layer): copy i
  /// of a per-layer weight is checkpoint layer firstLayer + i.
  int64_t firstLayer = 0;
  uint64_t totalBytes = 0;

  const WeightSlot *lookup(llvm::StringRef name, WeightEncodingAttr encoding) const;
};

/// Lays out the distinct falcon.param (name, encoding) pairs of `module` in
/// order of first appearance, placed by the weight-transform library's
/// layoutWeightFiles (the one placement rule of every weight file). Per-layer
/// weights get `numLayers` consecutive copies, taken from the module's
/// `#falcon.model_config`. Fails (with a diagnostic) if that attribute is
/// missing or one name is used with two types.
FailureOr<WeightLayout> computeWeightLayout(ModuleOp module);

/// Name of the module attribute in which falcon-bind-weights records the
/// layout it bound, for the artifact writer.
inline constexpr llvm::StringLiteral kWeightLayoutAttrName = FalconDialect::kWeightLayoutAttrName;

/// The weight-transform library's description of how checkpoint tensor
/// `name` (of `sourceShape`) becomes `slot`'s bytes: the slot's encoding as
/// steps (shard, then permutation, then quantization of a checkpoint tensor
/// whose elements are `sourceFloat`; unquantized ones are copied as they are).
llvm::Expected<::falcon::WeightTransform>
getWeightTransform(const WeightSlot &slot, llvm::StringRef name,
                   llvm::ArrayRef<int64_t> sourceShape,
                   ::falcon::WeightTransform::Quantize::Float sourceFloat);

/// Records `layout` on `module` as a `#falcon.weight_layout` / reads it back.
void setWeightLayoutAttr(ModuleOp module, const WeightLayout &layout);
FailureOr<WeightLayout> getWeightLayoutAttr(ModuleOp module);

} // namespace mlir::falcon

#endif // FALCON_TRANSFORMS_WEIGHTLAYOUT_H
