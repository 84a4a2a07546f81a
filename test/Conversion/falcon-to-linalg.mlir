// RUN: falcon-opt %s -split-input-file --convert-falcon-to-linalg | FileCheck %s

// CHECK-LABEL: func @embedding
// CHECK-SAME: %[[IDS:.*]]: tensor<?x?xi64>, %[[TABLE:.*]]: tensor<32x8xbf16>
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "parallel"]} ins(%[[IDS]] : tensor<?x?xi64>)
// CHECK:   %[[ROW:.*]] = arith.index_cast
// CHECK:   %[[COL:.*]] = linalg.index 2
// CHECK:   %[[V:.*]] = tensor.extract %[[TABLE]][%[[ROW]], %[[COL]]]
// CHECK:   %[[E:.*]] = arith.extf %[[V]] : bf16 to f32
// CHECK:   linalg.yield %[[E]]
func.func @embedding(%ids: tensor<?x?xi64>, %table: tensor<32x8xbf16>) -> tensor<?x?x8xf32> {
  %0 = falcon.embedding %ids, %table : (tensor<?x?xi64>, tensor<32x8xbf16>) -> tensor<?x?x8xf32>
  return %0 : tensor<?x?x8xf32>
}

// -----

// Row b's hidden states at positions[b, r]; a position outside [0, S) reads
// the last one.
// CHECK-LABEL: func @gather_positions
// CHECK-SAME: %[[H:.*]]: tensor<?x?x8xf32>, %[[P:.*]]: tensor<?x?xi64>
// CHECK: %[[S:.*]] = tensor.dim %[[H]], %c1
// CHECK: %[[LAST:.*]] = arith.subi %[[S]], %c1
// CHECK: linalg.generic {{.*}} ins(%[[P]] : tensor<?x?xi64>)
// CHECK:   %[[POS:.*]] = arith.index_cast
// CHECK:   %[[IN:.*]] = arith.cmpi ult, %[[POS]], %[[S]]
// CHECK:   %[[SAFE:.*]] = arith.select %[[IN]], %[[POS]], %[[LAST]]
// CHECK:   %[[ROW:.*]] = linalg.index 0
// CHECK:   %[[COL:.*]] = linalg.index 2
// CHECK:   %[[V:.*]] = tensor.extract %[[H]][%[[ROW]], %[[SAFE]], %[[COL]]]
// CHECK:   linalg.yield %[[V]]
func.func @gather_positions(%h: tensor<?x?x8xf32>, %positions: tensor<?x?xi64>) -> tensor<?x?x8xf32> {
  %0 = falcon.gather_positions %h, %positions : (tensor<?x?x8xf32>, tensor<?x?xi64>) -> tensor<?x?x8xf32>
  return %0 : tensor<?x?x8xf32>
}

// -----

// f16 and bf16 have the same width: the conversion goes through f32, which
// holds both exactly.
// CHECK-LABEL: func @embedding_f16_to_bf16
// CHECK: tensor.extract %{{.*}} : tensor<32x8xf16>
// CHECK: %[[WIDE:.*]] = arith.extf %{{.*}} : f16 to f32
// CHECK: arith.truncf %[[WIDE]] : f32 to bf16
func.func @embedding_f16_to_bf16(%ids: tensor<?x?xi64>, %table: tensor<32x8xf16>) -> tensor<?x?x8xbf16> {
  %0 = falcon.embedding %ids, %table : (tensor<?x?xi64>, tensor<32x8xf16>) -> tensor<?x?x8xbf16>
  return %0 : tensor<?x?x8xbf16>
}

// -----

// Mean, biased variance, then (x - mean) / sqrt(var + eps) * w + b.
// CHECK-LABEL: func @layer_norm
// CHECK: %[[SUM:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "reduction"]}
// CHECK: %[[SQ:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "reduction"]} ins(%{{.*}}, %[[SUM]]
// CHECK:   arith.subf
// CHECK:   arith.mulf
// CHECK: linalg.generic {{.*}} ins(%{{.*}}, %[[SUM]], %[[SQ]], %{{.*}}, %{{.*}} :
// CHECK:   %[[EPS:.*]] = arith.constant 9.99999974E-6 : f32
// CHECK:   arith.addf %{{.*}}, %[[EPS]]
// CHECK:   math.sqrt
// CHECK:   arith.divf
func.func @layer_norm(%x: tensor<?x?x8xf32>, %w: tensor<8xf32>, %b: tensor<8xf32>) -> tensor<?x?x8xf32> {
  %0 = falcon.layer_norm %x, %w, %b {epsilon = 1.0e-05 : f64} : (tensor<?x?x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<?x?x8xf32>
  return %0 : tensor<?x?x8xf32>
}

// -----

// The contraction over `in` with the [out, in] weight, then the bias add.
// CHECK-DAG: #[[X:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>
// CHECK-DAG: #[[W:.*]] = affine_map<(d0, d1, d2, d3) -> (d2, d3)>
// CHECK-LABEL: func @linear
// CHECK: %[[MM:.*]] = linalg.generic {indexing_maps = [#[[X]], #[[W]], {{.*}}], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
// CHECK:   arith.extf %{{.*}} : bf16 to f32
// CHECK:   arith.mulf
// CHECK:   arith.addf
// CHECK: linalg.generic {{.*}} ins(%[[MM]], %{{.*}} : tensor<?x?x16xf32>, tensor<16xbf16>)
func.func @linear(%x: tensor<?x?x8xf32>, %w: tensor<16x8xbf16>, %b: tensor<16xbf16>) -> tensor<?x?x16xf32> {
  %0 = falcon.linear %x, %w, %b : (tensor<?x?x8xf32>, tensor<16x8xbf16>, tensor<16xbf16>) -> tensor<?x?x16xf32>
  return %0 : tensor<?x?x16xf32>
}

// -----

// CHECK-LABEL: func @lm_head
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%{{.*}}, %{{.*}} : tensor<?x?x8xf32>, tensor<32x8xf32>)
// CHECK-NOT: linalg.generic
func.func @lm_head(%x: tensor<?x?x8xf32>, %w: tensor<32x8xf32>) -> tensor<?x?x32xf32> {
  %0 = falcon.lm_head %x, %w {tied} : (tensor<?x?x8xf32>, tensor<32x8xf32>) -> tensor<?x?x32xf32>
  return %0 : tensor<?x?x32xf32>
}

// -----

// Exact erf GELU.
// CHECK-LABEL: func @gelu
// CHECK: linalg.generic
// CHECK:   %[[SQRT2:.*]] = arith.constant 1.41421354 : f32
// CHECK:   arith.divf %{{.*}}, %[[SQRT2]]
// CHECK:   math.erf
// CHECK-NOT: math.tanh
func.func @gelu(%x: tensor<?x?x8xf32>) -> tensor<?x?x8xf32> {
  %0 = falcon.gelu %x : tensor<?x?x8xf32>
  return %0 : tensor<?x?x8xf32>
}

// -----

// CHECK-LABEL: func @add
// CHECK: linalg.generic {{.*}} ins(%{{.*}}, %{{.*}} : tensor<?x?x8xf32>, tensor<?x?x8xf32>)
// CHECK:   arith.addf
func.func @add(%x: tensor<?x?x8xf32>, %y: tensor<?x?x8xf32>) -> tensor<?x?x8xf32> {
  %0 = falcon.add %x, %y : tensor<?x?x8xf32>
  return %0 : tensor<?x?x8xf32>
}

// -----

// Grouped: view(B, S, K, r + 2, d); queries of group g are heads g*r .. g*r+r-1.
// CHECK-LABEL: func @split_grouped
// CHECK: %[[E:.*]] = tensor.expand_shape %{{.*}} {{\[\[}}0], [1], [2, 3, 4]] {{.*}} : tensor<?x?x192xf32> into tensor<?x?x2x6x16xf32>
// CHECK: %[[Q:.*]] = tensor.extract_slice %[[E]][0, 0, 0, 0, 0] [%{{.*}}, %{{.*}}, 2, 4, 16] [1, 1, 1, 1, 1]
// CHECK: tensor.collapse_shape %[[Q]] {{\[\[}}0], [1], [2, 3], [4]] : tensor<?x?x2x4x16xf32> into tensor<?x?x8x16xf32>
// CHECK: tensor.extract_slice %[[E]][0, 0, 0, 4, 0] [%{{.*}}, %{{.*}}, 2, 1, 16]
// CHECK: tensor.extract_slice %[[E]][0, 0, 0, 5, 0] [%{{.*}}, %{{.*}}, 2, 1, 16]
func.func @split_grouped(%f: tensor<?x?x192xf32>) -> (tensor<?x?x8x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>) {
  %q, %k, %v = falcon.qkv_split %f {layout = #falcon.qkv_layout<grouped>, num_heads = 8 : i64, num_kv_heads = 2 : i64}
      : tensor<?x?x192xf32> -> (tensor<?x?x8x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>)
  return %q, %k, %v : tensor<?x?x8x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>
}

// -----

// Multi-query: view(B, S, H + 2, d).
// CHECK-LABEL: func @split_multi_query
// CHECK: %[[E:.*]] = tensor.expand_shape %{{.*}} {{\[\[}}0], [1], [2, 3]] {{.*}} : tensor<?x?x112xf32> into tensor<?x?x7x16xf32>
// CHECK: tensor.extract_slice %[[E]][0, 0, 0, 0] [%{{.*}}, %{{.*}}, 5, 16]
// CHECK: tensor.extract_slice %[[E]][0, 0, 5, 0] [%{{.*}}, %{{.*}}, 1, 16]
// CHECK: tensor.extract_slice %[[E]][0, 0, 6, 0] [%{{.*}}, %{{.*}}, 1, 16]
func.func @split_multi_query(%f: tensor<?x?x112xf32>) -> (tensor<?x?x5x16xf32>, tensor<?x?x1x16xf32>, tensor<?x?x1x16xf32>) {
  %q, %k, %v = falcon.qkv_split %f {layout = #falcon.qkv_layout<multi_query>, num_heads = 5 : i64, num_kv_heads = 1 : i64}
      : tensor<?x?x112xf32> -> (tensor<?x?x5x16xf32>, tensor<?x?x1x16xf32>, tensor<?x?x1x16xf32>)
  return %q, %k, %v : tensor<?x?x5x16xf32>, tensor<?x?x1x16xf32>, tensor<?x?x1x16xf32>
}

// -----

// Per-head: view(B, S, H, 3, d), head h owns [q | k | v].
// CHECK-LABEL: func @split_per_head
// CHECK: %[[E:.*]] = tensor.expand_shape %{{.*}} {{\[\[}}0], [1], [2, 3, 4]] {{.*}} : tensor<?x?x288xf32> into tensor<?x?x6x3x16xf32>
// CHECK: tensor.extract_slice %[[E]][0, 0, 0, 0, 0] [%{{.*}}, %{{.*}}, 6, 1, 16]
// CHECK: tensor.extract_slice %[[E]][0, 0, 0, 1, 0] [%{{.*}}, %{{.*}}, 6, 1, 16]
// CHECK: tensor.extract_slice %[[E]][0, 0, 0, 2, 0] [%{{.*}}, %{{.*}}, 6, 1, 16]
func.func @split_per_head(%f: tensor<?x?x288xf32>) -> (tensor<?x?x6x16xf32>, tensor<?x?x6x16xf32>, tensor<?x?x6x16xf32>) {
  %q, %k, %v = falcon.qkv_split %f {layout = #falcon.qkv_layout<per_head>, num_heads = 6 : i64, num_kv_heads = 6 : i64}
      : tensor<?x?x288xf32> -> (tensor<?x?x6x16xf32>, tensor<?x?x6x16xf32>, tensor<?x?x6x16xf32>)
  return %q, %k, %v : tensor<?x?x6x16xf32>, tensor<?x?x6x16xf32>, tensor<?x?x6x16xf32>
}

// -----

// inv_freq_i = 1 / 10000^(2 (i mod 2) / 4), repeated for both halves.
// CHECK-LABEL: func @rotary
// CHECK: %[[FREQ:.*]] = arith.constant dense<[1.000000e+00, 0.00999999977, 1.000000e+00, 0.00999999977]> : tensor<4xf32>
// CHECK: linalg.generic {{.*}} ins(%{{.*}}, %{{.*}}, %[[FREQ]] :
// CHECK:   arith.sitofp
// CHECK:   math.cos
// CHECK:   math.sin
// CHECK:   tensor.extract
// CHECK:   arith.negf
func.func @rotary(%x: tensor<?x?x2x4xf32>, %p: tensor<?x?xi64>) -> tensor<?x?x2x4xf32> {
  %0 = falcon.rotary %x, %p {theta = 1.0e+04 : f64} : (tensor<?x?x2x4xf32>, tensor<?x?xi64>) -> tensor<?x?x2x4xf32>
  return %0 : tensor<?x?x2x4xf32>
}

// -----

// Linear scaling divides inv_freq by the factor.
// CHECK-LABEL: func @rotary_linear
// CHECK: arith.constant dense<[5.000000e-01, 5.000000e-03, 5.000000e-01, 5.000000e-03]> : tensor<4xf32>
func.func @rotary_linear(%x: tensor<?x?x2x4xf32>, %p: tensor<?x?xi64>) -> tensor<?x?x2x4xf32> {
  %0 = falcon.rotary %x, %p {theta = 1.0e+04 : f64, scaling = #falcon.rope_scaling<linear>, factor = 2.0 : f64} : (tensor<?x?x2x4xf32>, tensor<?x?xi64>) -> tensor<?x?x2x4xf32>
  return %0 : tensor<?x?x2x4xf32>
}

// -----

// Six heads (not a power of two): slopes 2^-2, 2^-4, 2^-6, 2^-8 and then
// 2^-1, 2^-3 from the extra base; positions and products rounded to bf16.
// CHECK-LABEL: func @alibi
// CHECK: %[[SLOPES:.*]] = arith.constant dense<[2.500000e-01, 6.250000e-02, 1.562500e-02, 3.906250e-03, 5.000000e-01, 1.250000e-01]> : tensor<6xf32>
// CHECK: linalg.generic {{.*}} ins(%[[SLOPES]] : tensor<6xf32>) outs(%{{.*}} : tensor<6x?xf32>)
// CHECK:   arith.sitofp
// CHECK:   arith.truncf %{{.*}} : f32 to bf16
// CHECK:   arith.mulf
// CHECK:   arith.truncf %{{.*}} : f32 to bf16
func.func @alibi(%n: index) -> tensor<6x?xf32> {
  %0 = falcon.alibi %n {num_heads = 6 : i64} : tensor<6x?xf32>
  return %0 : tensor<6x?xf32>
}

// -----

// Dynamic NTK: L = max(position ids) + 1, at least max_position_embeddings;
// base = theta * (factor * L / mpe - (factor - 1))^(d / (d - 2)) in f64, then
// inv_freq = 1 / base^(2 (i mod d/2) / d) in f32 at run time.
// CHECK-LABEL: func @rotary_dynamic
// CHECK: %[[MAX:.*]] = linalg.generic {{.*}} iterator_types = ["reduction", "reduction"]} ins(%{{.*}} : tensor<?x?xi64>) outs(%{{.*}} : tensor<i64>)
// CHECK:   arith.maxsi
// CHECK: %[[POS:.*]] = tensor.extract %[[MAX]][] : tensor<i64>
// CHECK: %[[L:.*]] = arith.addi %[[POS]]
// CHECK: arith.maxsi %[[L]], %{{.*}} : i64
// CHECK: %[[SCALE:.*]] = math.powf %{{.*}}, %{{.*}} : f64
// CHECK: %[[BASE:.*]] = arith.truncf %{{.*}} : f64 to f32
// CHECK: %[[FREQ:.*]] = linalg.generic {{.*}} ins(%{{.*}} : tensor<4xf32>)
// CHECK:   math.powf %[[BASE]], %{{.*}} : f32
// CHECK: linalg.generic {{.*}} ins(%{{.*}}, %{{.*}}, %[[FREQ]] :
func.func @rotary_dynamic(%x: tensor<?x?x2x4xf32>, %p: tensor<?x?xi64>) -> tensor<?x?x2x4xf32> {
  %0 = falcon.rotary %x, %p {theta = 1.0e+04 : f64, scaling = #falcon.rope_scaling<dynamic>, factor = 2.0 : f64, max_position_embeddings = 12 : i64} : (tensor<?x?x2x4xf32>, tensor<?x?xi64>) -> tensor<?x?x2x4xf32>
  return %0 : tensor<?x?x2x4xf32>
}
// -----

// Attention stays one recognisable op: the target's strategy decomposes it
// (test/Codegen/CPU/cpu-decompose-attention.mlir).
// CHECK-LABEL: func @attention_kept
// CHECK: falcon.attention
// CHECK-NOT: linalg.generic
func.func @attention_kept(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x2x16xf32>, %v: tensor<?x?x2x16xf32>,
                          %kc: tensor<?x2x?x16xf32>, %vc: tensor<?x2x?x16xf32>, %past: tensor<?xi64>)
    -> (tensor<?x?x64xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>) {
  %o, %nk, %nv = falcon.attention %q, %k, %v, %kc, %vc, %past
      : (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?xi64>)
      -> (tensor<?x?x64xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>)
  return %o, %nk, %nv : tensor<?x?x64xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>
}

// -----

// Precision interface: with bf16 activations, LayerNorm statistics and the
// residual add accumulate in f32 and round to bf16 once at the end.
// CHECK-LABEL: func @bf16_accumulates_in_f32
// CHECK: linalg.generic {{.*}} ins(%{{.*}} : tensor<?x?x8xbf16>) outs(%{{.*}} : tensor<?x?xf32>)
// CHECK:   arith.extf %{{.*}} : bf16 to f32
// CHECK:   arith.addf %{{.*}} : f32
// CHECK: linalg.generic {{.*}} outs(%{{.*}} : tensor<?x?x8xbf16>)
// CHECK:   math.sqrt %{{.*}} : f32
// CHECK:   arith.truncf %{{.*}} : f32 to bf16
// CHECK: linalg.generic
// CHECK:   %[[L:.*]] = arith.extf %{{.*}} : bf16 to f32
// CHECK:   %[[R:.*]] = arith.extf %{{.*}} : bf16 to f32
// CHECK:   %[[S:.*]] = arith.addf %[[L]], %[[R]] : f32
// CHECK:   arith.truncf %[[S]] : f32 to bf16
func.func @bf16_accumulates_in_f32(%x: tensor<?x?x8xbf16>, %w: tensor<8xbf16>, %b: tensor<8xbf16>) -> tensor<?x?x8xbf16> {
  %0 = falcon.layer_norm %x, %w, %b {epsilon = 1.0e-05 : f64} : (tensor<?x?x8xbf16>, tensor<8xbf16>, tensor<8xbf16>) -> tensor<?x?x8xbf16>
  %1 = falcon.add %0, %x : tensor<?x?x8xbf16>
  return %1 : tensor<?x?x8xbf16>
}
