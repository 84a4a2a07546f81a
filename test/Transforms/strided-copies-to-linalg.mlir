// RUN: falcon-opt %s --pass-pipeline='builtin.module(func.func(falcon-strided-copies-to-linalg))' | FileCheck %s

// CHECK-LABEL: func.func @copies
func.func @copies(%a: memref<4x4xf32>, %b: memref<4x4xf32>, %c: memref<2x4xf32>) {
  // Contiguous copies stay memref.copy (they lower to memcpy).
  // CHECK: memref.copy %{{.*}}, %{{.*}} : memref<4x4xf32> to memref<4x4xf32>
  memref.copy %a, %b : memref<4x4xf32> to memref<4x4xf32>
  // A copy into a strided view becomes linalg.copy (plain loops).
  // CHECK: %[[VIEW:.*]] = memref.subview
  // CHECK: linalg.copy ins(%{{.*}} : memref<2x4xf32>) outs(%[[VIEW]] : memref<2x4xf32, strided<[4, 1], offset: 4>>)
  %v = memref.subview %a[1, 0] [2, 4] [1, 1] : memref<4x4xf32> to memref<2x4xf32, strided<[4, 1], offset: 4>>
  memref.copy %c, %v : memref<2x4xf32> to memref<2x4xf32, strided<[4, 1], offset: 4>>
  return
}
