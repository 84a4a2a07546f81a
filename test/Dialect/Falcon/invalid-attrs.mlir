// RUN: falcon-opt %s -split-input-file -verify-diagnostics

// Every discardable falcon attribute is verified by the dialect.
// expected-error @+1 {{has unknown falcon attribute 'falcon.projection'}}
func.func @unknown() attributes {falcon.projection} {
  return
}

// -----

// expected-error @+1 {{expects 'falcon.target' to be a #falcon.cpu_target on a module}}
func.func @target_on_func() attributes {falcon.target = #falcon.cpu_target<triple = "x86_64-pc-linux-gnu", cpu = "x86-64-v3", features = "+avx2", vector_bits = 256, vector_registers = 16, threads = 2>} {
  return
}

// -----

// expected-error @+1 {{expects vector_bits to be 128, 256 or 512, found 1024}}
module attributes {falcon.target = #falcon.cpu_target<triple = "x86_64-pc-linux-gnu", cpu = "x86-64-v3", features = "+avx2", vector_bits = 1024, vector_registers = 16, threads = 2>} {
}

// -----

// expected-error @+1 {{expects features as '+name' or '-name' separated by commas, found 'avx2'}}
module attributes {falcon.target = #falcon.cpu_target<triple = "x86_64-pc-linux-gnu", cpu = "x86-64-v3", features = "avx2", vector_bits = 256, vector_registers = 16, threads = 2>} {
}

// -----

// expected-error @+1 {{expects threads in [1, 1024], found 0}}
func.func @no_threads() attributes {falcon.lowering_config = #falcon.lowering_config<threads = 0>} {
  return
}

// -----

// expected-error @+1 {{expects register_tile as [rows, cols, depth], found 2 sizes}}
func.func @short_tile() attributes {falcon.lowering_config = #falcon.lowering_config<threads = 1, register_tile = [8, 32]>} {
  return
}

// -----

// expected-error @+1 {{expects attention_block as [rows, keys], found 1 sizes}}
func.func @short_attention_block() attributes {falcon.lowering_config = #falcon.lowering_config<threads = 1, attention_block = [8]>} {
  return
}

// -----

// expected-error @+1 {{expects attention_block rows and keys in [1, 4096], found [64, 0]}}
func.func @empty_attention_block() attributes {falcon.lowering_config = #falcon.lowering_config<threads = 1, attention_block = [64, 0]>} {
  return
}

// -----

// expected-error @+1 {{expects 'falcon.lowering_config' to be a #falcon.lowering_config, found 3 : i64}}
func.func @untyped_config() attributes {falcon.lowering_config = 3} {
  return
}

// -----

// expected-error @+1 {{has unknown falcon argument attribute 'falcon.bogus' on argument 0}}
func.func @arg(%a: index {falcon.bogus = "x"}) {
  return
}

// -----

// expected-error @+1 {{expects 'falcon.name' on argument 0 to be a string, found 1 : i64}}
func.func @arg_name(%a: index {falcon.name = 1}) {
  return
}

// -----

// expected-error @+2 {{expects at most one shard: a slice or a gather}}
func.func @two_shards() {
  %0 = falcon.param "w" {encoding = #falcon.weight_encoding<slice = [0, 0, 2], gather = [0, 1]>} : tensor<2x8xf32>
  return
}

// -----

// expected-error @+2 {{expects permutation to be a permutation of [0, 2)}}
func.func @bad_permutation() {
  %0 = falcon.param "w" {encoding = #falcon.weight_encoding<permutation = [1, 1]>} : tensor<8x8xf32>
  return
}

// -----

// expected-error @+2 {{expects group_size > 0 exactly when quantized}}
func.func @quantized_without_groups() {
  %0 = falcon.param "w" {encoding = #falcon.weight_encoding<quantization = int8>} : tensor<8x8xi8>
  return
}

// -----

// expected-error @+2 {{expects pack in [1, 1] values per byte for int8 weights, found 2}}
func.func @int8_packed() {
  %0 = falcon.param "w" {encoding = #falcon.weight_encoding<quantization = int8, group_size = 32, pack = 2>} : tensor<8x8xi8>
  return
}

// -----

// expected-error @+2 {{expects slice as [dim, begin, size] with size >= 1}}
func.func @empty_slice() {
  %0 = falcon.param "w" {encoding = #falcon.weight_encoding<slice = [0, 0, 0]>} : tensor<8x8xf32>
  return
}

// -----

// The model config is typed: a plain dictionary is refused ...
// expected-error @+1 {{expects 'falcon.config' to be a #falcon.model_config on a module}}
module attributes {falcon.config = {num_hidden_layers = 2 : i64}} {
}

// -----

// ... and so are impossible head counts.
// expected-error @+1 {{expects num_attention_heads (71) to be a multiple of num_kv_heads (2)}}
module attributes {falcon.config = #falcon.model_config<vocab_size = 16, hidden_size = 8, num_hidden_layers = 2, num_attention_heads = 71, num_kv_heads = 2, head_dim = 4, ffn_hidden_size = 32, qkv_layout = #falcon.qkv_layout<grouped>, parallel_attn = true, layer_norms_per_block = 2, alibi = false, bias = false, tie_word_embeddings = true, layer_norm_epsilon = 1.0e-05 : f64, max_position_embeddings = 2048>} {
}
