// RUN: falcon-opt %s --falcon-cpu-weight-layout | FileCheck %s

// A projection of the target-neutral form, [out, in] weight over loops
// (b, s, n, k), becomes the [in, out] form over loops (b, k, s, n), reading
// the parameter through the weight encoding permutation = [1, 0]; the body
// (here with a bf16 weight extended in it) is kept.
// CHECK-DAG: #[[X:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d2, d1)>
// CHECK-DAG: #[[W:.*]] = affine_map<(d0, d1, d2, d3) -> (d1, d3)>
// CHECK-DAG: #[[Y:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d2, d3)>
// CHECK-LABEL: func.func @projection
// CHECK: %[[P:.*]] = falcon.param "w.{}"[%{{.*}}] {encoding = #falcon.weight_encoding<permutation = [1, 0]>} : tensor<8x80xbf16>
// CHECK-NOT: falcon.param
// CHECK: linalg.generic {indexing_maps = [#[[X]], #[[W]], #[[Y]]], iterator_types = ["parallel", "reduction", "parallel", "parallel"]} ins(%{{.*}}, %[[P]] : tensor<?x?x8xf32>, tensor<8x80xbf16>)
// CHECK:   arith.extf
// CHECK:   arith.mulf
// CHECK:   arith.addf
#x = affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>
#w = affine_map<(d0, d1, d2, d3) -> (d2, d3)>
#y = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>
func.func @projection(%x: tensor<?x?x8xf32>, %init: tensor<?x?x80xf32>, %i: index) -> tensor<?x?x80xf32> {
  %w = falcon.param "w.{}"[%i] : tensor<80x8xbf16>
  %0 = linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%x, %w : tensor<?x?x8xf32>, tensor<80x8xbf16>) outs(%init : tensor<?x?x80xf32>) {
  ^bb0(%a: f32, %b: bf16, %acc: f32):
    %e = arith.extf %b : bf16 to f32
    %m = arith.mulf %a, %e : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<?x?x80xf32>
  return %0 : tensor<?x?x80xf32>
}

// The embedding keeps reading rows of the table a tied LM head reads packed:
// the original parameter stays for its other user.
// CHECK-LABEL: func.func @tied
// CHECK-DAG: falcon.param "emb" : tensor<80x8xf32>
// CHECK-DAG: falcon.param "emb" {encoding = #falcon.weight_encoding<permutation = [1, 0]>} : tensor<8x80xf32>
func.func @tied(%x: tensor<?x?x8xf32>, %init: tensor<?x?x80xf32>) -> (tensor<?x?x80xf32>, tensor<80x8xf32>) {
  %w = falcon.param "emb" : tensor<80x8xf32>
  %0 = linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%x, %w : tensor<?x?x8xf32>, tensor<80x8xf32>) outs(%init : tensor<?x?x80xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %m = arith.mulf %a, %b : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<?x?x80xf32>
  return %0, %w : tensor<?x?x80xf32>, tensor<80x8xf32>
}

// Not a projection's body (a max, not a multiply-accumulate): left alone.
// CHECK-LABEL: func.func @not_a_projection
// CHECK-NOT: encoding
func.func @not_a_projection(%x: tensor<?x?x8xf32>, %init: tensor<?x?x80xf32>) -> tensor<?x?x80xf32> {
  %w = falcon.param "w" : tensor<80x8xf32>
  %0 = linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%x, %w : tensor<?x?x8xf32>, tensor<80x8xf32>) outs(%init : tensor<?x?x80xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %m = arith.maximumf %a, %b : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<?x?x80xf32>
  return %0 : tensor<?x?x80xf32>
}
