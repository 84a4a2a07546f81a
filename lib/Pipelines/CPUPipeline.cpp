//===- CPUPipeline.cpp - falcon to LLVM for the host CPU ------------------===//

#include "falcon/Pipelines/Pipelines.h"
#include "falcon/Conversion/Passes.h"
#include "falcon/Transforms/Passes.h"

#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mlir;
using namespace mlir::falcon;

/// Appends upstream passes given in textual pipeline syntax; the spelling is
/// the one users see in `falcon-opt --help` and in the lit tests.
static void addPipeline(OpPassManager &pm, StringRef pipeline) {
  if (failed(parsePassPipeline(pipeline, pm, llvm::errs())))
    llvm::report_fatal_error("invalid built-in pass pipeline");
}

void mlir::falcon::buildFalconToLinalgPipeline(OpPassManager &pm,
                                               const CPUPipelineOptions &) {
  // One layer function, called from one loop: inlining it costs no code size
  // and lets bufferization update the KV cache in place across the call.
  pm.addPass(createInlinerPass());
  pm.addPass(createFalconCPUWeightLayout());
  pm.addPass(createFalconBindWeights());
  pm.addPass(createConvertFalconToLinalg());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
}

void mlir::falcon::buildFalconLinalgToLLVMCPUPipeline(
    OpPassManager &pm, const CPUPipelineOptions &options) {
  addPipeline(pm, llvm::formatv("func.func(falcon-fuse-elementwise,"
                                "falcon-cpu-tile-projections{{parallel-chunks={0} "
                                "tile-rows={1} tile-cols={2} tile-depth={3}},"
                                "falcon-cpu-parallel-heads{{parallel-chunks={0}},"
                                // Static tile sizes in the peeled main loops.
                                "canonicalize,cse,"
                                "falcon-cpu-projection-microkernels)",
                                options.parallelChunks.getValue(),
                                options.tileRows.getValue(), options.tileCols.getValue(),
                                options.tileDepth.getValue())
                          .str());
  addPipeline(pm,
                  "one-shot-bufferize{bufferize-function-boundaries=1 "
                  "function-boundary-type-conversion=identity-layout-map "
                  "allow-return-allocs-from-loops=1},"
                  // Fold the in-place cache loop results back to the
                  // arguments, and the self-copies of cache slices away.
                  "canonicalize,cse,canonicalize,"
                  "falcon-drop-argument-results,"
                  "buffer-results-to-out-params,"
                  "buffer-deallocation-pipeline,"
                  "canonicalize,"
                  "func.func(falcon-strided-copies-to-linalg,convert-linalg-to-loops),"
                  // Register tiles: transfers to plain vector loads/stores.
                  "func.func(convert-vector-to-scf),"
                  // Projection column blocks run on OpenMP threads.
                  "func.func(scf-forall-to-parallel),"
                  "convert-scf-to-openmp,canonicalize,"
                  "lower-affine,"
                  "convert-scf-to-cf,"
                  "expand-strided-metadata,"
                  "lower-affine,"
                  "func.func(llvm-request-c-wrappers),"
                  "convert-math-to-llvm,"
                  "convert-math-to-libm,"
                  "finalize-memref-to-llvm,"
                  "convert-vector-to-llvm,"
                  "convert-openmp-to-llvm,"
                  "convert-to-llvm,"
                  "reconcile-unrealized-casts,"
                  "canonicalize,cse");
}

void mlir::falcon::buildFalconCPUPipeline(OpPassManager &pm,
                                          const CPUPipelineOptions &options) {
  buildFalconToLinalgPipeline(pm, options);
  buildFalconLinalgToLLVMCPUPipeline(pm, options);
}

void mlir::falcon::registerFalconPipelines() {
  PassPipelineRegistration<CPUPipelineOptions>(
      "falcon-to-linalg-pipeline",
      "Lower the falcon dialect to linalg on tensors with bound weights",
      buildFalconToLinalgPipeline);
  PassPipelineRegistration<CPUPipelineOptions>(
      "falcon-linalg-to-llvm-cpu-pipeline",
      "Bufferize and lower linalg to the LLVM dialect for the host CPU",
      buildFalconLinalgToLLVMCPUPipeline);
  PassPipelineRegistration<CPUPipelineOptions>(
      "falcon-cpu-pipeline", "Lower the falcon dialect to the LLVM dialect",
      buildFalconCPUPipeline);
}
