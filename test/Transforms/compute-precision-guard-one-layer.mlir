// RUN: falcon-opt %s --falcon-compute-precision='dtype=f16 guard=true' --verify-diagnostics

// One layer: its loop is folded away, and its projections would share the LM
// head's guard entry.
// expected-error @+1 {{falcon-compute-precision: the guard needs two or more layers}}
func.func @forward(%x: tensor<?x?x64xf32>, %cache: tensor<1x?x1x?x8xf32> {falcon.name = "key_cache"}) -> tensor<?x?x64xf32> {
  return %x : tensor<?x?x64xf32>
}
