//===- PlanReport.cpp - what each rank of a plan holds and sends ----------===//

#include "falcon/Transforms/PlanReport.h"
#include "falcon/Support/WeightTransform.h"
#include "falcon/Transforms/Passes.h"
#include "Falcon/IR/FalconOps.h"

#include "mlir/Pass/PassManager.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mlir;
using namespace mlir::falcon;

static int64_t elementBytes(Type type) {
  return int64_t(type.getIntOrFloatBitWidth() + 7) / 8;
}

/// Whether `param` is the weight of a decoder layer's projection: what
/// falcon-compile --quantize quantizes.
static bool isProjectionWeight(Value value) {
  return llvm::any_of(value.getUses(), [](OpOperand &use) {
    if (auto projection = dyn_cast<ProjectionOpInterface>(use.getOwner()))
      return &projection.getWeightMutable() == &use;
    // The layer loop passes its weights to the layer function.
    auto call = dyn_cast<func::CallOp>(use.getOwner());
    auto callee = call ? SymbolTable::lookupNearestSymbolFrom<func::FuncOp>(
                             call, call.getCalleeAttr())
                       : func::FuncOp();
    return callee && !callee.isExternal() &&
           isProjectionWeight(callee.getArgument(use.getOperandNumber()));
  });
}

static bool isQuantizable(ParamOp param) {
  return param.getLayer() && isProjectionWeight(param.getResult());
}

FailureOr<llvm::json::Object>
mlir::falcon::reportParallelPlan(ModuleOp module, int64_t tp, int64_t pp,
                                 int64_t kvCacheElementBytes,
                                 const ::falcon::WeightQuantization *quantization,
                                 bool lmHeadInt8) {
  auto config = module->getAttrOfType<ModelConfigAttr>(FalconDialect::kModelConfigAttrName);
  if (!config)
    return module.emitError("expects a '#falcon.model_config' on the module");
  int64_t numLayers = config.getNumHiddenLayers(), hidden = config.getHiddenSize();
  // Elements of every checkpoint tensor (per-layer ones times the layers)
  // and how many of them the ranks hold together.
  struct Held {
    int64_t fullElements = 0;
    int64_t heldElements = 0;
    int64_t fullBytes = 0;
  };
  llvm::MapVector<StringRef, Held> tensors;
  // The bytes of one copy of `param` (of `type`) as the artifact stores it.
  auto storedBytes = [&](ParamOp param, RankedTensorType type) -> int64_t {
    int64_t bytes = type.getNumElements() * elementBytes(type.getElementType());
    // Quantized: the [out, in] weight's codes, scales and zero points, as
    // the weight-transform library sizes them (a weight no group divides
    // stays as stored, as falcon-quantize-weights leaves it).
    if (quantization && isQuantizable(param)) {
      llvm::Expected<uint64_t> quantized = ::falcon::getQuantizedWeightBytes(
          param.getName(), /*inputs=*/type.getDimSize(1), /*outputs=*/type.getDimSize(0),
          *quantization);
      if (quantized)
        return int64_t(*quantized);
      llvm::consumeError(quantized.takeError());
    }
    // The LM head int8: its own codes (beside a tied table's stored rows).
    if (quantization && lmHeadInt8 && !param.getLayer() && isProjectionWeight(param.getResult())) {
      std::optional<uint64_t> quantized = ::falcon::getInt8LMHeadBytes(
          param.getName(), /*inputs=*/type.getDimSize(1), /*outputs=*/type.getDimSize(0),
          *quantization);
      if (!quantized)
        return bytes;
      bool table = llvm::any_of(param->getUsers(),
                                [](Operation *user) { return isa<EmbeddingOp>(user); });
      return int64_t(*quantized) + (table ? bytes : 0);
    }
    return bytes;
  };
  auto recordFull = [&](ParamOp param, RankedTensorType checkpointType) {
    Held &held = tensors[param.getName()];
    int64_t copies = param.getLayer() ? numLayers : 1;
    held.fullElements = checkpointType.getNumElements() * copies;
    held.fullBytes = storedBytes(param, checkpointType) * copies;
  };
  // The unsharded module knows the checkpoint shapes.
  module.walk([&](ParamOp param) {
    if (!tensors.count(param.getName()))
      recordFull(param, cast<RankedTensorType>(param.getType()));
  });

  llvm::json::Array ranks;
  int64_t summedBytes = 0;
  for (int64_t rank = 0; rank < tp * pp; ++rank) {
    OwningOpRef<ModuleOp> clone = module.clone();
    PassManager pm(module.getContext());
    pm.addPass(createFalconShard(FalconShardOptions{tp, pp, rank}));
    if (failed(pm.run(*clone)))
      return failure();
    auto plan = (*clone)->getAttrOfType<RankPlanAttr>(FalconDialect::kRankPlanAttrName);
    int64_t firstLayer = plan ? plan.getFirstLayer() : 0;
    int64_t stageLayers = plan ? plan.getNumLayers() : numLayers;
    int64_t numHeads = plan ? plan.getNumHeads() : config.getNumAttentionHeads();
    int64_t firstHead = plan ? plan.getFirstHead() : 0;
    int64_t numKVHeads = plan ? plan.getNumKvHeads() : config.getNumKvHeads();
    int64_t firstKVHead = plan ? plan.getFirstKvHead() : 0;
    int64_t vocabOffset = plan ? plan.getVocabOffset() : 0;
    int64_t vocabSize = plan ? plan.getVocabSize() : config.getVocabSize();
    // Distinct (name, encoding) params, as the weight layout places them.
    llvm::DenseSet<std::pair<StringRef, Attribute>> seen;
    int64_t weightBytes = 0;
    (*clone)->walk([&](ParamOp param) {
      if (!seen.insert({param.getName(), param.getEncodingAttr()}).second)
        return;
      auto type = cast<RankedTensorType>(param.getType());
      int64_t copies = param.getLayer() ? stageLayers : 1;
      weightBytes += storedBytes(param, type) * copies;
      tensors[param.getName()].heldElements += type.getNumElements() * copies;
    });
    summedBytes += weightBytes;
    // Collectives per token: the all-reduces of the layer function run once
    // per layer, those of @forward once.
    int64_t layerReduces = 0, forwardReduces = 0;
    (*clone)->walk([&](AllReduceOp op) {
      auto function = op->getParentOfType<func::FuncOp>();
      (function.getSymName() == "decoder_layer" ? layerReduces : forwardReduces) += 1;
    });
    int64_t allReduces = layerReduces * stageLayers + forwardReduces;
    bool first = firstLayer == 0, last = firstLayer + stageLayers == numLayers;
    ranks.push_back(llvm::json::Object{
        {"rank", rank},
        {"stage", rank / tp},
        {"slot", rank % tp},
        {"first_layer", firstLayer},
        {"num_layers", stageLayers},
        {"first_head", firstHead},
        {"num_heads", numHeads},
        {"first_kv_head", firstKVHead},
        {"num_kv_heads", numKVHeads},
        {"kv_replicated", plan && plan.getKvReplicated()},
        {"vocab_offset", vocabOffset},
        {"vocab_size", vocabSize},
        {"weight_bytes", weightBytes},
        {"kv_cache_bytes_per_token", 2 * stageLayers * numKVHeads * config.getHeadDim() *
                                         kvCacheElementBytes},
        {"all_reduces_per_token", allReduces},
        {"all_reduce_bytes_per_token", allReduces * hidden * 4},
        {"send_bytes_per_token", last ? 0 : hidden * 4},
        {"recv_bytes_per_token", first ? 0 : hidden * 4},
    });
  }
  int64_t totalBytes = 0;
  llvm::json::Array replicated;
  for (auto &[name, held] : tensors) {
    totalBytes += held.fullBytes;
    if (held.heldElements > held.fullElements)
      replicated.push_back(llvm::json::Object{
          {"name", name},
          {"copies", double(held.heldElements) / double(held.fullElements)},
          {"extra_bytes", int64_t(double(held.heldElements - held.fullElements) *
                                  double(held.fullBytes) / double(held.fullElements))}});
  }
  int64_t replicatedBytes = summedBytes - totalBytes;
  std::string weights = "as stored";
  if (quantization)
    weights = llvm::formatv("int{0} g{1}{2}{3}", quantization->bits, quantization->groupSize,
                            quantization->symmetric ? " symmetric" : " asymmetric",
                            lmHeadInt8 ? " + int8 lm head" : "")
                  .str();
  return llvm::json::Object{{"tp", tp},
                            {"weights", weights},
                            {"pp", pp},
                            {"world_size", tp * pp},
                            {"model_weight_bytes", totalBytes},
                            {"summed_rank_weight_bytes", summedBytes},
                            {"replicated_bytes", replicatedBytes},
                            {"replicated", std::move(replicated)},
                            {"ranks", std::move(ranks)}};
}

void mlir::falcon::printParallelPlanReport(const llvm::json::Object &report,
                                           llvm::raw_ostream &os) {
  auto integer = [](const llvm::json::Object &object, StringRef key) {
    return object.getInteger(key).value_or(0);
  };
  int64_t tp = integer(report, "tp"), pp = integer(report, "pp");
  os << llvm::formatv("plan: tp {0} x pp {1} = {2} ranks (rank r: stage r / {0}, slot "
                      "r % {0})\n",
                      tp, pp, tp * pp);
  os << llvm::formatv("{0,4} {1,5} {2,4} {3,-12} {4,-14} {5,-12} {6,-16} {7,16} {8,10} "
                      "{9,-24} {10}\n",
                      "rank", "stage", "slot", "layers", "heads", "kv heads", "vocab rows",
                      "weight bytes", "kv B/tok", "all-reduce/tok (bytes)",
                      "send/recv B/tok");
  for (const llvm::json::Value &value : *report.getArray("ranks")) {
    const llvm::json::Object &rank = *value.getAsObject();
    auto range = [&](StringRef first, StringRef count) {
      int64_t begin = integer(rank, first), size = integer(rank, count);
      return llvm::formatv("[{0},{1}) {2}", begin, begin + size, size).str();
    };
    std::string kv = range("first_kv_head", "num_kv_heads");
    if (rank.getBoolean("kv_replicated").value_or(false))
      kv += " repl";
    os << llvm::formatv(
        "{0,4} {1,5} {2,4} {3,-12} {4,-14} {5,-12} {6,-16} {7,16} {8,10} {9,-24} {10}/{11}\n",
        integer(rank, "rank"), integer(rank, "stage"), integer(rank, "slot"),
        range("first_layer", "num_layers"), range("first_head", "num_heads"), kv,
        range("vocab_offset", "vocab_size"), integer(rank, "weight_bytes"),
        integer(rank, "kv_cache_bytes_per_token"),
        llvm::formatv("{0} ({1})", integer(rank, "all_reduces_per_token"),
                      integer(rank, "all_reduce_bytes_per_token"))
            .str(),
        integer(rank, "send_bytes_per_token"), integer(rank, "recv_bytes_per_token"));
  }
  os << llvm::formatv("model weights ({0}): {1} bytes\n",
                      report.getString("weights").value_or("as stored"),
                      integer(report, "model_weight_bytes"));
  // A quantized shard whose inputs the group size does not divide takes
  // smaller groups, hence more scales than its share of the whole weight's.
  bool quantized = report.getString("weights").value_or("as stored") != "as stored";
  os << llvm::formatv("summed over ranks: {0} bytes = model weights + {1} {2}\n",
                      integer(report, "summed_rank_weight_bytes"),
                      integer(report, "replicated_bytes"),
                      quantized ? "bytes of replicated tensors and of the extra scales of "
                                  "shards that take smaller groups"
                                : "replicated bytes");
  for (const llvm::json::Value &value : *report.getArray("replicated")) {
    const llvm::json::Object &tensor = *value.getAsObject();
    os << llvm::formatv("  replicated: {0} x{1:f2} (+{2} bytes)\n",
                        *tensor.getString("name"), *tensor.getNumber("copies"),
                        integer(tensor, "extra_bytes"));
  }
}
