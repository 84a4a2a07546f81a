//===- ModelStats.cpp - parameter and memory figures ----------------------===//

#include "falcon/Import/ModelStats.h"
#include "falcon/Import/Importer.h"
#include "falcon/Support/WeightTransform.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <utility>

using namespace mlir;
using namespace mlir::falcon;

static std::string describeVariant(const FalconConfig &config) {
  std::string kv;
  switch (config.qkvLayout()) {
  case QKVLayout::PerHead:
    kv = "per-head MHA";
    break;
  case QKVLayout::MultiQuery:
    kv = "multi-query (1 KV head)";
    break;
  case QKVLayout::Grouped:
    kv = llvm::formatv("grouped KV ({0} KV heads)", config.kvHeads()).str();
    break;
  }
  StringRef block;
  switch (config.blockKind()) {
  case BlockKind::Sequential:
    block = "sequential block";
    break;
  case BlockKind::ParallelSharedNorm:
    block = "parallel block, one LayerNorm";
    break;
  case BlockKind::ParallelTwoNorms:
    block = "parallel block, ln_attn + ln_mlp";
    break;
  }
  return llvm::formatv("{0}, {1}, {2}{3}, {4} LM head", kv, block,
                       config.alibi ? "ALiBi" : "RoPE",
                       config.bias ? ", Linear biases" : "",
                       config.tieWordEmbeddings ? "tied" : "untied")
      .str();
}

/// `count` bytes scaled to the largest binary unit it reaches: the value and
/// the unit's name ("B" below 1 KiB).
static std::pair<double, llvm::StringLiteral> scaleBytes(uint64_t count) {
  static constexpr llvm::StringLiteral units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = count;
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  return {value, units[unit]};
}

static std::string bytes(uint64_t count) {
  auto [value, unit] = scaleBytes(count);
  return llvm::formatv("{0} bytes ({1:f2} {2})", count, value, unit).str();
}

std::string mlir::falcon::formatByteSize(uint64_t count) {
  auto [value, unit] = scaleBytes(count);
  if (count < 1024)
    return llvm::formatv("{0} B", count).str();
  return llvm::formatv("{0:f1} {1}", value, unit).str();
}

uint64_t mlir::falcon::getArtifactWeightBytes(
    const Checkpoint &checkpoint, MLIRContext *context,
    const ::falcon::WeightQuantization *quantization, bool lmHeadInt8) {
  const FalconConfig &config = checkpoint.config;
  constexpr uint64_t alignment = ::falcon::kWeightFileAlignment;
  // A GPTQ/AWQ checkpoint's projections are stored quantized (asymmetric),
  // act-order ones with an i32 input order beside their parts.
  ::falcon::WeightQuantization stored;
  if (!quantization && config.quantization) {
    stored = {config.quantization->bits, config.quantization->groupSize, /*symmetric=*/false};
    quantization = &stored;
  }
  uint64_t total = 0;
  for (const WeightSpec &spec : getWeightSpecs(config)) {
    Type type = getWeightElementType(context, checkpoint, spec);
    uint64_t bytes = uint64_t(spec.numElements()) * (type.getIntOrFloatBitWidth() / 8);
    // A quantized size fails only when no group divides the inputs (a
    // toy model's); such a weight is counted as stored.
    if (quantization && spec.projection) {
      llvm::Expected<uint64_t> quantized = ::falcon::getQuantizedWeightBytes(
          spec.name, /*inputs=*/spec.shape[1], /*outputs=*/spec.shape[0], *quantization,
          alignment);
      if (quantized)
        bytes = *quantized;
      else
        llvm::consumeError(quantized.takeError());
      if (quantized && config.quantization && config.quantization->actOrder)
        bytes += llvm::alignTo(uint64_t(spec.shape[1]) * 4, alignment);
    }
    // The LM head's weight (a tied table's second copy, or lm_head.weight)
    // int8 with --quantize-lm-head.
    bool tiedTable =
        config.tieWordEmbeddings && spec.name == "transformer.word_embeddings.weight";
    uint64_t headBytes = bytes;
    if (quantization && lmHeadInt8 && (tiedTable || spec.name == "lm_head.weight")) {
      if (std::optional<uint64_t> quantized = ::falcon::getInt8LMHeadBytes(
              spec.name, /*inputs=*/spec.shape[1], /*outputs=*/spec.shape[0], *quantization,
              alignment))
        headBytes = *quantized;
      if (!tiedTable)
        bytes = headBytes;
    }
    uint64_t stride = llvm::alignTo(bytes, alignment);
    total += stride * uint64_t(spec.perLayer ? config.numLayers : 1);
    // falcon-bind-weights stores a tied embedding twice: as the embedding
    // table and transposed as the LM head's [hidden, vocab] operand.
    if (tiedTable)
      total += llvm::alignTo(headBytes, alignment);
  }
  return total;
}

std::string mlir::falcon::getArtifactWeightDTypes(const Checkpoint &checkpoint,
                                                  MLIRContext *context) {
  SmallVector<std::string> names;
  const std::optional<CheckpointQuantization> &stored = checkpoint.config.quantization;
  for (const WeightSpec &spec : getWeightSpecs(checkpoint.config)) {
    Type type = getWeightElementType(context, checkpoint, spec);
    std::string name = type.isF32() ? "f32" : type.isF16() ? "f16" : "bf16";
    if (stored && spec.projection)
      name = llvm::formatv("{0} int{1} g{2}{3}",
                           stored->method == CheckpointQuantization::Method::GPTQ ? "GPTQ"
                                                                                  : "AWQ",
                           stored->bits, stored->groupSize,
                           stored->actOrder ? " act-order" : "")
                 .str();
    if (!llvm::is_contained(names, name))
      names.push_back(name);
  }
  return llvm::join(names, "/");
}

void mlir::falcon::printModelStats(const Checkpoint &checkpoint, ModuleOp module,
                                   const ModelStatsOptions &options,
                                   llvm::raw_ostream &os) {
  const FalconConfig &config = checkpoint.config;
  int64_t params = getParameterCount(config);
  os << "model: " << checkpoint.name << "\n";
  os << "variant: " << describeVariant(config) << "\n";
  os << llvm::formatv("shape: {0} layers, hidden {1}, {2} heads of {3}, ffn "
                      "{4}, vocab {5}\n",
                      config.numLayers, config.hiddenSize, config.numHeads,
                      config.headDim(), config.ffnHiddenSize, config.vocabSize);
  os << "parameters: " << params << "\n";
  os << "weights bf16: " << bytes(uint64_t(params) * 2) << "\n";
  // weights.bin with weight-only quantization: the projections' values,
  // f16 scales (and zero points) as getQuantizedWeightBytes packs them; the
  // rest as stored, aligned as the artifact aligns it.
  MLIRContext *context = module.getContext();
  std::string stored = getArtifactWeightDTypes(checkpoint, context);
  // The schemes --quantize offers; a GPTQ/AWQ checkpoint compiles with its own.
  if (!config.quantization) {
    for (::falcon::WeightQuantization quantization :
         {::falcon::WeightQuantization{8, 128, true}, ::falcon::WeightQuantization{4, 128, true},
          ::falcon::WeightQuantization{4, 32, true}, ::falcon::WeightQuantization{4, 128, false}})
      os << llvm::formatv("weights int{0} g{1}{2}: {3}: projections int{0} + f16 scale{4} per "
                          "{1} inputs, the rest as stored ({5})\n",
                          quantization.bits, quantization.groupSize,
                          quantization.symmetric ? "" : " asymmetric",
                          bytes(getArtifactWeightBytes(checkpoint, context, &quantization)),
                          quantization.symmetric ? "" : " and f16 zero point",
                          stored);
    // --quantize-lm-head: the head int8 too (the embedding table as stored).
    for (::falcon::WeightQuantization quantization :
         {::falcon::WeightQuantization{8, 128, true}, ::falcon::WeightQuantization{4, 128, true}})
      os << llvm::formatv("weights int{0} g{1} + int8 lm head: {2}: also the LM head int8 + "
                          "f16 scale per {1} inputs (--quantize-lm-head)\n",
                          quantization.bits, quantization.groupSize,
                          bytes(getArtifactWeightBytes(checkpoint, context, &quantization,
                                                       /*lmHeadInt8=*/true)));
  }
  // Compact cache: one K and one V row per KV head (spec section 7).
  uint64_t kvElementsPerToken = 2ull * config.numLayers * config.kvHeads() * config.headDim();
  os << llvm::formatv("kv cache per token (bf16, {0} KV heads): {1}\n",
                      config.kvHeads(), bytes(kvElementsPerToken * 2));

  // What the runtime allocates: the cache in the compiled element type for
  // batch x capacity tokens, next to the mapped weights.bin.
  int64_t capacity = options.capacity > 0 ? options.capacity : config.maxPositionEmbeddings;
  uint64_t batch = uint64_t(options.batch);
  uint64_t kvPerToken = kvElementsPerToken * uint64_t(options.kvCacheElementBytes);
  uint64_t kvCache = kvPerToken * uint64_t(capacity) * batch;
  os << llvm::formatv("kv cache per token ({0}, as compiled): {1}\n", options.kvCacheDType,
                      bytes(kvPerToken));
  os << llvm::formatv("kv cache ({0}, batch {1} x capacity {2}): {3}\n",
                      options.kvCacheDType, batch, capacity, bytes(kvCache));
  // Activations of one decode step, f32: the residual stream, the normed
  // input, the attention output and the MLP output (4 hidden-size rows), the
  // fused QKV row, the FFN row, the logits and the scores of every head over
  // one block of keys (the tiled attention's), with ALiBi also the bias of
  // every head over the capacity. A prefill of P tokens needs about P times
  // the rows (the scores: up to 64 rows a block).
  uint64_t scoreKeys = uint64_t(std::min(capacity, options.attentionKeys));
  uint64_t workspaceFloats =
      4ull * config.hiddenSize + uint64_t(config.qkvOutFeatures()) +
      uint64_t(config.ffnHiddenSize) + uint64_t(config.vocabSize) +
      uint64_t(config.numHeads) * scoreKeys;
  uint64_t workspace = 4 * batch * workspaceFloats;
  std::string alibiNote;
  if (config.alibi) {
    workspace += 4ull * uint64_t(config.numHeads) * uint64_t(capacity);
    alibiNote = llvm::formatv(", alibi bias {0} heads x {1} keys", config.numHeads, capacity);
  }
  os << llvm::formatv("workspace (f32, batch {0} x one token): {1}: 4 x hidden {2}, "
                      "qkv {3}, ffn {4}, logits {5}, scores {6} heads x {7} keys{8}\n",
                      batch, bytes(workspace), config.hiddenSize, config.qkvOutFeatures(),
                      config.ffnHiddenSize, config.vocabSize, config.numHeads, scoreKeys,
                      alibiNote);
  uint64_t weights = getArtifactWeightBytes(checkpoint, context);
  os << llvm::formatv("weights as stored ({0}): {1}\n",
                      getArtifactWeightDTypes(checkpoint, context), bytes(weights));
  os << llvm::formatv("ram to run (batch {0}, capacity {1}): about {2} = weights as "
                      "stored + kv cache + workspace\n",
                      batch, capacity, bytes(weights + kvCache + workspace));
  os << llvm::formatv("disk for the artifact: about {0} = weights {1} + copied files {2} "
                      "+ code library allowance {3}\n",
                      bytes(weights + options.copiedFileBytes + kHostLibraryBytesAllowance),
                      weights, options.copiedFileBytes, kHostLibraryBytesAllowance);
  int64_t totalOps = 0;
  std::string perFunction;
  module.walk([&](func::FuncOp func) {
    int64_t ops = 0;
    func.walk([&](Operation *) { ++ops; });
    totalOps += ops;
    perFunction += llvm::formatv(", @{0}: {1}", func.getSymName(), ops).str();
  });
  os << llvm::formatv("ir: {0} operations{1} (one layer function for all {2} "
                      "layers)\n",
                      totalOps, perFunction, config.numLayers);
}
