//===- Importer.h - Hugging Face checkpoint to falcon IR --------*- C++ -*-===//
#ifndef FALCON_IMPORT_IMPORTER_H
#define FALCON_IMPORT_IMPORTER_H

#include "falcon/Import/FalconConfig.h"
#include "falcon/Import/Safetensors.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

#include <optional>

namespace mlir::falcon {

/// A model as found on disk: its config and, when present, the headers of its
/// safetensors files (checked against the config).
struct Checkpoint {
  std::string configPath;
  /// A short name for messages (the checkpoint directory's name).
  std::string name;
  FalconConfig config;
  /// Absent for a lone config.json.
  std::optional<TensorIndex> tensors;
};

/// Opens MODEL: a checkpoint directory (config.json plus model.safetensors or
/// model.safetensors.index.json and its shards, or no weights at all) or a
/// lone config.json. Validates the config, the safetensors headers and every
/// expected tensor's presence, shape and dtype.
llvm::Expected<Checkpoint> openCheckpoint(llvm::StringRef path);

/// Element type of weight `spec`'s tensors: the stored dtype when the
/// checkpoint has weights, else the config's torch_dtype.
Type getWeightElementType(MLIRContext *context, const Checkpoint &checkpoint,
                          const WeightSpec &spec);

/// Builds the falcon module: one `@decoder_layer` function (all Falcon layers
/// share one shape) and `@forward`, which loops over the layers. The KV
/// cache holds `kvCacheType` values (f32 when null; bf16 or f16 halve it).
OwningOpRef<ModuleOp> importFalconModel(MLIRContext *context,
                                        const Checkpoint &checkpoint,
                                        FloatType kvCacheType = nullptr);

/// Names of the functions the importer creates.
inline constexpr llvm::StringLiteral kForwardFunctionName = "forward";
inline constexpr llvm::StringLiteral kLayerFunctionName = "decoder_layer";

} // namespace mlir::falcon

#endif // FALCON_IMPORT_IMPORTER_H
