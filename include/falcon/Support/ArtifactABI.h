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

/// manifest.json's format_version: the only one the runtime reads.
inline constexpr int64_t kArtifactFormatVersion = 2;

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
  kGeometryFieldCount
};

} // namespace falcon

#endif // FALCON_SUPPORT_ARTIFACTABI_H
