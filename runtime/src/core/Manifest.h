//===- Manifest.h - artifact manifest.json ----------------------*- C++ -*-===//
//
// The parsed and validated manifest of an artifact (docs/artifact-format.md).
//
//===----------------------------------------------------------------------===//

#ifndef FALCON_RUNTIME_CORE_MANIFEST_H
#define FALCON_RUNTIME_CORE_MANIFEST_H

#include "falcon/runtime.h"

#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include "falcon/Support/ArtifactABI.h"

#include <string>
#include <vector>

namespace falcon::runtime {


/// One rank of the plan (docs/artifact-format.md, "plan").
struct ManifestRank {
  int64_t stage = 0;
  int64_t slot = 0;
  int64_t firstLayer = 0;
  int64_t numLayers = 0;
  // The rank's files, relative to the artifact directory.
  std::string hostLibrary;
  std::string entryPoint;
  // "weights".
  std::string weightsFile;
  uint64_t weightsSize = 0;
  uint64_t weightsChecksum = 0;
  // Its share (the whole model for a single rank; absent keys default to
  // that): query heads, KV heads, vocabulary rows.
  int64_t firstHead = 0, numHeads = 0;
  int64_t firstKVHead = 0, numKVHeads = 0;
  int64_t vocabOffset = 0, vocabSize = 0;
  /// What its entry point takes ("input": hidden states of the previous
  /// stage instead of token ids) and returns ("output": its logits slice,
  /// on the last stage, or hidden states).
  bool inputHidden = false;
  bool outputLogits = true;
  bool isFirstStage() const { return !inputHidden; }
  bool isLastStage() const { return outputLogits; }
  /// The features of what its entry point returns: its vocabulary slice,
  /// or the model's `hiddenSize` before the last stage.
  int64_t outputFeatures(int64_t hiddenSize) const {
    return outputLogits ? vocabSize : hiddenSize;
  }
};

struct Manifest {
  std::string modelName;

  // "target": the machine the code was generated for.
  std::string targetTriple;
  std::string targetCPU;
  /// ISA features the code needs (LLVM's names).
  std::vector<std::string> requiredFeatures;
  int64_t vectorBits = 0;

  // "plan".
  int64_t tensorParallel = 1;
  int64_t pipelineParallel = 1;
  int64_t threads = 1;
  std::vector<ManifestRank> ranks;

  // "config": the model hyper-parameters.
  int64_t vocabSize = 0;
  int64_t hiddenSize = 0;
  int64_t numLayers = 0;
  int64_t numAttentionHeads = 0;
  int64_t numKVHeads = 0;
  int64_t headDim = 0;
  int64_t maxPositionEmbeddings = 0;
  bool alibi = false;

  // "kv_cache": the cache geometry the entry point was compiled for.
  int64_t cacheLayers = 0;
  int64_t cacheKVHeads = 0;
  int64_t cacheHeadDim = 0;
  /// "f32", "bf16" or "f16", and its size in bytes.
  std::string cacheDType;
  int64_t cacheElementBytes = 0;

  /// "precision_guard": the entry point's precision_guard entries (layers
  /// + 1: the LM head's last); 0 when the artifact has no guard.
  int64_t precisionGuardEntries = 0;
};

/// Parses manifest text; `path` prefixes every error message. Every key the
/// runtime relies on must be present with the right type; format_version is
/// checked first so that a future format gets a version error, not a
/// missing-key error.
falcon_status_t parseManifest(llvm::StringRef text, llvm::StringRef path,
                              Manifest &outManifest);

/// Reads and parses the file at `path`.
falcon_status_t readManifest(llvm::StringRef path, Manifest &outManifest);

} // namespace falcon::runtime

#endif // FALCON_RUNTIME_CORE_MANIFEST_H
