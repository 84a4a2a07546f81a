//===- Pipelines.h - named falcon pass pipelines ----------------*- C++ -*-===//
//
// The pipelines falcon-compile runs, also registered in falcon-opt, so that
// what a user debugs is exactly what ships. They are built from pass objects
// with typed options (never from pipeline text).
//
//===----------------------------------------------------------------------===//
#ifndef FALCON_PIPELINES_PIPELINES_H
#define FALCON_PIPELINES_PIPELINES_H

#include "falcon/Codegen/CPU/Passes.h"
#include "falcon/Transforms/Passes.h"

#include <optional>

#include "mlir/Pass/PassManager.h"

namespace mlir::falcon {

/// falcon dialect -> target-neutral linalg/tensor/arith/math on tensors
/// (`falcon-opt --falcon-to-linalg-pipeline`). falcon.attention and the
/// weight parameters stay as they are for the target to decide.
void buildFalconToLinalgPipeline(OpPassManager &pm);

/// Target-neutral linalg on a module with a #falcon.cpu_target -> the CPU
/// strategy, tiling, bufferization, loops -> LLVM dialect
/// (`falcon-opt --falcon-cpu-codegen-pipeline`); with `quantize`, weight-only
/// quantization of the decoder layers' projections (falcon-quantize-weights).
/// `precision.dtype` bf16/f16: the float projections' activations rounded to
/// it (falcon-compute-precision, after the quantization).
void buildFalconCPUCodegenPipeline(OpPassManager &pm,
                                   const FalconCPUSelectLoweringStrategyOptions &strategy,
                                   const std::optional<FalconQuantizeWeightsOptions> &quantize,
                                   const FalconComputePrecisionOptions &precision = {});

/// Both of the above (`falcon-opt --falcon-cpu-pipeline`).
void buildFalconCPUPipeline(OpPassManager &pm,
                            const FalconCPUSelectLoweringStrategyOptions &strategy,
                            const std::optional<FalconQuantizeWeightsOptions> &quantize,
                            const FalconComputePrecisionOptions &precision = {});

/// Registers the pipelines with the pass registry (for falcon-opt).
void registerFalconPipelines();

} // namespace mlir::falcon

#endif // FALCON_PIPELINES_PIPELINES_H
