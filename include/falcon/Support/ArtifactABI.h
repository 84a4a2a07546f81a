//===- ArtifactABI.h - what falcon-compile and the runtime agree on -*- C++ -*-===//
//
// The artifact's format version and the geometry array its host library
// exports (docs/artifact-format.md). Header-only and LLVM-only: the compiler
// writes these and the runtime (which never links MLIR) checks them.
//
//===----------------------------------------------------------------------===//
#ifndef FALCON_SUPPORT_ARTIFACTABI_H
#define FALCON_SUPPORT_ARTIFACTABI_H

#include "llvm/ADT/StringRef.h"

#include <cstdint>

namespace falcon {

/// manifest.json's format_version: the only one the runtime reads. Version 3
/// added the target (and the CPU features the code needs), the activation
/// dtype and the parallel plan; version 4 gave every row of a batch its own
/// length (the entry point's `past_lens` [B] replaced the scalar `past_len`);
/// version 5 computes logits only for the positions the caller asks for
/// (the entry point's `logit_positions` [B, R]; the logits are [B, R, V]);
/// version 6 added the f16 precision guard (the manifest's
/// `precision_guard`, the entry point's optional `precision_guard` [L + 1]
/// and the geometry's entry count).
inline constexpr int64_t kArtifactFormatVersion = 6;

/// manifest.json's keys that version 3 added, spelled once for the writer
/// (lib/Target/Artifact.cpp) and the reader (runtime/src/core/Manifest.cpp).
namespace manifest {
inline constexpr llvm::StringLiteral kTarget = "target";
inline constexpr llvm::StringLiteral kTargetKind = "kind"; ///< "cpu"
inline constexpr llvm::StringLiteral kTargetTriple = "triple";
inline constexpr llvm::StringLiteral kTargetCPU = "cpu";
/// The ISA features the code needs (LLVM's names, e.g. "avx2").
inline constexpr llvm::StringLiteral kTargetFeatures = "required_features";
inline constexpr llvm::StringLiteral kTargetVectorBits = "vector_bits";
inline constexpr llvm::StringLiteral kActivationDType = "activation_dtype";
/// {"dtype": "f16", "fallback": "bf16", "entries": L + 1}: the entry point
/// takes `precision_guard` (absent: it does not).
inline constexpr llvm::StringLiteral kPrecisionGuard = "precision_guard";
inline constexpr llvm::StringLiteral kPlan = "plan";
inline constexpr llvm::StringLiteral kPlanTP = "tp";
inline constexpr llvm::StringLiteral kPlanPP = "pp";
/// The blocks the code's parallel loops are split into.
inline constexpr llvm::StringLiteral kPlanThreads = "threads";
inline constexpr llvm::StringLiteral kPlanRanks = "ranks";
inline constexpr llvm::StringLiteral kRankIndex = "rank";
inline constexpr llvm::StringLiteral kRankStage = "stage";
inline constexpr llvm::StringLiteral kRankSlot = "slot";
inline constexpr llvm::StringLiteral kRankFirstLayer = "first_layer";
inline constexpr llvm::StringLiteral kRankNumLayers = "num_layers";
/// What the rank's entry point takes first ("input_ids": the first stage,
/// "hidden_in": the previous stage's hidden states) and returns first
/// ("logits": its vocabulary slice, on the last stage; "hidden").
inline constexpr llvm::StringLiteral kRankInput = "input";
inline constexpr llvm::StringLiteral kRankOutput = "output";
/// The rank's share: query heads [first_head, +num_heads), KV heads
/// [first_kv_head, +num_kv_heads) ("kv_replicated" when other slots hold
/// them too) and vocabulary rows [vocab_offset, +vocab_size).
inline constexpr llvm::StringLiteral kRankFirstHead = "first_head";
inline constexpr llvm::StringLiteral kRankNumHeads = "num_heads";
inline constexpr llvm::StringLiteral kRankNumKVHeads = "num_kv_heads";
inline constexpr llvm::StringLiteral kRankVocabOffset = "vocab_offset";
inline constexpr llvm::StringLiteral kRankVocabSize = "vocab_size";
/// A rank's own files (format 3): its host library, the library's entry
/// point, and its weight file ("weights": file, size, checksum, alignment,
/// tensors).
inline constexpr llvm::StringLiteral kRankHostLibrary = "host_library";
inline constexpr llvm::StringLiteral kRankEntryPoint = "entry_point";
inline constexpr llvm::StringLiteral kRankWeights = "weights";
} // namespace manifest

/// An int64 array the host library exports with the geometry its code was
/// compiled for; the runtime compares it with manifest.json, which nothing
/// else ties to the code.
inline constexpr llvm::StringLiteral kGeometrySymbol = "falcon_model_geometry";

/// The entries of kGeometrySymbol, in order.
enum GeometryField : unsigned {
  kGeometryVocabSize,
  kGeometryHiddenSize,
  kGeometryLayers,
  kGeometryAttentionHeads,
  kGeometryKVHeads, ///< of the KV cache
  kGeometryHeadDim, ///< of the KV cache
  kGeometryWeightsBytes,
  kGeometryKVCacheElementBytes, ///< 4 (f32), 2 (bf16, f16)
  kGeometryPrecisionGuardEntries, ///< layers + 1 with the f16 guard, else 0
  kGeometryFieldCount
};

/// The KV-cache element types an artifact may have (manifest
/// "kv_cache.dtype") and their sizes; 0 for any other name.
inline int64_t getKVCacheElementBytes(llvm::StringRef dtype) {
  if (dtype == "f32")
    return 4;
  if (dtype == "bf16" || dtype == "f16")
    return 2;
  return 0;
}

} // namespace falcon

#endif // FALCON_SUPPORT_ARTIFACTABI_H
