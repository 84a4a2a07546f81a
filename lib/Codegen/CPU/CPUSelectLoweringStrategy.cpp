//===- CPUSelectLoweringStrategy.cpp - the CPU's tiling decisions ---------===//
//
// The only CPU pass that reads the target: it sizes register tiles for the
// target's vector registers and splits work over its threads, and records
// each decision as a #falcon.lowering_config on the operation it concerns.
//
//===----------------------------------------------------------------------===//

#include "falcon/Codegen/CPU/Passes.h"
#include "falcon/Conversion/Passes.h"

#define DEBUG_TYPE "falcon-cpu-select-lowering-strategy"

namespace mlir::falcon {
#define GEN_PASS_DEF_FALCONCPUSELECTLOWERINGSTRATEGY
#include "falcon/Codegen/CPU/Passes.h.inc"
} // namespace mlir::falcon

using namespace mlir;
using namespace mlir::falcon;

namespace {
/// A projection's register tile for `target`: two vectors of f32 lanes per
/// row, and as many rows as there are registers for accumulators beside the
/// two weight vectors and the broadcast input (with two registers to spare
/// for addresses the compiler keeps in vectors): 8 x 32 with AVX-512's 32
/// zmm registers, 6 x 16 with AVX2's 16 ymm registers (the shape of BLIS's
/// Haswell kernel), 8 x 8 with NEON's 32 q registers.
struct RegisterTile {
  int64_t rows, cols, depth;
};

RegisterTile chooseRegisterTile(CPUTargetAttr target) {
  int64_t lanes = target.getVectorBits() / 32;
  int64_t vectorsPerRow = 2;
  int64_t spare = 2 /*weights*/ + 1 /*broadcast*/ + 1;
  int64_t rows = std::min<int64_t>(8, (target.getVectorRegisters() - spare) / vectorsPerRow);
  return {rows, lanes * vectorsPerRow, 256};
}

struct FalconCPUSelectLoweringStrategyPass
    : public mlir::falcon::impl::FalconCPUSelectLoweringStrategyBase<
          FalconCPUSelectLoweringStrategyPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    FailureOr<CPUTargetAttr> target = getCPUTarget(module);
    if (failed(target))
      return signalPassFailure();
    for (auto [name, value, limit] :
         {std::tuple<StringRef, int64_t, int64_t>{"tile-rows", tileRows, 64},
          {"tile-cols", tileCols, 1024},
          {"tile-depth", tileDepth, 1 << 20},
          {"attention-rows", attentionRows, FalconDialect::kMaxAttentionBlock},
          {"attention-keys", attentionKeys, FalconDialect::kMaxAttentionBlock}})
      if (value < 0 || value > limit) {
        module.emitError() << "falcon-cpu-select-lowering-strategy: " << name
                           << " must be in [0, " << limit << "], found " << value;
        return signalPassFailure();
      }
    if (int8Activations != "auto" && int8Activations != "on" && int8Activations != "off") {
      module.emitError() << "falcon-cpu-select-lowering-strategy: int8-activations must be "
                            "auto, on or off, found '"
                         << int8Activations << "'";
      return signalPassFailure();
    }
    RegisterTile tile = chooseRegisterTile(*target);
    if (tileRows)
      tile.rows = tileRows;
    if (tileCols)
      tile.cols = tileCols;
    if (tileDepth)
      tile.depth = tileDepth;
    int64_t threads = target->getThreads();
    MLIRContext *context = &getContext();
    // A projection whose weight is quantized decodes with int8 activations
    // where the target has the integer dot products for its codes' width.
    auto projectionConfig = [&](int64_t decodeActivationBits, bool bf16DotProducts) {
      // Blocks of 512 inputs for bf16 pairs (256 pairs; measured +4% prefill
      // over 256 on the benchmark model, docs/benchmarks.md).
      int64_t depth = bf16DotProducts && !tileDepth ? 512 : tile.depth;
      return LoweringConfigAttr::get(context, threads, /*threadDim=*/-1,
                                     {tile.rows, tile.cols, depth},
                                     /*attentionBlock=*/{}, decodeActivationBits,
                                     bf16DotProducts);
    };
    // A projection whose activations (falcon-compute-precision) and stored
    // weight are both bf16 sums pairs of them with vdpbf16ps, where the
    // target has it and the register tile is whole 16-lane vectors.
    bool bf16Dot = target->hasFeature("avx512bf16") && tile.cols % 16 == 0;
    auto bf16DotProducts = [&](linalg::GenericOp projection) {
      auto isBF16 = [](Value value) {
        return getElementTypeOrSelf(value.getType()).isBF16();
      };
      Block &body = projection.getRegion().front();
      Value element = getProjectionWeightElement(projection);
      auto weight = element ? element.getDefiningOp<arith::ExtFOp>() : arith::ExtFOp();
      return bf16Dot && isBF16(body.getArgument(0)) && weight &&
             weight.getIn() == body.getArgument(1) && isBF16(weight.getIn());
    };
    bool refused = false;
    auto decodeActivationBits = [&](linalg::GenericOp projection) -> int64_t {
      auto producer = projection.getDpsInputs()[1].getDefiningOp<linalg::GenericOp>();
      auto encoding = producer ? producer->getAttrOfType<WeightEncodingAttr>(
                                     FalconDialect::kDequantizeAttrName)
                               : WeightEncodingAttr();
      if (!encoding || int8Activations == "off")
        return 0;
      unsigned bits = encoding.getQuantization() == Quantization::Int8 ? 8 : 4;
      if (hasIntegerDecode(*target, bits))
        return 8;
      if (int8Activations == "on" && !refused) {
        projection.emitError() << "falcon-cpu-select-lowering-strategy: int8 activations with "
                                  "int"
                               << bits << " weights need a CPU with AVX512-VNNI (avx512vnni)"
                               << (bits == 4 ? " or AVX2" : "") << ", which "
                               << target->getCpu() << " has not";
        refused = true;
      }
      return 0;
    };
    SmallVector<int64_t, 2> attentionBlock = {attentionRows ? attentionRows : kCPUAttentionBlockRows,
                                              attentionKeys ? attentionKeys : kCPUAttentionBlockKeys};
    module.walk([&](Operation *op) {
      if (auto generic = dyn_cast<linalg::GenericOp>(op)) {
        if (isProjection(generic))
          op->setAttr(FalconDialect::kLoweringConfigAttrName,
                      projectionConfig(decodeActivationBits(generic), bf16DotProducts(generic)));
        return;
      }
      if (auto attention = dyn_cast<AttentionOp>(op)) {
        // Heads run on threads along the KV groups (loop 1 of every
        // attention generic), or along the query heads of the single group
        // of a multi-query model (loop 2): each thread reads its own keys.
        int64_t numKV = cast<RankedTensorType>(attention.getKey().getType()).getShape()[2];
        op->setAttr(FalconDialect::kLoweringConfigAttrName,
                    LoweringConfigAttr::get(context, threads, numKV > 1 ? 1 : 2, {},
                                            attentionBlock, /*decodeActivationBits=*/0,
                                            /*bf16DotProducts=*/false));
      }
    });
    if (refused)
      return signalPassFailure();
  }
};
} // namespace
