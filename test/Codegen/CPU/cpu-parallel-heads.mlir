// RUN: falcon-opt %s --pass-pipeline='builtin.module(func.func(falcon-cpu-parallel-heads))' | FileCheck %s
// RUN: sed 's/threads = 2/threads = 1/' %s | falcon-opt --pass-pipeline='builtin.module(func.func(falcon-cpu-parallel-heads))' | FileCheck %s --check-prefix=SERIAL
// RUN: sed 's/threads = 2/threads = 8/' %s | falcon-opt --pass-pipeline='builtin.module(func.func(falcon-cpu-parallel-heads))' | FileCheck %s --check-prefix=EIGHT

#in = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
#row = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>

// A row maximum over keys (loops b, g, i, t) configured to run its 5 heads
// (dim 1) in parallel: 2 blocks of 3 heads (the last one has 2).
// CHECK-LABEL: func.func @row_max
// CHECK: scf.forall (%[[H:.*]]) = (0) to (5) step (3) shared_outs(%{{.*}} = %{{.*}}) -> (tensor<?x5x?xf32>)
// CHECK:   %[[N:.*]] = affine.min
// CHECK:   linalg.generic {{.*}} ins(%{{.*}} : tensor<?x?x?x?xf32>) outs(%{{.*}} : tensor<?x?x?xf32>)
// CHECK:     arith.maximumf
// CHECK:   scf.forall.in_parallel
// SERIAL-LABEL: func.func @row_max
// SERIAL-NOT: scf.forall
// 8 threads for 5 heads: blocks of one head.
// EIGHT: scf.forall (%{{.*}}) in (5)
func.func @row_max(%s: tensor<?x5x?x?xf32>, %init: tensor<?x5x?xf32>) -> tensor<?x5x?xf32> {
  %0 = linalg.generic {indexing_maps = [#in, #row], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%s : tensor<?x5x?x?xf32>) outs(%init : tensor<?x5x?xf32>) attrs = {falcon.lowering_config = #falcon.lowering_config<threads = 2, thread_dim = 1>} {
  ^bb0(%a: f32, %m: f32):
    %r = arith.maximumf %a, %m : f32
    linalg.yield %r : f32
  } -> tensor<?x5x?xf32>
  return %0 : tensor<?x5x?xf32>
}
