// RUN: falcon-opt %s | FileCheck %s
// RUN: falcon-opt %s | falcon-opt | FileCheck %s
// RUN: falcon-opt %s --mlir-print-op-generic | falcon-opt | FileCheck %s

// CHECK-LABEL: func @params
func.func @params(%layer: index) -> (tensor<8xbf16>, tensor<24x8xf16>) {
  // CHECK: falcon.param "transformer.ln_f.weight" : tensor<8xbf16>
  %0 = falcon.param "transformer.ln_f.weight" : tensor<8xbf16>
  // CHECK: falcon.param "transformer.h.{}.self_attention.query_key_value.weight"[%{{.*}}] : tensor<24x8xf16>
  %1 = falcon.param "transformer.h.{}.self_attention.query_key_value.weight"[%layer] : tensor<24x8xf16>
  return %0, %1 : tensor<8xbf16>, tensor<24x8xf16>
}

// CHECK-LABEL: func @dense
func.func @dense(%ids: tensor<?x?xi64>, %table: tensor<32x8xbf16>, %g: tensor<8xf32>,
                 %b: tensor<8xf32>, %w: tensor<16x8xbf16>, %bias: tensor<16xbf16>,
                 %w2: tensor<8x16xf32>) -> tensor<?x?x32xf32> {
  // CHECK: %[[X:.*]] = falcon.embedding %{{.*}}, %{{.*}} : (tensor<?x?xi64>, tensor<32x8xbf16>) -> tensor<?x?x8xf32>
  %x = falcon.embedding %ids, %table : (tensor<?x?xi64>, tensor<32x8xbf16>) -> tensor<?x?x8xf32>
  // CHECK: %[[N:.*]] = falcon.layer_norm %[[X]], %{{.*}}, %{{.*}} {epsilon = 1.000000e-05 : f64}
  %n = falcon.layer_norm %x, %g, %b {epsilon = 1.0e-05 : f64} : (tensor<?x?x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<?x?x8xf32>
  // CHECK: %[[H:.*]] = falcon.linear %[[N]], %{{.*}}, %{{.*}} : (tensor<?x?x8xf32>, tensor<16x8xbf16>, tensor<16xbf16>) -> tensor<?x?x16xf32>
  %h = falcon.linear %n, %w, %bias : (tensor<?x?x8xf32>, tensor<16x8xbf16>, tensor<16xbf16>) -> tensor<?x?x16xf32>
  // CHECK: %[[G:.*]] = falcon.gelu %[[H]] : tensor<?x?x16xf32>
  %gl = falcon.gelu %h : tensor<?x?x16xf32>
  // CHECK: %[[M:.*]] = falcon.linear %[[G]], %{{.*}} : (tensor<?x?x16xf32>, tensor<8x16xf32>) -> tensor<?x?x8xf32>
  %m = falcon.linear %gl, %w2 : (tensor<?x?x16xf32>, tensor<8x16xf32>) -> tensor<?x?x8xf32>
  // CHECK: %[[S:.*]] = falcon.add %[[X]], %[[M]] : tensor<?x?x8xf32>
  %s = falcon.add %x, %m : tensor<?x?x8xf32>
  // CHECK: falcon.lm_head %[[S]], %{{.*}} {tied} : (tensor<?x?x8xf32>, tensor<32x8xbf16>) -> tensor<?x?x32xf32>
  %logits = falcon.lm_head %s, %table {tied} : (tensor<?x?x8xf32>, tensor<32x8xbf16>) -> tensor<?x?x32xf32>
  return %logits : tensor<?x?x32xf32>
}

// CHECK-LABEL: func @gather_positions
func.func @gather_positions(%h: tensor<?x?x8xf32>, %positions: tensor<?x?xi64>) -> tensor<?x?x8xf32> {
  // CHECK: falcon.gather_positions %{{.*}}, %{{.*}} : (tensor<?x?x8xf32>, tensor<?x?xi64>) -> tensor<?x?x8xf32>
  %0 = falcon.gather_positions %h, %positions : (tensor<?x?x8xf32>, tensor<?x?xi64>) -> tensor<?x?x8xf32>
  return %0 : tensor<?x?x8xf32>
}

// CHECK-LABEL: func @attention_rope
func.func @attention_rope(%fused: tensor<?x?x112xf32>, %pos: tensor<?x?xi64>,
                          %kc: tensor<?x1x?x16xf32>, %vc: tensor<?x1x?x16xf32>, %past: tensor<?xi64>)
    -> (tensor<?x?x80xf32>, tensor<?x1x?x16xf32>, tensor<?x1x?x16xf32>) {
  // CHECK: %[[Q:.*]], %[[K:.*]], %[[V:.*]] = falcon.qkv_split %{{.*}} {layout = #falcon.qkv_layout<multi_query>, num_heads = 5 : i64, num_kv_heads = 1 : i64}
  %q, %k, %v = falcon.qkv_split %fused {layout = #falcon.qkv_layout<multi_query>, num_heads = 5 : i64, num_kv_heads = 1 : i64}
      : tensor<?x?x112xf32> -> (tensor<?x?x5x16xf32>, tensor<?x?x1x16xf32>, tensor<?x?x1x16xf32>)
  // CHECK: %[[QR:.*]] = falcon.rotary %[[Q]], %{{.*}} {theta = 1.000000e+04 : f64}
  %qr = falcon.rotary %q, %pos {theta = 1.0e+04 : f64} : (tensor<?x?x5x16xf32>, tensor<?x?xi64>) -> tensor<?x?x5x16xf32>
  // CHECK: %[[KR:.*]] = falcon.rotary %[[K]], %{{.*}} {factor = 2.000000e+00 : f64, max_position_embeddings = 8192 : i64, scaling = #falcon.rope_scaling<dynamic>, theta = 5.000420e+05 : f64}
  %kr = falcon.rotary %k, %pos {theta = 500042.0 : f64, scaling = #falcon.rope_scaling<dynamic>, factor = 2.0 : f64, max_position_embeddings = 8192 : i64}
      : (tensor<?x?x1x16xf32>, tensor<?x?xi64>) -> tensor<?x?x1x16xf32>
  // CHECK: falcon.attention %[[QR]], %[[KR]], %[[V]], %{{.*}}, %{{.*}}, %{{.*}} :
  %o, %nk, %nv = falcon.attention %qr, %kr, %v, %kc, %vc, %past
      : (tensor<?x?x5x16xf32>, tensor<?x?x1x16xf32>, tensor<?x?x1x16xf32>, tensor<?x1x?x16xf32>, tensor<?x1x?x16xf32>, tensor<?xi64>)
      -> (tensor<?x?x80xf32>, tensor<?x1x?x16xf32>, tensor<?x1x?x16xf32>)
  return %o, %nk, %nv : tensor<?x?x80xf32>, tensor<?x1x?x16xf32>, tensor<?x1x?x16xf32>
}

// CHECK-LABEL: func @attention_alibi_per_head
func.func @attention_alibi_per_head(%fused: tensor<?x?x288xf32>, %kc: tensor<?x6x?x16xf32>,
                                    %vc: tensor<?x6x?x16xf32>, %past: tensor<?xi64>, %keys: index)
    -> tensor<?x?x96xf32> {
  // CHECK: falcon.qkv_split %{{.*}} {layout = #falcon.qkv_layout<per_head>, num_heads = 6 : i64, num_kv_heads = 6 : i64}
  %q, %k, %v = falcon.qkv_split %fused {layout = #falcon.qkv_layout<per_head>, num_heads = 6 : i64, num_kv_heads = 6 : i64}
      : tensor<?x?x288xf32> -> (tensor<?x?x6x16xf32>, tensor<?x?x6x16xf32>, tensor<?x?x6x16xf32>)
  // CHECK: %[[B:.*]] = falcon.alibi %{{.*}} {num_heads = 6 : i64} : tensor<6x?xf32>
  %bias = falcon.alibi %keys {num_heads = 6 : i64} : tensor<6x?xf32>
  // CHECK: falcon.attention {{.*}} bias(%[[B]])
  %o, %nk, %nv = falcon.attention %q, %k, %v, %kc, %vc, %past bias(%bias)
      : (tensor<?x?x6x16xf32>, tensor<?x?x6x16xf32>, tensor<?x?x6x16xf32>, tensor<?x6x?x16xf32>, tensor<?x6x?x16xf32>, tensor<?xi64>, tensor<6x?xf32>)
      -> (tensor<?x?x96xf32>, tensor<?x6x?x16xf32>, tensor<?x6x?x16xf32>)
  return %o : tensor<?x?x96xf32>
}

// CHECK-LABEL: func @grouped_split
func.func @grouped_split(%fused: tensor<?x?x192xf32>) -> tensor<?x?x8x16xf32> {
  // CHECK: falcon.qkv_split %{{.*}} {layout = #falcon.qkv_layout<grouped>, num_heads = 8 : i64, num_kv_heads = 2 : i64}
  %q, %k, %v = falcon.qkv_split %fused {layout = #falcon.qkv_layout<grouped>, num_heads = 8 : i64, num_kv_heads = 2 : i64}
      : tensor<?x?x192xf32> -> (tensor<?x?x8x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>)
  return %q : tensor<?x?x8x16xf32>
}

// Weight encodings: a transpose for the CPU kernels, a tensor-parallel shard
// (slice or row gather), a quantization scheme; defaults are not printed.
// CHECK-LABEL: func.func @encodings
func.func @encodings(%i: index) {
  // CHECK: falcon.param "w.{}"[%{{.*}}] {encoding = #falcon.weight_encoding<permutation = [1, 0]>} : tensor<16x8xbf16>
  %0 = falcon.param "w.{}"[%i] {encoding = #falcon.weight_encoding<permutation = [1, 0]>} : tensor<16x8xbf16>
  // CHECK: falcon.param "qkv" {encoding = #falcon.weight_encoding<slice = [0, 4, 4]>} : tensor<4x8xf32>
  %1 = falcon.param "qkv" {encoding = #falcon.weight_encoding<slice = [0, 4, 4]>} : tensor<4x8xf32>
  // CHECK: falcon.param "heads" {encoding = #falcon.weight_encoding<gather = [0, 3, 1, 2]>} : tensor<3x8xf32>
  %2 = falcon.param "heads" {encoding = #falcon.weight_encoding<gather = [0, 3, 1, 2]>} : tensor<3x8xf32>
  // CHECK: falcon.param "q" {encoding = #falcon.weight_encoding<permutation = [1, 0], quantization = int4, group_size = 128, pack = 2>} : tensor<256x8xi8>
  %3 = falcon.param "q" {encoding = #falcon.weight_encoding<permutation = [1, 0], quantization = int4, group_size = 128, pack = 2>} : tensor<256x8xi8>
  return
}
