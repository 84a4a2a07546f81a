//===- CPUPipeline.cpp - falcon to LLVM for a CPU -------------------------===//

#include "falcon/Pipelines/Pipelines.h"
#include "falcon/Conversion/Passes.h"
#include "falcon/Transforms/Passes.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/LLVMIR/Transforms/Passes.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Dialect/SCF/Transforms/Passes.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;
using namespace mlir::falcon;

void mlir::falcon::buildFalconToLinalgPipeline(OpPassManager &pm) {
  // One layer function, called from one loop: inlining it costs no code size
  // and lets bufferization update the KV cache in place across the call.
  pm.addPass(createInlinerPass());
  pm.addPass(createConvertFalconToLinalg());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
}

void mlir::falcon::buildFalconCPUCodegenPipeline(
    OpPassManager &pm, const FalconCPUSelectLoweringStrategyOptions &strategy,
    const std::optional<FalconQuantizeWeightsOptions> &quantize,
    const FalconComputePrecisionOptions &precision) {
  pm.addPass(createFalconCPUWeightLayout());
  if (quantize)
    pm.addPass(createFalconQuantizeWeights(*quantize));
  if (precision.dtype != "f32")
    pm.addPass(createFalconComputePrecision(precision));
  pm.addPass(createFalconCPUSelectLoweringStrategy(strategy));
  pm.addPass(createFalconBindWeights());
  OpPassManager &tiling = pm.nest<func::FuncOp>();
  tiling.addPass(createFalconCPUDecomposeAttention());
  tiling.addPass(createFalconFuseElementwise());
  tiling.addPass(createFalconCPUTileProjections());
  tiling.addPass(createFalconCPUParallelHeads());
  // Static tile sizes in the peeled main loops.
  tiling.addPass(createCanonicalizerPass());
  tiling.addPass(createCSEPass());
  tiling.addPass(createFalconCPUProjectionMicrokernels());

  bufferization::OneShotBufferizePassOptions bufferize;
  bufferize.bufferizeFunctionBoundaries = true;
  bufferize.functionBoundaryTypeConversion =
      bufferization::LayoutMapOption::IdentityLayoutMap;
  bufferize.allowReturnAllocsFromLoops = true;
  pm.addPass(bufferization::createOneShotBufferizePass(bufferize));
  // Fold the in-place cache loop results back to the arguments, and the
  // self-copies of cache slices away.
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createFalconDropArgumentResults());
  pm.addPass(bufferization::createBufferResultsToOutParamsPass());
  bufferization::buildBufferDeallocationPipeline(pm);
  // The clones that ownership-based deallocation inserts (a pipeline stage
  // returns the layer loop's hidden states, which the loop may own or not)
  // become allocations and copies.
  pm.addPass(createConvertBufferizationToMemRefPass());
  pm.addPass(createCanonicalizerPass());
  OpPassManager &loops = pm.nest<func::FuncOp>();
  loops.addPass(createFalconStridedCopiesToLinalg());
  loops.addPass(createConvertLinalgToLoopsPass());
  // bf16 conversions as integer arithmetic: without AVX512-BF16 LLVM would
  // call compiler-rt's __truncsfbf2, which the host library does not link.
  loops.addPass(createFalconCPUExpandBF16());
  // The integer decode's byte dot products, once on memrefs.
  loops.addPass(createFalconCPULowerDotBytes());
  // Register tiles: transfers to plain vector loads/stores.
  loops.addPass(createConvertVectorToSCFPass());
  // Projection column blocks and attention heads run on OpenMP threads.
  loops.addPass(createForallToParallelLoopPass());
  pm.addPass(createConvertSCFToOpenMPPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createLowerAffinePass());
  pm.addPass(createSCFToControlFlowPass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  pm.addNestedPass<func::FuncOp>(LLVM::createLLVMRequestCWrappersPass());
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createConvertMathToLibmPass());
  // Allocations call _mlir_memref_to_llvm_{alloc,aligned_alloc,free}, which
  // falcon-cpu-runtime-imports routes through the runtime's import table.
  FinalizeMemRefToLLVMConversionPassOptions memrefToLLVM;
  memrefToLLVM.useGenericFunctions = true;
  pm.addPass(createFinalizeMemRefToLLVMConversionPass(memrefToLLVM));
  ConvertVectorToLLVMPassOptions vectorToLLVM;
  // x86vector.avx512.dot of the bf16 register tiles.
  vectorToLLVM.x86Vector = true;
  pm.addPass(createConvertVectorToLLVMPass(vectorToLLVM));
  pm.addPass(createConvertOpenMPToLLVMPass());
  pm.addPass(createConvertToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
  pm.addPass(createFalconCPURuntimeImports());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
}

void mlir::falcon::buildFalconCPUPipeline(
    OpPassManager &pm, const FalconCPUSelectLoweringStrategyOptions &strategy,
    const std::optional<FalconQuantizeWeightsOptions> &quantize,
    const FalconComputePrecisionOptions &precision) {
  buildFalconToLinalgPipeline(pm);
  buildFalconCPUCodegenPipeline(pm, strategy, quantize, precision);
}

void mlir::falcon::registerFalconPipelines() {
  PassPipelineRegistration<>("falcon-to-linalg-pipeline",
                             "Lower the falcon dialect to target-neutral linalg on tensors",
                             buildFalconToLinalgPipeline);
  PassPipelineRegistration<>(
      "falcon-cpu-codegen-pipeline",
      "Lower target-neutral linalg to the LLVM dialect for the module's #falcon.cpu_target",
      [](OpPassManager &pm) { buildFalconCPUCodegenPipeline(pm, {}, std::nullopt); });
  PassPipelineRegistration<>(
      "falcon-cpu-pipeline",
      "Lower the falcon dialect to the LLVM dialect for the module's #falcon.cpu_target",
      [](OpPassManager &pm) { buildFalconCPUPipeline(pm, {}, std::nullopt); });
}
