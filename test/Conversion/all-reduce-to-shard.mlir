// RUN: falcon-opt %s --convert-falcon-to-linalg --split-input-file | FileCheck %s

// falcon.all_reduce becomes upstream's shard.all_reduce over the tensor axis
// of the plan's grid (declared when the module has none), then one add per
// row-parallel bias.
// CHECK: shard.grid @falcon_plan(shape = 1x3)
// CHECK-LABEL: func.func @with_bias(
// CHECK-SAME: %[[X:.*]]: tensor<?x?x8xf32>, %[[B:.*]]: tensor<8xbf16>
// CHECK: %[[SUM:.*]] = shard.all_reduce %[[X]] on @falcon_plan grid_axes = [1] : tensor<?x?x8xf32> -> tensor<?x?x8xf32>
// CHECK: linalg.generic {{.*}} ins(%[[SUM]], %[[B]] : tensor<?x?x8xf32>, tensor<8xbf16>)
// CHECK: arith.extf
// CHECK: arith.addf
func.func @with_bias(%x: tensor<?x?x8xf32>, %b: tensor<8xbf16>) -> tensor<?x?x8xf32> {
  %0 = falcon.all_reduce %x bias(%b : tensor<8xbf16>) {group_size = 3 : i64} : tensor<?x?x8xf32>
  return %0 : tensor<?x?x8xf32>
}

// -----

// The grid falcon-shard declared (pp 2 x tp 2) is the one used.
// CHECK: shard.grid @falcon_plan(shape = 2x2)
// CHECK-NOT: shard.grid
// CHECK-LABEL: func.func @no_bias(
// CHECK: shard.all_reduce %{{.*}} on @falcon_plan grid_axes = [1]
// CHECK-NOT: linalg.generic
module {
  shard.grid @falcon_plan(shape = 2x2)
  func.func @no_bias(%x: tensor<?x?x8xf32>) -> tensor<?x?x8xf32> {
    %0 = falcon.all_reduce %x {group_size = 2 : i64} : tensor<?x?x8xf32>
    return %0 : tensor<?x?x8xf32>
  }
}
