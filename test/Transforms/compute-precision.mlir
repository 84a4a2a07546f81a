// RUN: falcon-opt %s --split-input-file --falcon-compute-precision='dtype=bf16' | FileCheck %s
// RUN: falcon-opt %s --split-input-file --falcon-compute-precision='dtype=f16' | FileCheck %s --check-prefix=F16
// RUN: falcon-opt %s --split-input-file --falcon-compute-precision='dtype=f32' | FileCheck %s --check-prefix=F32
// RUN: not falcon-opt %s --split-input-file --falcon-compute-precision='dtype=f8' 2>&1 | FileCheck %s --check-prefix=BAD

#x = affine_map<(d0, d1, d2, d3) -> (d0, d2, d1)>
#w = affine_map<(d0, d1, d2, d3) -> (d1, d3)>
#y = affine_map<(d0, d1, d2, d3) -> (d0, d2, d3)>
#dq = affine_map<(d0, d1) -> (d0, d1)>

// Two projections of one activation tensor (a parallel-attention layer's QKV
// and MLP) share one rounding; each extends the rounded element in its body
// and still multiplies the stored (extended) weight. The projection of a
// quantized weight (its producer carries falcon.dequantize) keeps f32 inputs.
// CHECK-LABEL: func.func @projections
// CHECK-SAME: %[[X:[^:]*]]: tensor<?x?x64xf32>
// CHECK: %[[E:.*]] = tensor.empty({{.*}}) : tensor<?x?x64xbf16>
// CHECK: %[[R:.*]] = linalg.generic {{.*}} ins(%[[X]] : tensor<?x?x64xf32>) outs(%[[E]] : tensor<?x?x64xbf16>)
// CHECK:   arith.truncf %{{.*}} : f32 to bf16
// CHECK-NOT: arith.truncf
// CHECK: linalg.generic {{.*}} ins(%[[R]], %{{.*}} : tensor<?x?x64xbf16>, tensor<64x80xbf16>)
// CHECK: ^bb0(%[[A:.*]]: bf16, %[[B:.*]]: bf16, %[[ACC:.*]]: f32):
// CHECK:   %[[AX:.*]] = arith.extf %[[A]] : bf16 to f32
// CHECK:   %[[BX:.*]] = arith.extf %[[B]] : bf16 to f32
// CHECK:   arith.mulf %[[AX]], %[[BX]]
// CHECK: linalg.generic {{.*}} ins(%[[R]], %{{.*}} : tensor<?x?x64xbf16>, tensor<64x16xf32>)
// CHECK: linalg.generic {{.*}} ins(%[[X]], %{{.*}} : tensor<?x?x64xf32>, tensor<64x8xf32>)
// f16 stays f32 values on the f16 grid (no conversion in the projections).
// F16: %[[R16:.*]] = linalg.generic {{.*}} outs(%{{.*}} : tensor<?x?x64xf32>)
// F16:   %[[H:.*]] = arith.truncf %{{.*}} : f32 to f16
// F16:   arith.extf %[[H]] : f16 to f32
// F16: ins(%[[R16]], %{{.*}} : tensor<?x?x64xf32>, tensor<64x80xbf16>)
// F16: ^bb0(%{{.*}}: f32, %{{.*}}: bf16, %{{.*}}: f32):
// F32-NOT: truncf
func.func @projections(%x: tensor<?x?x64xf32>, %w: tensor<64x80xbf16>, %v: tensor<64x16xf32>,
                       %q: tensor<64x8xf32>, %y: tensor<?x?x80xf32>, %z: tensor<?x?x16xf32>,
                       %u: tensor<?x?x8xf32>) -> (tensor<?x?x80xf32>, tensor<?x?x16xf32>, tensor<?x?x8xf32>) {
  %0 = linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "reduction", "parallel", "parallel"]}
      ins(%x, %w : tensor<?x?x64xf32>, tensor<64x80xbf16>) outs(%y : tensor<?x?x80xf32>) {
  ^bb0(%a: f32, %b: bf16, %acc: f32):
    %e = arith.extf %b : bf16 to f32
    %m = arith.mulf %a, %e : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<?x?x80xf32>
  %1 = linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "reduction", "parallel", "parallel"]}
      ins(%x, %v : tensor<?x?x64xf32>, tensor<64x16xf32>) outs(%z : tensor<?x?x16xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %m = arith.mulf %a, %b : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<?x?x16xf32>
  %init = tensor.empty() : tensor<64x8xf32>
  %d = linalg.generic {indexing_maps = [#dq, #dq], iterator_types = ["parallel", "parallel"]}
      ins(%q : tensor<64x8xf32>) outs(%init : tensor<64x8xf32>) attrs = {falcon.dequantize = #falcon.weight_encoding<quantization = int8, group_size = 32, pack = 1>} {
  ^bb0(%a: f32, %b: f32):
    linalg.yield %a : f32
  } -> tensor<64x8xf32>
  %2 = linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "reduction", "parallel", "parallel"]}
      ins(%x, %d : tensor<?x?x64xf32>, tensor<64x8xf32>) outs(%u : tensor<?x?x8xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %m = arith.mulf %a, %b : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<?x?x8xf32>
  return %0, %1, %2 : tensor<?x?x80xf32>, tensor<?x?x16xf32>, tensor<?x?x8xf32>
}

// -----

// BAD: falcon-compute-precision: dtype must be f32, bf16 or f16, found 'f8'
func.func @nothing() {
  return
}
