//===- FalconConfig.h - Hugging Face Falcon config.json ---------*- C++ -*-===//
//
// The computation-relevant fields of a Falcon `config.json` (spec section 1),
// the quantities derived from them (section 2) and the list of weights a
// checkpoint of that config holds (section 8).
//
//===----------------------------------------------------------------------===//
#ifndef FALCON_IMPORT_FALCONCONFIG_H
#define FALCON_IMPORT_FALCONCONFIG_H

#include "Falcon/IR/FalconOps.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <optional>
#include <string>
#include <vector>

namespace mlir::falcon {

/// A checkpoint whose projections were quantized by another tool
/// (`quantization_config` in config.json), imported as they are, without
/// re-quantizing (docs/precision.md, "GPTQ and AWQ checkpoints").
struct CheckpointQuantization {
  enum class Method {
    /// AutoGPTQ / optimum: `qweight` [in * bits / 32, out] (inputs packed
    /// along the rows), `qzeros` [groups, out * bits / 32], `scales`
    /// [groups, out], `g_idx` [in].
    GPTQ,
    /// AutoAWQ's GEMM packing: `qweight` [in, out * bits / 32] (outputs
    /// packed in the order 0, 2, 4, 6, 1, 3, 5, 7), `qzeros` likewise,
    /// `scales` [groups, out].
    AWQ,
  };
  Method method = Method::GPTQ;
  unsigned bits = 4;
  int64_t groupSize = 128;
  /// GPTQ's act-order (`desc_act`): groups given by g_idx, not consecutive.
  bool actOrder = false;
  /// GPTQ's `checkpoint_format` "gptq" stores each zero point minus 1
  /// (AutoGPTQ's historical offset); "gptq_v2" stores it as it is.
  int64_t zeroPointOffset = 1;
};

/// How the decoder block combines attention and MLP (spec section 4).
enum class BlockKind {
  /// (c) falcon-rw: x + attn(LN_in(x)), then + mlp(LN_post(.)).
  Sequential,
  /// (a)/(b') falcon-7b, falcon-11B: one LayerNorm feeds attention and MLP.
  ParallelSharedNorm,
  /// (b) falcon-40b/180B: ln_attn feeds attention, ln_mlp feeds the MLP.
  ParallelTwoNorms,
};

struct FalconConfig {
  int64_t vocabSize = 0;
  int64_t hiddenSize = 0;
  int64_t numLayers = 0;
  int64_t numHeads = 0;
  /// `num_kv_heads` as written (or defaulted to num_heads).
  int64_t numKVHeadsField = 0;
  int64_t ffnHiddenSize = 0;
  /// `head_dim` when the config states it (a pruned model, whose query heads
  /// no longer tile hidden_size: docs/precision.md, "Structured pruning");
  /// absent otherwise, and the head size is hidden_size / num_attention_heads.
  std::optional<int64_t> headDimField;
  bool multiQuery = true;
  bool newDecoderArchitecture = false;
  bool parallelAttn = true;
  std::optional<int64_t> numLnInParallelAttn;
  bool alibi = false;
  bool bias = false;
  bool tieWordEmbeddings = true;
  double layerNormEpsilon = 1e-5;
  double ropeTheta = 10000.0;
  RopeScaling ropeScaling = RopeScaling::None;
  double ropeFactor = 1.0;
  int64_t maxPositionEmbeddings = 2048;
  /// Storage dtype declared by `torch_dtype` ("bfloat16" when absent).
  std::string torchDtype = "bfloat16";
  /// Set for a GPTQ or AWQ checkpoint.
  std::optional<CheckpointQuantization> quantization;

  int64_t headDim() const { return headDimField ? *headDimField : hiddenSize / numHeads; }
  /// Width of the attention's output (the dense projection's inputs):
  /// num_attention_heads x head size, hidden_size unless pruned.
  int64_t attentionWidth() const { return numHeads * headDim(); }
  /// Effective KV heads: num_kv_heads (grouped), 1 (multi-query) or H.
  int64_t kvHeads() const;
  QKVLayout qkvLayout() const;
  int64_t qkvOutFeatures() const;
  BlockKind blockKind() const;
  /// Number of LayerNorms per block (1 or 2).
  int64_t layerNormsPerBlock() const {
    return blockKind() == BlockKind::ParallelSharedNorm ? 1 : 2;
  }
};

/// Parses and validates config.json text; errors are prefixed by `fileName`.
llvm::Expected<FalconConfig> parseFalconConfig(llvm::StringRef text,
                                               llvm::StringRef fileName);
llvm::Expected<FalconConfig> loadFalconConfig(llvm::StringRef path);

/// One weight tensor a checkpoint of a given config holds.
struct WeightSpec {
  /// Full name, or for per-layer weights the name with a `{}` placeholder
  /// standing for the layer index.
  std::string name;
  llvm::SmallVector<int64_t, 2> shape;
  bool perLayer = false;
  /// A projection's [out, in] weight (QKV, dense, dense_h_to_4h,
  /// dense_4h_to_h): what weight-only quantization applies to.
  bool projection = false;

  int64_t numElements() const;
  /// The name of this weight in layer `layer` (perLayer only).
  std::string nameForLayer(int64_t layer) const;
};

/// Every weight of the model, in a fixed order: the embedding, the per-layer
/// weights (in the order of the layer function's arguments), ln_f and, when
/// untied, lm_head.
std::vector<WeightSpec> getWeightSpecs(const FalconConfig &config);

/// Exact parameter count (a tied head is counted once).
int64_t getParameterCount(const FalconConfig &config);

} // namespace mlir::falcon

#endif // FALCON_IMPORT_FALCONCONFIG_H
