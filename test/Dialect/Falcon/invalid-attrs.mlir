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
