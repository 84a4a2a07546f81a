//===- Pipelines.h - named falcon pass pipelines ----------------*- C++ -*-===//
//
// The pipelines falcon-compile runs, also registered in falcon-opt, so that
// what a user debugs is exactly what ships.
//
//===----------------------------------------------------------------------===//
#ifndef FALCON_PIPELINES_PIPELINES_H
#define FALCON_PIPELINES_PIPELINES_H

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"

namespace mlir::falcon {

struct CPUPipelineOptions : public PassPipelineOptions<CPUPipelineOptions> {
  Option<int64_t> parallelChunks{
      *this, "parallel-chunks",
      llvm::cl::desc("Threads (blocks) each projection is split over: output "
                     "columns at prefill, weight rows at decode (1: single-threaded)"),
      llvm::cl::init(2)};
  Option<int64_t> tileRows{
      *this, "tile-rows",
      llvm::cl::desc("Sequence rows of a projection's register tile (and the "
                     "fewest rows that take the prefill path)"),
      llvm::cl::init(8)};
  Option<int64_t> tileCols{*this, "tile-cols",
                           llvm::cl::desc("Output columns of a projection's register tile"),
                           llvm::cl::init(32)};
  Option<int64_t> tileDepth{
      *this, "tile-depth",
      llvm::cl::desc("Input features per block of a register tile's reduction"),
      llvm::cl::init(256)};
};

/// falcon dialect -> linalg/tensor/arith/math on tensors, weights bound to
/// the packed weight buffer (`falcon-opt --falcon-to-linalg-pipeline`).
void buildFalconToLinalgPipeline(OpPassManager &pm,
                                 const CPUPipelineOptions &options);

/// linalg on tensors -> bufferized loops -> LLVM dialect for the host CPU
/// (`falcon-opt --falcon-linalg-to-llvm-cpu-pipeline`).
void buildFalconLinalgToLLVMCPUPipeline(OpPassManager &pm,
                                        const CPUPipelineOptions &options);

/// Both of the above (`falcon-opt --falcon-cpu-pipeline`).
void buildFalconCPUPipeline(OpPassManager &pm,
                            const CPUPipelineOptions &options);

/// Registers the pipelines with the pass registry (for falcon-opt).
void registerFalconPipelines();

} // namespace mlir::falcon

#endif // FALCON_PIPELINES_PIPELINES_H
