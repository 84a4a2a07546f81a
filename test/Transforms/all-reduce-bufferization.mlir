// RUN: falcon-opt %s --one-shot-bufferize="bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map" | FileCheck %s

// shard.all_reduce (sum over the plan grid's tensor axis) sums in place: on
// buffers it is a call of the runtime import on the flattened buffer.
// CHECK: func.func private @falcon_all_reduce_sum_f32(memref<?xf32>)
// CHECK-LABEL: func.func @reduce(
// CHECK-SAME: %[[X:.*]]: memref<?x?x8xf32>
// CHECK: %[[FLAT:.*]] = memref.collapse_shape %[[X]] {{\[\[}}0, 1, 2]] : memref<?x?x8xf32> into memref<?xf32>
// CHECK: call @falcon_all_reduce_sum_f32(%[[FLAT]]) : (memref<?xf32>) -> ()
// CHECK: return %[[X]]
module {
  shard.grid @falcon_plan(shape = 1x2)
  func.func @reduce(%x: tensor<?x?x8xf32>) -> tensor<?x?x8xf32> {
    %0 = shard.all_reduce %x on @falcon_plan grid_axes = [1] : tensor<?x?x8xf32> -> tensor<?x?x8xf32>
    return %0 : tensor<?x?x8xf32>
  }
}
