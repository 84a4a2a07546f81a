//===- Passes.td - falcon conversion passes ----------------*- tablegen -*-===//

#ifndef FALCON_CONVERSION_PASSES_TD
#define FALCON_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def ConvertFalconToLinalg : Pass<"convert-falcon-to-linalg", "ModuleOp"> {
  let summary = "Lower falcon compute ops to linalg, tensor, arith and math";
  let description = [{
    Every falcon op except `falcon.param` (bound by `falcon-bind-weights`)
    and `falcon.attention` (kept for a target to decompose, e.g.
    `falcon-cpu-decompose-attention`) becomes `linalg.generic` ops on
    tensors plus `tensor` reshapes and slices; the result makes no target
    choice (projections read the checkpoint's `[out, in]` weights),
    computing in the activation type (f32) and extending narrower weights in
    the loop bodies. The numerics follow Hugging Face (see
    shared/falcon-architecture.md section 10): exact erf GELU, RoPE angles in
    f32, ALiBi rounded to bfloat16 as HF does, the attention bias added to the
    unscaled score, residual adds in HF's order.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::shard::ShardDialect",
                           "::mlir::tensor::TensorDialect"];
}

#endif // FALCON_CONVERSION_PASSES_TD
