// RUN: falcon-opt %s -split-input-file -verify-diagnostics

func.func @param_empty_name() {
  // expected-error @+1 {{expects a non-empty parameter name}}
  %0 = falcon.param "" : tensor<8xf32>
  return
}

// -----

func.func @param_missing_layer() {
  // expected-error @+1 {{expects a layer index operand for the templated name "transformer.h.{}.ln_attn.weight"}}
  %0 = falcon.param "transformer.h.{}.ln_attn.weight" : tensor<8xf32>
  return
}

// -----

func.func @param_missing_placeholder(%i: index) {
  // expected-error @+1 {{expects a name with exactly one '{}' layer placeholder when a layer index is given, found "transformer.ln_f.weight"}}
  %0 = falcon.param "transformer.ln_f.weight"[%i] : tensor<8xf32>
  return
}

// -----

func.func @param_dynamic(%i: index) {
  // expected-error @+1 {{must be statically shaped tensor of any type values}}
  %0 = falcon.param "transformer.ln_f.weight" : tensor<?xf32>
  return
}

// -----

func.func @embedding_width(%ids: tensor<?x?xi64>, %table: tensor<32x8xf32>) {
  // expected-error @+1 {{expects result features (the table's dimension 1) to be 8, found 9}}
  %0 = falcon.embedding %ids, %table : (tensor<?x?xi64>, tensor<32x8xf32>) -> tensor<?x?x9xf32>
  return
}

// -----

func.func @embedding_float_ids(%ids: tensor<?x?xf32>, %table: tensor<32x8xf32>) {
  // expected-error @+1 {{operand #0 must be 2D tensor of signless integer values}}
  %0 = falcon.embedding %ids, %table : (tensor<?x?xf32>, tensor<32x8xf32>) -> tensor<?x?x8xf32>
  return
}

// -----

func.func @layer_norm_epsilon(%x: tensor<?x?x8xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{expects a positive epsilon, found 0}}
  %0 = falcon.layer_norm %x, %w, %w {epsilon = 0.0 : f64} : (tensor<?x?x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<?x?x8xf32>
  return
}

// -----

func.func @layer_norm_weight(%x: tensor<?x?x8xf32>, %w: tensor<7xf32>) {
  // expected-error @+1 {{expects weight size to be 8, found 7}}
  %0 = falcon.layer_norm %x, %w, %w {epsilon = 1.0e-5 : f64} : (tensor<?x?x8xf32>, tensor<7xf32>, tensor<7xf32>) -> tensor<?x?x8xf32>
  return
}

// -----

func.func @layer_norm_result(%x: tensor<?x?x8xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{all of {input, result} have same type}}
  %0 = falcon.layer_norm %x, %w, %w {epsilon = 1.0e-5 : f64} : (tensor<?x?x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<?x?x8xf16>
  return
}

// -----

func.func @linear_in_features(%x: tensor<?x?x8xf32>, %w: tensor<16x9xf32>) {
  // expected-error @+1 {{expects weight in_features (dimension 1) to be 8, found 9}}
  %0 = falcon.linear %x, %w : (tensor<?x?x8xf32>, tensor<16x9xf32>) -> tensor<?x?x16xf32>
  return
}

// -----

func.func @linear_out_features(%x: tensor<?x?x8xf32>, %w: tensor<16x8xf32>) {
  // expected-error @+1 {{expects result features to be 16, found 17}}
  %0 = falcon.linear %x, %w : (tensor<?x?x8xf32>, tensor<16x8xf32>) -> tensor<?x?x17xf32>
  return
}

// -----

func.func @linear_bias(%x: tensor<?x?x8xf32>, %w: tensor<16x8xf32>, %b: tensor<8xf32>) {
  // expected-error @+1 {{expects bias size to be 16, found 8}}
  %0 = falcon.linear %x, %w, %b : (tensor<?x?x8xf32>, tensor<16x8xf32>, tensor<8xf32>) -> tensor<?x?x16xf32>
  return
}

// -----

func.func @linear_batch(%x: tensor<2x?x8xf32>, %w: tensor<16x8xf32>) {
  // expected-error @+1 {{expects result dimension 0 (from input) to be 2, found 3}}
  %0 = falcon.linear %x, %w : (tensor<2x?x8xf32>, tensor<16x8xf32>) -> tensor<3x?x16xf32>
  return
}

// -----

func.func @linear_result_type(%x: tensor<?x?x8xf32>, %w: tensor<16x8xf32>) {
  // expected-error @+1 {{expects the result element type to match the input's, found 'f16' and 'f32'}}
  %0 = falcon.linear %x, %w : (tensor<?x?x8xf32>, tensor<16x8xf32>) -> tensor<?x?x16xf16>
  return
}

// -----

func.func @lm_head_hidden(%x: tensor<?x?x8xf32>, %w: tensor<32x4xf32>) {
  // expected-error @+1 {{expects weight in_features (dimension 1) to be 8, found 4}}
  %0 = falcon.lm_head %x, %w : (tensor<?x?x8xf32>, tensor<32x4xf32>) -> tensor<?x?x32xf32>
  return
}

// -----

func.func @gather_positions_rows(%h: tensor<2x?x8xf32>, %p: tensor<2x1xi64>) {
  // expected-error @+1 {{expects result dimension 1 (from positions) to be 1, found 3}}
  %0 = falcon.gather_positions %h, %p : (tensor<2x?x8xf32>, tensor<2x1xi64>) -> tensor<2x3x8xf32>
  return
}

// -----

func.func @gather_positions_features(%h: tensor<?x?x8xf32>, %p: tensor<?x?xi64>) {
  // expected-error @+1 {{expects result features (from input) to be 8, found 4}}
  %0 = falcon.gather_positions %h, %p : (tensor<?x?x8xf32>, tensor<?x?xi64>) -> tensor<?x?x4xf32>
  return
}

// -----

func.func @gelu_type(%x: tensor<?x?x8xf32>) {
  // expected-error @+1 {{requires the same type for all operands and results}}
  %0 = "falcon.gelu"(%x) : (tensor<?x?x8xf32>) -> tensor<?x?x8xf16>
  return
}

// -----

func.func @add_type(%x: tensor<?x?x8xf32>, %y: tensor<?x?x9xf32>) {
  // expected-error @+1 {{requires the same type for all operands and results}}
  %0 = "falcon.add"(%x, %y) : (tensor<?x?x8xf32>, tensor<?x?x9xf32>) -> tensor<?x?x8xf32>
  return
}

// -----

func.func @split_per_head_kv(%f: tensor<?x?x288xf32>) {
  // expected-error @+1 {{expects num_kv_heads (3) to equal num_heads (6) for the per_head layout}}
  %q, %k, %v = falcon.qkv_split %f {layout = #falcon.qkv_layout<per_head>, num_heads = 6 : i64, num_kv_heads = 3 : i64}
      : tensor<?x?x288xf32> -> (tensor<?x?x6x16xf32>, tensor<?x?x3x16xf32>, tensor<?x?x3x16xf32>)
  return
}

// -----

func.func @split_multi_query_kv(%f: tensor<?x?x112xf32>) {
  // expected-error @+1 {{expects num_kv_heads to be 1 for the multi_query layout, found 2}}
  %q, %k, %v = falcon.qkv_split %f {layout = #falcon.qkv_layout<multi_query>, num_heads = 5 : i64, num_kv_heads = 2 : i64}
      : tensor<?x?x112xf32> -> (tensor<?x?x5x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>)
  return
}

// -----

func.func @split_grouped_divisibility(%f: tensor<?x?x7616xf32>) {
  // expected-error @+1 {{expects num_heads (71) to be a multiple of num_kv_heads (2)}}
  %q, %k, %v = falcon.qkv_split %f {layout = #falcon.qkv_layout<grouped>, num_heads = 71 : i64, num_kv_heads = 2 : i64}
      : tensor<?x?x7616xf32> -> (tensor<?x?x71x64xf32>, tensor<?x?x2x64xf32>, tensor<?x?x2x64xf32>)
  return
}

// -----

func.func @split_grouped_width(%f: tensor<?x?x9000xf32>) {
  // expected-error @+1 {{expects fused width for the grouped layout with 128 heads, 8 kv heads and head size 64 to be 9216, found 9000}}
  %q, %k, %v = falcon.qkv_split %f {layout = #falcon.qkv_layout<grouped>, num_heads = 128 : i64, num_kv_heads = 8 : i64}
      : tensor<?x?x9000xf32> -> (tensor<?x?x128x64xf32>, tensor<?x?x8x64xf32>, tensor<?x?x8x64xf32>)
  return
}

// -----

func.func @split_multi_query_width(%f: tensor<?x?x4544xf32>) {
  // expected-error @+1 {{expects fused width for the multi_query layout with 71 heads, 1 kv heads and head size 64 to be 4672, found 4544}}
  %q, %k, %v = falcon.qkv_split %f {layout = #falcon.qkv_layout<multi_query>, num_heads = 71 : i64, num_kv_heads = 1 : i64}
      : tensor<?x?x4544xf32> -> (tensor<?x?x71x64xf32>, tensor<?x?x1x64xf32>, tensor<?x?x1x64xf32>)
  return
}

// -----

func.func @split_per_head_width(%f: tensor<?x?x6000xf32>) {
  // expected-error @+1 {{expects fused width for the per_head layout with 32 heads, 32 kv heads and head size 64 to be 6144, found 6000}}
  %q, %k, %v = falcon.qkv_split %f {layout = #falcon.qkv_layout<per_head>, num_heads = 32 : i64, num_kv_heads = 32 : i64}
      : tensor<?x?x6000xf32> -> (tensor<?x?x32x64xf32>, tensor<?x?x32x64xf32>, tensor<?x?x32x64xf32>)
  return
}

// -----

func.func @split_query_heads(%f: tensor<?x?x112xf32>) {
  // expected-error @+1 {{expects query heads (dimension 2) to be 5, found 4}}
  %q, %k, %v = falcon.qkv_split %f {layout = #falcon.qkv_layout<multi_query>, num_heads = 5 : i64, num_kv_heads = 1 : i64}
      : tensor<?x?x112xf32> -> (tensor<?x?x4x16xf32>, tensor<?x?x1x16xf32>, tensor<?x?x1x16xf32>)
  return
}

// -----

func.func @split_head_size(%f: tensor<?x?x112xf32>) {
  // expected-error @+1 {{expects key head size to be 16, found 8}}
  %q, %k, %v = falcon.qkv_split %f {layout = #falcon.qkv_layout<multi_query>, num_heads = 5 : i64, num_kv_heads = 1 : i64}
      : tensor<?x?x112xf32> -> (tensor<?x?x5x16xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x16xf32>)
  return
}

// -----

func.func @split_nonpositive(%f: tensor<?x?x112xf32>) {
  // expected-error @+1 {{expects positive num_heads and num_kv_heads, found 0 and 1}}
  %q, %k, %v = falcon.qkv_split %f {layout = #falcon.qkv_layout<multi_query>, num_heads = 0 : i64, num_kv_heads = 1 : i64}
      : tensor<?x?x112xf32> -> (tensor<?x?x5x16xf32>, tensor<?x?x1x16xf32>, tensor<?x?x1x16xf32>)
  return
}

// -----

func.func @rotary_odd(%x: tensor<?x?x4x15xf32>, %p: tensor<?x?xi64>) {
  // expected-error @+1 {{expects an even head size, found 15}}
  %0 = falcon.rotary %x, %p {theta = 1.0e+04 : f64} : (tensor<?x?x4x15xf32>, tensor<?x?xi64>) -> tensor<?x?x4x15xf32>
  return
}

// -----

func.func @rotary_theta(%x: tensor<?x?x4x16xf32>, %p: tensor<?x?xi64>) {
  // expected-error @+1 {{expects a positive theta, found -1}}
  %0 = falcon.rotary %x, %p {theta = -1.0 : f64} : (tensor<?x?x4x16xf32>, tensor<?x?xi64>) -> tensor<?x?x4x16xf32>
  return
}

// -----

func.func @rotary_factor(%x: tensor<?x?x4x16xf32>, %p: tensor<?x?xi64>) {
  // expected-error @+1 {{expects a positive scaling factor, found 0}}
  %0 = falcon.rotary %x, %p {theta = 1.0e+04 : f64, factor = 0.0 : f64} : (tensor<?x?x4x16xf32>, tensor<?x?xi64>) -> tensor<?x?x4x16xf32>
  return
}

// -----

func.func @rotary_positions(%x: tensor<2x?x4x16xf32>, %p: tensor<3x?xi64>) {
  // expected-error @+1 {{expects result dimension 0 (from positions) to be 3, found 2}}
  %0 = falcon.rotary %x, %p {theta = 1.0e+04 : f64} : (tensor<2x?x4x16xf32>, tensor<3x?xi64>) -> tensor<2x?x4x16xf32>
  return
}

// -----

func.func @alibi_heads(%n: index) {
  // expected-error @+1 {{expects heads [first_head, first_head + rows) within num_heads (6), found first_head 0 and 7 rows}}
  %0 = falcon.alibi %n {num_heads = 6 : i64} : tensor<7x?xf32>
  return
}

// -----

func.func @alibi_slot_heads(%n: index) {
  // A tensor-parallel slot's heads must lie within the model's.
  // expected-error @+1 {{expects heads [first_head, first_head + rows) within num_heads (6), found first_head 4 and 3 rows}}
  %0 = falcon.alibi %n {num_heads = 6 : i64, first_head = 4 : i64} : tensor<3x?xf32>
  return
}

// -----

func.func @all_reduce_bias(%x: tensor<?x?x8xf32>, %b: tensor<4xf32>) {
  // expected-error @+1 {{expects bias size to be 8, found 4}}
  %0 = falcon.all_reduce %x bias(%b : tensor<4xf32>) {group_size = 2 : i64} : tensor<?x?x8xf32>
  return
}

// -----

func.func @all_reduce_group(%x: tensor<?x?x8xf32>) {
  // expected-error @+1 {{expects a positive group_size, found 0}}
  %0 = falcon.all_reduce %x {group_size = 0 : i64} : tensor<?x?x8xf32>
  return
}

// -----

func.func @embedding_offset(%ids: tensor<?x?xi64>, %table: tensor<4x8xf32>) {
  // expected-error @+1 {{expects a non-negative vocab_offset, found -1}}
  %0 = falcon.embedding %ids, %table {vocab_offset = -1 : i64} : (tensor<?x?xi64>, tensor<4x8xf32>) -> tensor<?x?x8xf32>
  return
}

// -----

// expected-error @+1 {{expects rank in [0, tp * pp) with positive tp and pp, found rank 4 of tp 2 x pp 2}}
module attributes {falcon.rank_plan = #falcon.rank_plan<tp = 2, pp = 2, rank = 4, first_layer = 0, num_layers = 1, first_head = 0, num_heads = 1, first_kv_head = 0, num_kv_heads = 1, kv_replicated = false, ffn_offset = 0, ffn_size = 1, vocab_offset = 0, vocab_size = 1>} {}

// -----

func.func @alibi_nonpositive(%n: index) {
  // expected-error @+1 {{expects a positive num_heads, found 0}}
  %0 = falcon.alibi %n {num_heads = 0 : i64} : tensor<0x?xf32>
  return
}

// -----

func.func @attention_divisibility(%q: tensor<?x?x71x64xf32>, %k: tensor<?x?x2x64xf32>,
                                  %c: tensor<?x2x?x64xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{expects num_heads (71) to be a multiple of num_kv_heads (2)}}
  %o, %kc, %vc = falcon.attention %q, %k, %k, %c, %c, %p
      : (tensor<?x?x71x64xf32>, tensor<?x?x2x64xf32>, tensor<?x?x2x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?xi64>)
      -> (tensor<?x?x4544xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x64xf32>)
  return
}

// -----

func.func @attention_cache_heads(%q: tensor<?x?x8x16xf32>, %k: tensor<?x?x2x16xf32>,
                                 %c: tensor<?x8x?x16xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{expects key cache heads (dimension 1) to be 2, found 8}}
  %o, %kc, %vc = falcon.attention %q, %k, %k, %c, %c, %p
      : (tensor<?x?x8x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>, tensor<?x8x?x16xf32>, tensor<?x8x?x16xf32>, tensor<?xi64>)
      -> (tensor<?x?x128xf32>, tensor<?x8x?x16xf32>, tensor<?x8x?x16xf32>)
  return
}

// -----

func.func @attention_head_size(%q: tensor<?x?x8x16xf32>, %k: tensor<?x?x2x16xf32>,
                               %c: tensor<?x2x?x32xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{expects key cache head size to be 16, found 32}}
  %o, %kc, %vc = falcon.attention %q, %k, %k, %c, %c, %p
      : (tensor<?x?x8x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>, tensor<?x2x?x32xf32>, tensor<?x2x?x32xf32>, tensor<?xi64>)
      -> (tensor<?x?x128xf32>, tensor<?x2x?x32xf32>, tensor<?x2x?x32xf32>)
  return
}

// -----

func.func @attention_result(%q: tensor<?x?x8x16xf32>, %k: tensor<?x?x2x16xf32>,
                            %c: tensor<?x2x?x16xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{expects result features (num_heads * head size) to be 128, found 64}}
  %o, %kc, %vc = falcon.attention %q, %k, %k, %c, %c, %p
      : (tensor<?x?x8x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?xi64>)
      -> (tensor<?x?x64xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>)
  return
}

// -----

func.func @attention_bias(%q: tensor<?x?x6x16xf32>, %k: tensor<?x?x6x16xf32>,
                          %c: tensor<?x6x?x16xf32>, %p: tensor<?xi64>, %b: tensor<5x?xf32>) {
  // expected-error @+1 {{expects bias dimension 0 (num_heads) to be 6, found 5}}
  %o, %kc, %vc = falcon.attention %q, %k, %k, %c, %c, %p bias(%b)
      : (tensor<?x?x6x16xf32>, tensor<?x?x6x16xf32>, tensor<?x?x6x16xf32>, tensor<?x6x?x16xf32>, tensor<?x6x?x16xf32>, tensor<?xi64>, tensor<5x?xf32>)
      -> (tensor<?x?x96xf32>, tensor<?x6x?x16xf32>, tensor<?x6x?x16xf32>)
  return
}

// -----

func.func @attention_cache_result(%q: tensor<?x?x8x16xf32>, %k: tensor<?x?x2x16xf32>,
                                  %c: tensor<?x2x?x16xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{all of {key_cache, new_key_cache} have same type}}
  %o, %kc, %vc = falcon.attention %q, %k, %k, %c, %c, %p
      : (tensor<?x?x8x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?xi64>)
      -> (tensor<?x?x128xf32>, tensor<?x2x8x16xf32>, tensor<?x2x?x16xf32>)
  return
}

// -----

// Feature dimensions are static and positive: the lowering sizes loops and
// tiles by them.
func.func @linear_dynamic_weight(%x: tensor<?x?x?xf32>, %w: tensor<?x?xbf16>) {
  // expected-error @+1 {{expects a static weight dimension 0, found ?}}
  %0 = falcon.linear %x, %w : (tensor<?x?x?xf32>, tensor<?x?xbf16>) -> tensor<?x?x?xf32>
  return
}

// -----

func.func @embedding_dynamic_table(%ids: tensor<?x?xi64>, %table: tensor<?x8xf32>) {
  // expected-error @+1 {{expects a static table dimension 0, found ?}}
  %0 = falcon.embedding %ids, %table : (tensor<?x?xi64>, tensor<?x8xf32>) -> tensor<?x?x8xf32>
  return
}

// -----

func.func @layer_norm_dynamic_features(%x: tensor<?x?x?xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{expects a static input dimension 2, found ?}}
  %0 = falcon.layer_norm %x, %w, %w {epsilon = 1.0e-5 : f64} : (tensor<?x?x?xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<?x?x?xf32>
  return
}

// -----

func.func @rotary_dynamic_head(%x: tensor<?x?x4x?xf32>, %p: tensor<?x?xi64>) {
  // expected-error @+1 {{expects a static input dimension 3, found ?}}
  %0 = falcon.rotary %x, %p {theta = 1.0e+04 : f64} : (tensor<?x?x4x?xf32>, tensor<?x?xi64>) -> tensor<?x?x4x?xf32>
  return
}

// -----

func.func @qkv_split_zero_width(%f: tensor<1x2x0xf32>) {
  // expected-error @+1 {{expects a positive fused dimension 2, found 0}}
  %q, %k, %v = falcon.qkv_split %f {layout = #falcon.qkv_layout<grouped>, num_heads = 4 : i64, num_kv_heads = 2 : i64} : tensor<1x2x0xf32> -> (tensor<1x2x4x0xf32>, tensor<1x2x2x0xf32>, tensor<1x2x2x0xf32>)
  return
}

// -----

func.func @qkv_split_dynamic_head(%f: tensor<?x?x96xf32>) {
  // expected-error @+1 {{expects a static head dimension}}
  %q, %k, %v = falcon.qkv_split %f {layout = #falcon.qkv_layout<grouped>, num_heads = 4 : i64, num_kv_heads = 2 : i64} : tensor<?x?x96xf32> -> (tensor<?x?x4x?xf32>, tensor<?x?x2x?xf32>, tensor<?x?x2x?xf32>)
  return
}

// -----

// Zero KV heads: an error, not a division by zero in the verifier.
func.func @attention_zero_kv_heads(%q: tensor<1x2x4x8xf32>, %k: tensor<1x2x0x8xf32>, %c: tensor<1x0x4x8xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{expects a positive key dimension 2, found 0}}
  %o, %kc, %vc = falcon.attention %q, %k, %k, %c, %c, %p : (tensor<1x2x4x8xf32>, tensor<1x2x0x8xf32>, tensor<1x2x0x8xf32>, tensor<1x0x4x8xf32>, tensor<1x0x4x8xf32>, tensor<?xi64>) -> (tensor<1x2x32xf32>, tensor<1x0x4x8xf32>, tensor<1x0x4x8xf32>)
  return
}

// -----

func.func @attention_dynamic_heads(%q: tensor<?x?x?x8xf32>, %k: tensor<?x?x2x8xf32>, %c: tensor<?x2x?x8xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{expects static head counts and head size}}
  %o, %kc, %vc = falcon.attention %q, %k, %k, %c, %c, %p : (tensor<?x?x?x8xf32>, tensor<?x?x2x8xf32>, tensor<?x?x2x8xf32>, tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>, tensor<?xi64>) -> (tensor<?x?x?xf32>, tensor<?x2x?x8xf32>, tensor<?x2x?x8xf32>)
  return
}

// -----

func.func @param_transposed_rank() {
  // expected-error @+1 {{expects an encoding permutation of the result's rank (1), found 2 dimensions}}
  %0 = falcon.param "transformer.ln_f.weight" {encoding = #falcon.weight_encoding<permutation = [1, 0]>} : tensor<8xf32>
  return
}

// -----

// A weight layout whose slot ends beyond the file.
// expected-error @+1 {{slot 'w' ends beyond total_bytes (64)}}
module attributes {falcon.weight_layout = #falcon.weight_layout<num_layers = 1, total_bytes = 64, slots = [#falcon.weight_slot<name = "w", type = tensor<32xf32>, offset = 0, layer_stride = 128, bytes = 128>]>} {}

// -----

// Per-layer slots are named with '{}'.
// expected-error @+2 {{expects 'w' to hold '{}' exactly when per_layer}}
// expected-error @+1 {{failed to parse Falcon_WeightLayoutAttr parameter 'slots'}}
module attributes {falcon.weight_layout = #falcon.weight_layout<num_layers = 2, total_bytes = 256, slots = [#falcon.weight_slot<name = "w", type = tensor<32xf32>, offset = 0, layer_stride = 128, bytes = 128, per_layer = true>]>} {}

// -----

// expected-error @+1 {{expects 'falcon.weight_layout' to be a #falcon.weight_layout on a module, found {slots = []}}}
module attributes {falcon.weight_layout = {slots = []}} {}
