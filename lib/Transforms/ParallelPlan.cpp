//===- ParallelPlan.cpp - tensor x pipeline parallel plans ----------------===//

#include "falcon/Transforms/ParallelPlan.h"

#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <limits>
#include <numeric>

using namespace mlir;
using namespace mlir::falcon;

PlanModel PlanModel::fromConfig(ModelConfigAttr config) {
  PlanModel model;
  model.vocabSize = config.getVocabSize();
  model.hiddenSize = config.getHiddenSize();
  model.numLayers = config.getNumHiddenLayers();
  model.numHeads = config.getNumAttentionHeads();
  model.numKVHeads = config.getNumKvHeads();
  model.headDim = config.getHeadDim();
  model.ffnHiddenSize = config.getFfnHiddenSize();
  model.qkvLayout = config.getQkvLayout().getValue();
  return model;
}

std::pair<int64_t, int64_t> mlir::falcon::splitEvenly(int64_t total, int64_t parts,
                                                      int64_t index) {
  int64_t base = total / parts, extra = total % parts;
  int64_t begin = index * base + std::min(index, extra);
  return {begin, base + (index < extra ? 1 : 0)};
}

llvm::Expected<ParallelPlan> mlir::falcon::computeParallelPlan(const PlanModel &model,
                                                               int64_t tp, int64_t pp) {
  auto fail = [](const llvm::Twine &message) {
    return llvm::createStringError(message.str());
  };
  if (tp < 1 || pp < 1)
    return fail(llvm::formatv("--tp and --pp must be at least 1, found tp {0} and pp {1}",
                              tp, pp)
                    .str());
  if (tp > model.numHeads)
    return fail(llvm::formatv("tensor parallelism {0} is larger than the model's {1} query "
                              "heads (each rank needs at least one head)",
                              tp, model.numHeads)
                    .str());
  if (pp > model.numLayers)
    return fail(llvm::formatv("pipeline parallelism {0} is larger than the model's {1} "
                              "layers (each stage needs at least one layer)",
                              pp, model.numLayers)
                    .str());
  if (tp > model.ffnHiddenSize || tp > model.vocabSize)
    return fail(llvm::formatv("tensor parallelism {0} is larger than the FFN width ({1}) "
                              "or the vocabulary ({2})",
                              tp, model.ffnHiddenSize, model.vocabSize)
                    .str());
  ParallelPlan plan;
  plan.tp = tp;
  plan.pp = pp;
  int64_t groups = model.numKVHeads;
  int64_t perGroup = model.numHeads / groups;
  for (int64_t slot = 0; slot < tp; ++slot) {
    SlotShard shard;
    if (tp <= groups) {
      // Whole KV groups, each with its query heads.
      auto [firstGroup, numGroups] = splitEvenly(groups, tp, slot);
      shard.firstKVHead = firstGroup;
      shard.numKVHeads = numGroups;
      shard.firstHead = firstGroup * perGroup;
      shard.numHeads = numGroups * perGroup;
    } else {
      // More slots than groups: each group's slots split its query heads
      // and each holds a copy of the group's K/V.
      int64_t group = 0, slotInGroup = slot, slotsInGroup = 0;
      for (;; ++group) {
        slotsInGroup = splitEvenly(tp, groups, group).second;
        if (slotInGroup < slotsInGroup)
          break;
        slotInGroup -= slotsInGroup;
      }
      if (slotsInGroup > perGroup)
        return fail(llvm::formatv("tensor parallelism {0} puts {1} ranks on a KV group of "
                                  "{2} query heads ({3} heads, {4} KV heads): each rank "
                                  "needs at least one query head of its group",
                                  tp, slotsInGroup, perGroup, model.numHeads, groups)
                        .str());
      auto [firstHead, numHeads] = splitEvenly(perGroup, slotsInGroup, slotInGroup);
      shard.firstKVHead = group;
      shard.numKVHeads = 1;
      shard.kvReplicated = true;
      shard.firstHead = group * perGroup + firstHead;
      shard.numHeads = numHeads;
    }
    std::tie(shard.ffnOffset, shard.ffnSize) = splitEvenly(model.ffnHiddenSize, tp, slot);
    std::tie(shard.vocabOffset, shard.vocabSize) = splitEvenly(model.vocabSize, tp, slot);
    std::vector<int64_t> heads(size_t(shard.numHeads));
    std::iota(heads.begin(), heads.end(), shard.firstHead);
    shard.qkvRows = getFusedQKVRows(model.qkvLayout, model.numHeads, model.numKVHeads,
                                    model.headDim, heads);
    plan.slots.push_back(std::move(shard));
  }

  // Stages: contiguous layers minimizing the costliest stage, a decoder
  // layer costing 1 and the LM head (on the last stage) its share of a
  // layer's multiply-adds per token.
  double layerCost = double(model.hiddenSize) *
                     double((model.numHeads + 2 * groups) * model.headDim +
                            model.numHeads * model.headDim + 2 * model.ffnHiddenSize);
  double headCost = double(model.hiddenSize) * double(model.vocabSize) / layerCost;
  int64_t layers = model.numLayers;
  // best[s][l]: the lowest max cost of stages s.. over layers l..; stages
  // are filled from the back so that the head's stage is known.
  const double infinity = std::numeric_limits<double>::infinity();
  std::vector<std::vector<double>> best(pp + 1, std::vector<double>(layers + 1, infinity));
  std::vector<std::vector<int64_t>> take(pp + 1, std::vector<int64_t>(layers + 1, 0));
  best[pp][layers] = 0;
  for (int64_t stage = pp - 1; stage >= 0; --stage) {
    double extra = stage == pp - 1 ? headCost : 0.0;
    for (int64_t first = layers - 1; first >= 0; --first)
      for (int64_t count = 1; first + count <= layers; ++count) {
        double cost = std::max(double(count) + extra, best[stage + 1][first + count]);
        // Ties go to the longer stage: earlier stages carry more layers.
        if (cost <= best[stage][first] + 1e-9) {
          best[stage][first] = cost;
          take[stage][first] = count;
        }
      }
  }
  for (int64_t stage = 0, first = 0; stage < pp; ++stage) {
    int64_t count = take[stage][first];
    plan.stages.push_back({first, count});
    first += count;
  }
  return plan;
}
