// RUN: falcon-opt %s --convert-falcon-to-linalg -verify-diagnostics

func.func @rotary_dynamic(%x: tensor<?x?x2x4xf32>, %p: tensor<?x?xi64>) -> tensor<?x?x2x4xf32> {
  // expected-error @+1 {{uses dynamic NTK rotary scaling, which the CPU lowering does not support yet}}
  %0 = falcon.rotary %x, %p {theta = 1.0e+04 : f64, scaling = #falcon.rope_scaling<dynamic>, factor = 2.0 : f64} : (tensor<?x?x2x4xf32>, tensor<?x?xi64>) -> tensor<?x?x2x4xf32>
  return %0 : tensor<?x?x2x4xf32>
}
