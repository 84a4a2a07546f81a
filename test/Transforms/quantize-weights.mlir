// RUN: falcon-opt %s --split-input-file --falcon-quantize-weights='bits=4 group-size=32 symmetric=false' | FileCheck %s
// RUN: falcon-opt %s --split-input-file --falcon-quantize-weights='bits=8' | FileCheck %s --check-prefix=INT8
// RUN: not falcon-opt %s --split-input-file --falcon-quantize-weights='bits=5' 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: falcon-opt %s --split-input-file --falcon-quantize-weights='bits=4 group-size=32 symmetric=false act-order=true' | FileCheck %s --check-prefix=ORDER

#x = affine_map<(d0, d1, d2, d3) -> (d0, d2, d1)>
#w = affine_map<(d0, d1, d2, d3) -> (d1, d3)>
#y = affine_map<(d0, d1, d2, d3) -> (d0, d2, d3)>

// A per-layer projection weight [in, out] = [64, 80] (bf16, sharded and
// permuted) becomes int4 codes [32, 80], f16 scales and zero points [2, 80],
// each a param of the same checkpoint tensor whose encoding adds the
// quantization to the shard and the permutation; a dequantizing generic
// feeds the projection, whose body no longer extends the weight.
// CHECK-DAG: #[[CODES:.*]] = affine_map<(d0, d1) -> (d0 floordiv 2, d1)>
// CHECK-DAG: #[[GROUPS:.*]] = affine_map<(d0, d1) -> (d0 floordiv 32, d1)>
// CHECK-LABEL: func.func @projection
// CHECK: %[[C:.*]] = falcon.param "w.{}"[%{{.*}}] {encoding = #falcon.weight_encoding<slice = [1, 0, 64], permutation = [1, 0], quantization = int4, group_size = 32, pack = 2, symmetric = false>} : tensor<32x80xi8>
// CHECK: %[[S:.*]] = falcon.param "w.{}"[%{{.*}}] {encoding = #falcon.weight_encoding<slice = [1, 0, 64], permutation = [1, 0], quantization = int4, group_size = 32, pack = 2, symmetric = false, part = scales>} : tensor<2x80xf16>
// CHECK: %[[Z:.*]] = falcon.param "w.{}"[%{{.*}}] {encoding = #falcon.weight_encoding<slice = [1, 0, 64], permutation = [1, 0], quantization = int4, group_size = 32, pack = 2, symmetric = false, part = zero_points>} : tensor<2x80xf16>
// CHECK: %[[D:.*]] = linalg.generic {indexing_maps = [#[[CODES]], #[[GROUPS]], #[[GROUPS]], #{{.*}}], iterator_types = ["parallel", "parallel"]} ins(%[[C]], %[[S]], %[[Z]] : tensor<32x80xi8>, tensor<2x80xf16>, tensor<2x80xf16>) outs(%{{.*}} : tensor<64x80xf32>)
// CHECK:   linalg.index 0
// CHECK:   arith.extsi {{.*}} : i8 to i32
// CHECK:   arith.shli {{.*}} : i32
// CHECK:   arith.shrsi {{.*}} : i32
// CHECK:   arith.sitofp {{.*}} : i32 to f32
// CHECK:   arith.subf
// CHECK:   arith.mulf
// CHECK: linalg.generic {{.*}} ins(%{{.*}}, %[[D]] : tensor<?x?x64xf32>, tensor<64x80xf32>)
// CHECK-NOT: arith.extf
// CHECK:   arith.mulf
// CHECK:   arith.addf
// The LM head (no layer) keeps its stored type.
// CHECK: falcon.param "lm_head.weight" {encoding = #falcon.weight_encoding<permutation = [1, 0]>} : tensor<64x80xbf16>
// With act-order (a GPTQ desc_act checkpoint) the projection also reads an
// input order [64] i32 and its activations gathered by it.
// ORDER-LABEL: func.func @projection
// ORDER: %[[O:.*]] = falcon.param "w.{}"[%{{.*}}] {encoding = #falcon.weight_encoding<{{.*}}part = input_order>} : tensor<64xi32>
// ORDER: %[[X:.*]] = linalg.generic {{.*}} ins(%[[O]] : tensor<64xi32>) outs(%{{.*}} : tensor<?x?x64xf32>)
// ORDER:   arith.index_cast
// ORDER:   tensor.extract
// ORDER: linalg.generic {{.*}} ins(%[[X]], %{{.*}} : tensor<?x?x64xf32>, tensor<64x80xf32>)
// INT8-LABEL: func.func @projection
// INT8: falcon.param "w.{}"{{.*}}quantization = int8, group_size = 64>} : tensor<64x80xi8>
// INT8: falcon.param "w.{}"{{.*}}part = scales>} : tensor<1x80xf16>
// INT8-NOT: zero_points
// INT8: linalg.generic
// INT8-NOT: arith.shli
// INT8: arith.sitofp
// BAD: falcon-quantize-weights: quantization bits must be 8 or 4, found 5
func.func @projection(%x: tensor<?x?x64xf32>, %init: tensor<?x?x80xf32>, %i: index) -> (tensor<?x?x80xf32>, tensor<?x?x80xf32>) {
  %w = falcon.param "w.{}"[%i] {encoding = #falcon.weight_encoding<slice = [1, 0, 64], permutation = [1, 0]>} : tensor<64x80xbf16>
  %0 = linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "reduction", "parallel", "parallel"]}
      ins(%x, %w : tensor<?x?x64xf32>, tensor<64x80xbf16>) outs(%init : tensor<?x?x80xf32>) {
  ^bb0(%a: f32, %b: bf16, %acc: f32):
    %e = arith.extf %b : bf16 to f32
    %m = arith.mulf %a, %e : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<?x?x80xf32>
  %h = falcon.param "lm_head.weight" {encoding = #falcon.weight_encoding<permutation = [1, 0]>} : tensor<64x80xbf16>
  %1 = linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "reduction", "parallel", "parallel"]}
      ins(%x, %h : tensor<?x?x64xf32>, tensor<64x80xbf16>) outs(%init : tensor<?x?x80xf32>) {
  ^bb0(%a: f32, %b: bf16, %acc: f32):
    %e = arith.extf %b : bf16 to f32
    %m = arith.mulf %a, %e : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<?x?x80xf32>
  return %0, %1 : tensor<?x?x80xf32>, tensor<?x?x80xf32>
}

// -----

#x = affine_map<(d0, d1, d2, d3) -> (d0, d2, d1)>
#w = affine_map<(d0, d1, d2, d3) -> (d1, d3)>
#y = affine_map<(d0, d1, d2, d3) -> (d0, d2, d3)>

// A weight whose 36 inputs no group of 8 or more divides keeps its type.
// CHECK-LABEL: func.func @odd
// CHECK: falcon.param "odd.{}"[%{{.*}}] : tensor<36x16xf32>
// CHECK-NOT: quantization
func.func @odd(%x: tensor<?x?x36xf32>, %init: tensor<?x?x16xf32>, %i: index) -> tensor<?x?x16xf32> {
  %w = falcon.param "odd.{}"[%i] : tensor<36x16xf32>
  %0 = linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "reduction", "parallel", "parallel"]}
      ins(%x, %w : tensor<?x?x36xf32>, tensor<36x16xf32>) outs(%init : tensor<?x?x16xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %m = arith.mulf %a, %b : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<?x?x16xf32>
  return %0 : tensor<?x?x16xf32>
}
