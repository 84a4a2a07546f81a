// RUN: falcon-opt %s --split-input-file --falcon-compute-precision='dtype=f16 guard=true' | FileCheck %s
// RUN: not falcon-opt %s --split-input-file --falcon-compute-precision='dtype=bf16 guard=true' 2>&1 | FileCheck %s --check-prefix=BF16

#x = affine_map<(d0, d1, d2, d3) -> (d0, d2, d1)>
#w = affine_map<(d0, d1, d2, d3) -> (d1, d3)>
#y = affine_map<(d0, d1, d2, d3) -> (d0, d2, d3)>

// The entry point gets precision_guard [layers + 1]. A projection in the layer
// loop reads entry %layer, the one after it (the LM head) entry 2: bit 0 picks
// bf16 over f16 for the rounding (f32 values on either grid), and a rounded
// value that is not finite sets bit 1.
// CHECK-LABEL: func.func @forward
// CHECK-SAME: %[[G:[^:]*]]: memref<3xi8> {falcon.name = "precision_guard"}
// CHECK: scf.for %[[L:[^ ]*]] =
// CHECK:   %[[M:.*]] = memref.load %[[G]][%[[L]]] : memref<3xi8>
// CHECK:   %[[B:.*]] = arith.andi %[[M]], %{{.*}} : i8
// CHECK:   %[[F:.*]] = arith.trunci %[[B]] : i8 to i1
// CHECK:   %[[R:.*]] = linalg.generic {{.*}} ins(%{{.*}} : tensor<?x?x64xf32>) outs(%{{.*}} : tensor<?x?x64xf32>)
// CHECK:     %[[BF:.*]] = arith.truncf %{{.*}} : f32 to bf16
// CHECK:     %[[H:.*]] = arith.truncf %{{.*}} : f32 to f16
// CHECK:     arith.select %[[F]]
// CHECK:   %[[ANY:.*]] = linalg.generic {{.*}}iterator_types = ["reduction", "reduction", "reduction"]{{.*}} ins(%[[R]] : tensor<?x?x64xf32>) outs(%{{.*}} : tensor<i1>)
// CHECK:     math.absf
// CHECK:     arith.cmpf olt
// CHECK:   %[[BAD:.*]] = tensor.extract %[[ANY]][] : tensor<i1>
// CHECK:   scf.if %[[BAD]] {
// CHECK:     %[[SET:.*]] = arith.ori %[[M]], %{{.*}} : i8
// CHECK:     memref.store %[[SET]], %[[G]][%[[L]]] : memref<3xi8>
// CHECK:   linalg.generic {{.*}} ins(%[[R]], %{{.*}} : tensor<?x?x64xf32>, tensor<64x64xf32>)
// CHECK: %[[HEAD:.*]] = arith.constant 2 : index
// CHECK: memref.load %[[G]][%[[HEAD]]] : memref<3xi8>
// CHECK: memref.store %{{.*}}, %[[G]][%[[HEAD]]] : memref<3xi8>
// BF16: error: falcon-compute-precision: the guard needs dtype f16 (bf16 has f32's range), found 'bf16'
func.func @forward(%x: tensor<?x?x64xf32>, %cache: tensor<2x?x1x?x8xf32> {falcon.name = "key_cache"},
                   %w: tensor<64x64xf32>, %v: tensor<64x16xf32>, %z: tensor<?x?x16xf32>) -> tensor<?x?x16xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %h = scf.for %layer = %c0 to %c2 step %c1 iter_args(%acc = %x) -> (tensor<?x?x64xf32>) {
    %p = linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "reduction", "parallel", "parallel"]}
        ins(%acc, %w : tensor<?x?x64xf32>, tensor<64x64xf32>) outs(%acc : tensor<?x?x64xf32>) {
    ^bb0(%a: f32, %b: f32, %o: f32):
      %m = arith.mulf %a, %b : f32
      %s = arith.addf %o, %m : f32
      linalg.yield %s : f32
    } -> tensor<?x?x64xf32>
    scf.yield %p : tensor<?x?x64xf32>
  }
  %out = linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "reduction", "parallel", "parallel"]}
      ins(%h, %v : tensor<?x?x64xf32>, tensor<64x16xf32>) outs(%z : tensor<?x?x16xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %m = arith.mulf %a, %b : f32
    %s = arith.addf %o, %m : f32
    linalg.yield %s : f32
  } -> tensor<?x?x16xf32>
  return %out : tensor<?x?x16xf32>
}
