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
