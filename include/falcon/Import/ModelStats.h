//===- ModelStats.h - parameter and memory figures --------------*- C++ -*-===//
#ifndef FALCON_IMPORT_MODELSTATS_H
#define FALCON_IMPORT_MODELSTATS_H

#include "falcon/Import/Importer.h"
#include "falcon/Support/WeightTransform.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/raw_ostream.h"

#include <string>

namespace mlir::falcon {

/// What falcon-compile --print-stats sizes the runtime figures for.
struct ModelStatsOptions {
  /// The KV cache's element type (--kv-cache-dtype) and its size in bytes.
  std::string kvCacheDType = "f32";
  int64_t kvCacheElementBytes = 4;
  /// Tokens per row the cache holds (0: max_position_embeddings, the
  /// runtime's default) and rows (--stats-capacity, --stats-batch).
  int64_t capacity = 0;
  int64_t batch = 1;
  /// Keys per block of the tiled attention (--attention-keys): one block's
  /// scores exist at a time.
  int64_t attentionKeys = 512;
  /// Bytes of the checkpoint files copied into the artifact (tokenizer.json,
  /// tokenizer_config.json, generation_config.json).
  uint64_t copiedFileBytes = 0;
};

/// Disk allowance for one host library (libfalcon_model.so) and the
/// manifest: the libraries measured are 0.2 to 0.3 MiB (the code is the same
/// loops for any model size; a sanitized one is larger).
inline constexpr uint64_t kHostLibraryBytesAllowance = 8ull << 20;

/// The bytes of weights.bin in a one-rank artifact of `checkpoint`: every
/// weight in its stored dtype (the checkpoint's, or torch_dtype for a lone
/// config), each copy starting at a 64-byte boundary, and with tied word
/// embeddings a second copy of the embedding laid out for the LM head. With
/// `quantization`, the projection weights take getQuantizedWeightBytes
/// instead; the embedding, LayerNorms and biases stay as stored, and so does
/// the LM head unless `lmHeadInt8` (--quantize-lm-head: int8 in the groups
/// and symmetry of `quantization`). A GPTQ/AWQ checkpoint's projections count
/// as stored: its own scheme, asymmetric, with act-order's input order.
uint64_t getArtifactWeightBytes(const Checkpoint &checkpoint, MLIRContext *context,
                                const ::falcon::WeightQuantization *quantization = nullptr,
                                bool lmHeadInt8 = false);

/// The stored dtypes of the weights ("f32", "bf16", "f16"; several joined
/// by '/').
std::string getArtifactWeightDTypes(const Checkpoint &checkpoint, MLIRContext *context);

/// Formats `bytes` with a binary unit and one decimal ("1.2 GiB").
std::string formatByteSize(uint64_t bytes);

/// Prints the exact parameter count, the weight bytes at bf16, int8 and int4,
/// the per-token KV-cache bytes, the memory a run needs, the artifact's disk
/// size and the size of the imported IR.
void printModelStats(const Checkpoint &checkpoint, ModuleOp module,
                     const ModelStatsOptions &options, llvm::raw_ostream &os);

} // namespace mlir::falcon

#endif // FALCON_IMPORT_MODELSTATS_H
