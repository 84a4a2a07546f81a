//===- PlanReport.h - what each rank of a plan holds and sends --*- C++ -*-===//
//
// falcon-compile --print-plan: each rank's stage, layers, heads, weight and
// KV-cache bytes and collectives per token, measured on the rank's program
// as falcon-shard produces it (not recomputed by a second formula), and how
// the model's weight bytes spread over the ranks (replicated tensors listed
// with their copies).
//
//===----------------------------------------------------------------------===//
#ifndef FALCON_TRANSFORMS_PLANREPORT_H
#define FALCON_TRANSFORMS_PLANREPORT_H

#include "falcon/Support/WeightTransform.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::falcon {

/// The plan report of the imported `module` on tp x pp ranks, or failure
/// (diagnostics emitted: an impossible plan). Cache bytes per token use
/// `kvCacheElementBytes`; activations are f32. With `quantization`, each
/// rank's decoder-layer projection weights count as falcon-compile
/// --quantize stores them (codes, f16 scales and zero points), and with
/// `lmHeadInt8` (--quantize-lm-head) the LM head's too, int8 in the same
/// groups (a tied table counted once more, as the head's own copy).
FailureOr<llvm::json::Object>
reportParallelPlan(ModuleOp module, int64_t tp, int64_t pp, int64_t kvCacheElementBytes,
                   const ::falcon::WeightQuantization *quantization = nullptr,
                   bool lmHeadInt8 = false);

/// The report as a table.
void printParallelPlanReport(const llvm::json::Object &report, llvm::raw_ostream &os);

} // namespace mlir::falcon

#endif // FALCON_TRANSFORMS_PLANREPORT_H
