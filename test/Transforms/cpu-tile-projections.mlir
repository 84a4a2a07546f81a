// RUN: falcon-opt %s --pass-pipeline='builtin.module(func.func(falcon-cpu-tile-projections{parallel-chunks=2 row-tile=4}))' | FileCheck %s
// RUN: falcon-opt %s --pass-pipeline='builtin.module(func.func(falcon-cpu-tile-projections{parallel-chunks=1 row-tile=4}))' | FileCheck %s --check-prefix=SERIAL

#x = affine_map<(d0, d1, d2, d3) -> (d0, d2, d1)>
#w = affine_map<(d0, d1, d2, d3) -> (d1, d3)>
#y = affine_map<(d0, d1, d2, d3) -> (d0, d2, d3)>

// Split-K: the 8 input features become 2 chunks of 4 weight rows, computed
// in parallel into partials [2, B, S, 16] (chunk outermost), then summed.
// CHECK-LABEL: func.func @projection
// CHECK-SAME: %[[X:[^:]*]]: tensor<?x?x8xf32>, %[[W:[^:]*]]: tensor<8x16xf32>
// CHECK-DAG: %[[XE:.*]] = tensor.expand_shape %[[X]] {{\[\[}}0], [1], [2, 3]] {{.*}} into tensor<?x?x2x4xf32>
// CHECK-DAG: %[[WE:.*]] = tensor.expand_shape %[[W]] {{\[\[}}0, 1], [2]] {{.*}} into tensor<2x4x16xf32>
// CHECK: %[[PARTIAL:.*]] = scf.forall (%[[C:.*]]) in (2) shared_outs(%{{.*}} = %{{.*}}) -> (tensor<2x?x?x16xf32>)
// CHECK:   scf.for %{{.*}} = %{{.*}} to %{{.*}} step %c4
// CHECK:     linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "reduction", "parallel", "parallel"]
// CHECK:   scf.forall.in_parallel
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%[[PARTIAL]] : tensor<2x?x?x16xf32>)
// CHECK:   arith.addf

// Without threads: only the row tiles.
// SERIAL-LABEL: func.func @projection
// SERIAL-NOT: scf.forall
// SERIAL: scf.for %{{.*}} step %c4
// SERIAL:   linalg.generic {{.*}} iterator_types = ["parallel", "reduction", "parallel", "parallel"]
func.func @projection(%x: tensor<?x?x8xf32>, %w: tensor<8x16xf32>, %init: tensor<?x?x16xf32>) -> tensor<?x?x16xf32> {
  %0 = linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "reduction", "parallel", "parallel"]}
      ins(%x, %w : tensor<?x?x8xf32>, tensor<8x16xf32>) outs(%init : tensor<?x?x16xf32>) attrs = {falcon.projection} {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %m = arith.mulf %a, %b : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<?x?x16xf32>
  return %0 : tensor<?x?x16xf32>
}
