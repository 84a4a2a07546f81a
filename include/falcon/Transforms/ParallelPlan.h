//===- ParallelPlan.h - tensor x pipeline parallel plans --------*- C++ -*-===//
//
// Which part of a Falcon model each rank of a tp x pp plan holds: the one
// place that decides it, for the sharding pass (falcon-shard), the artifact
// writer and --print-plan. Rank r is stage r / tp and tensor slot r % tp.
//
// Tensor parallel (Megatron): the fused QKV projection is split by KV group
// with the group's query heads; with more slots than KV groups, each slot
// holds part of one group's query heads and a copy of its K/V (replicated).
// Query heads, FFN columns and vocabulary rows split as evenly as they can
// (falcon-7b's 71 heads on tp 2: 36 + 35); nothing is padded.
// Pipeline parallel: contiguous layer stages, balanced by cost (the last
// stage also runs the LM head, weighed in decoder layers).
//
//===----------------------------------------------------------------------===//
#ifndef FALCON_TRANSFORMS_PARALLELPLAN_H
#define FALCON_TRANSFORMS_PARALLELPLAN_H

#include "Falcon/IR/FalconOps.h"

#include "llvm/Support/Error.h"

#include <cstdint>
#include <vector>

namespace mlir::falcon {

/// The model sizes a plan depends on (#falcon.model_config).
struct PlanModel {
  int64_t vocabSize = 0;
  int64_t hiddenSize = 0;
  int64_t numLayers = 0;
  int64_t numHeads = 0;
  int64_t numKVHeads = 0;
  int64_t headDim = 0;
  int64_t ffnHiddenSize = 0;
  QKVLayout qkvLayout = QKVLayout::MultiQuery;

  static PlanModel fromConfig(ModelConfigAttr config);
};

/// What one tensor slot holds (the same in every stage).
struct SlotShard {
  int64_t firstHead = 0, numHeads = 0;
  int64_t firstKVHead = 0, numKVHeads = 0;
  /// Other slots hold the same KV heads (more slots than KV heads).
  bool kvReplicated = false;
  int64_t ffnOffset = 0, ffnSize = 0;
  int64_t vocabOffset = 0, vocabSize = 0;
  /// The rows of the fused query_key_value weight (and bias) this slot
  /// holds, in order: its heads' rows in the model's own layout, so that
  /// the slot's fused projection has that layout with its own head counts.
  std::vector<int64_t> qkvRows;
};

/// What one pipeline stage runs.
struct StageShard {
  int64_t firstLayer = 0, numLayers = 0;
};

struct ParallelPlan {
  int64_t tp = 1, pp = 1;
  std::vector<SlotShard> slots;
  std::vector<StageShard> stages;

  int64_t getWorldSize() const { return tp * pp; }
  const SlotShard &slotOf(int64_t rank) const { return slots[rank % tp]; }
  const StageShard &stageOf(int64_t rank) const { return stages[rank / tp]; }
};

/// The plan of `model` on tp x pp ranks, or an error naming the numbers that
/// make it impossible (tp larger than the query heads, pp larger than the
/// layers, too few query heads per KV group for its slots, ...).
llvm::Expected<ParallelPlan> computeParallelPlan(const PlanModel &model, int64_t tp,
                                                 int64_t pp);

/// [begin, begin + size) of part `index` when `total` splits into `parts`
/// as evenly as possible (the first `total % parts` parts one larger).
std::pair<int64_t, int64_t> splitEvenly(int64_t total, int64_t parts, int64_t index);

} // namespace mlir::falcon

#endif // FALCON_TRANSFORMS_PARALLELPLAN_H
