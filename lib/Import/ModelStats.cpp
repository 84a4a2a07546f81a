//===- ModelStats.cpp - parameter and memory figures ----------------------===//

#include "falcon/Import/ModelStats.h"
#include "falcon/Import/Importer.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/Support/FormatVariadic.h"

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

static std::string bytes(uint64_t count) {
  static constexpr const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = count;
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  return llvm::formatv("{0} bytes ({1:f2} {2})", count, value, units[unit]).str();
}

void mlir::falcon::printModelStats(const FalconConfig &config, StringRef name,
                                   ModuleOp module, llvm::raw_ostream &os) {
  int64_t params = getParameterCount(config);
  os << "model: " << name << "\n";
  os << "variant: " << describeVariant(config) << "\n";
  os << llvm::formatv("shape: {0} layers, hidden {1}, {2} heads of {3}, ffn "
                      "{4}, vocab {5}\n",
                      config.numLayers, config.hiddenSize, config.numHeads,
                      config.headDim(), config.ffnHiddenSize, config.vocabSize);
  os << "parameters: " << params << "\n";
  os << "weights bf16: " << bytes(uint64_t(params) * 2) << "\n";
  os << "weights int8: " << bytes(uint64_t(params)) << "\n";
  os << "weights int4: " << bytes(uint64_t(params) / 2 + uint64_t(params) % 2)
     << "\n";
  // Compact cache: one K and one V row per KV head (spec section 7).
  uint64_t kvPerToken =
      2ull * config.numLayers * config.kvHeads() * config.headDim() * 2;
  os << llvm::formatv("kv cache per token (bf16, {0} KV heads): {1}\n",
                      config.kvHeads(), bytes(kvPerToken));
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
