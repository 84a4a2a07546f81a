//===- Artifact.h - the artifact directory falcon-run executes --*- C++ -*-===//
//
// Writes manifest.json, the host library, weights.bin and copies of the
// checkpoint's tokenizer and generation files (docs/artifact-format.md).
// Everything goes to a temporary directory first and is renamed into place at
// the end, so a failure never leaves a half-written artifact.
//
//===----------------------------------------------------------------------===//
#ifndef FALCON_TARGET_ARTIFACT_H
#define FALCON_TARGET_ARTIFACT_H

#include "falcon/Import/Importer.h"
#include "falcon/Support/ArtifactABI.h"
#include "falcon/Target/HostLibrary.h"
#include "falcon/Transforms/WeightLayout.h"

#include <functional>
#include <string>
#include <vector>

namespace mlir::falcon {

using ::falcon::kArtifactFormatVersion;
using ::falcon::kGeometrySymbol;
inline constexpr llvm::StringLiteral kHostLibraryName = "libfalcon_model.so";
inline constexpr llvm::StringLiteral kWeightsFileName = "weights.bin";
inline constexpr llvm::StringLiteral kEntryPoint = "_mlir_ciface_forward";

/// The checkpoint files an artifact carries unchanged (byte for byte, at its
/// root, under the same names) when the checkpoint directory has them: what
/// the runtime needs to turn text into ids and back, and the model's
/// default generation settings.
inline constexpr llvm::StringLiteral kCopiedCheckpointFiles[] = {
    "tokenizer.json", "tokenizer_config.json", "generation_config.json"};

/// The paths of the kCopiedCheckpointFiles that `checkpoint`'s directory
/// holds (none for a lone config.json, which has no weights either).
std::vector<std::string> getCopiedCheckpointFiles(const Checkpoint &checkpoint);

/// Progress messages (stage names, percentages) for long work.
using ProgressFn = std::function<void(llvm::StringRef)>;

/// Success when `directory` may receive an artifact: it does not exist, or
/// it is an artifact (nothing but its files, with a manifest.json that has a
/// format_version), which is then replaced. Anything else is never
/// overwritten.
llvm::Error checkArtifactDestination(llvm::StringRef directory);

/// One rank's program: the module after the CPU pipeline, and the layout of
/// its weights (falcon-bind-weights). A module sharded by falcon-shard
/// carries its #falcon.rank_plan.
struct RankProgram {
  ModuleOp llvmModule;
  WeightLayout layout;
};

/// The files of rank `rank` in an artifact of `worldSize` ranks: one rank
/// keeps the plain names (libfalcon_model.so, weights.bin), more get
/// libfalcon_model.rankR.so and weights.rankR.bin.
std::string getHostLibraryName(int64_t rank, int64_t worldSize);
std::string getWeightsFileName(int64_t rank, int64_t worldSize);

/// Writes the artifact `directory` for `checkpoint` with one program per
/// rank of a tp x pp plan (ranks in order; tp = pp = 1: one program).
llvm::Error writeArtifact(llvm::StringRef directory, const Checkpoint &checkpoint,
                          llvm::ArrayRef<RankProgram> ranks, int64_t tp, int64_t pp,
                          const HostLibraryOptions &options,
                          const ProgressFn &progress);

} // namespace mlir::falcon

#endif // FALCON_TARGET_ARTIFACT_H
