//===- Pruning.h - structured pruning of a Falcon checkpoint ----*- C++ -*-===//
//
// falcon-compile --prune-heads R --prune-ffn R (docs/precision.md,
// "Structured pruning"): query heads within each KV group and MLP neurons
// (dense_h_to_4h rows with the matching dense_4h_to_h columns) are ranked by
// what they contribute on a calibration text, and the least important are
// removed. The result is a smaller checkpoint (config.json with the new
// num_attention_heads, head_dim and ffn_hidden_size; model.safetensors with
// the kept rows and columns, cut by the weight-transform library), which
// compiles like any other and whose shapes the IR states.
//
// Importance is measured by an f32 forward pass over the calibration tokens
// that follows the spec (falcon-architecture.md sections 4-6):
//   head h of layer l:   sum over tokens of |dense[:, head h] . context_h|^2,
//                        the energy of the head's share of the attention output;
//   neuron j of layer l: sum over tokens of gelu(up . x)_j^2 * |down[:, j]|^2,
//                        likewise for the MLP output.
//
//===----------------------------------------------------------------------===//
#ifndef FALCON_IMPORT_PRUNING_H
#define FALCON_IMPORT_PRUNING_H

#include "falcon/Import/Importer.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <string>
#include <vector>

namespace mlir::falcon {

/// Per-layer importance of every query head and MLP neuron.
struct PruningImportance {
  /// [layer][query head], [layer][neuron].
  std::vector<std::vector<double>> heads, neurons;
  int64_t calibrationTokens = 0;
};

/// Calibration windows hold at most this many tokens (each starts at
/// position 0), and never more than max_position_embeddings.
inline constexpr int64_t kPruningCalibrationWindow = 512;

/// Runs the calibration forward pass of `checkpoint` (float weights) over
/// `tokens` and returns the importance of its heads and neurons. `progress`
/// is called after each layer of each window.
llvm::Expected<PruningImportance>
computePruningImportance(const Checkpoint &checkpoint, llvm::ArrayRef<int64_t> tokens,
                         llvm::function_ref<void(int64_t window, int64_t windows,
                                                 int64_t layer)>
                             progress = nullptr);

/// What a pruned model keeps: per layer, the query heads and neurons, in
/// ascending order; the same number in every layer (and, for heads, in every
/// KV group), so that one layer function states every layer's shapes.
struct PruningSelection {
  double headRatio = 0, ffnRatio = 0;
  std::vector<std::vector<int64_t>> keptHeads, keptNeurons;
  int64_t calibrationTokens = 0;
};

/// One-line error, or the empty string, for ratios `heads` and `ffn` on the
/// model `config` describes: each in [0, 1); heads only where a KV group has
/// more than one query head (multi-query and grouped attention).
std::string checkPruningRatios(const FalconConfig &config, double heads, double ffn);

/// Removes round(heads x queries per group) query heads from every KV group
/// and round(ffn x ffn_hidden_size) neurons from every layer (rounded so that
/// the kept neurons are a multiple of 16, the CPU kernels' column tile, when
/// ffn_hidden_size is), the least important first (ties: the lower index is
/// kept).
PruningSelection selectPruning(const FalconConfig &config, const PruningImportance &importance,
                               double heads, double ffn);

/// The config of the pruned model.
FalconConfig getPrunedConfig(const FalconConfig &config, const PruningSelection &selection);

/// Writes the pruned model to directory `out`: config.json (the checkpoint's,
/// with the new sizes and a "falcon_pruning" entry), model.safetensors (the
/// kept rows and columns, in the checkpoint's dtypes), pruning.json (the
/// report: what each layer keeps and removes, with the importance) and a
/// copy of each of `copiedFiles` (tokenizer, generation config). The
/// directory is written beside `out` and renamed into place; an existing
/// `out` is replaced only if it is a pruned model (it holds pruning.json).
llvm::Error writePrunedCheckpoint(const Checkpoint &checkpoint,
                                  const PruningImportance &importance,
                                  const PruningSelection &selection, llvm::StringRef out,
                                  llvm::ArrayRef<std::string> copiedFiles);

/// A few lines for the terminal: heads and neurons per layer before and
/// after, parameters before and after.
void printPruningSummary(const FalconConfig &config, const PruningSelection &selection,
                         llvm::raw_ostream &os);

} // namespace mlir::falcon

#endif // FALCON_IMPORT_PRUNING_H
