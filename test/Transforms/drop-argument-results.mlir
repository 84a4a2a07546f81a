// RUN: falcon-opt %s --falcon-drop-argument-results | FileCheck %s

// CHECK-LABEL: func.func @forward
// CHECK-SAME: (%{{.*}}: memref<4xf32>, %{{.*}}: memref<8xf32>) {
// CHECK-NEXT: return{{$}}
func.func @forward(%cache: memref<4xf32>, %b: memref<8xf32>) -> (memref<4xf32>, memref<8xf32>) {
  return %cache, %b : memref<4xf32>, memref<8xf32>
}

// Results that are not arguments stay.
// CHECK-LABEL: func.func @mixed
// CHECK-SAME: (%{{.*}}: memref<4xf32>) -> memref<2xf32>
// CHECK: %[[A:.*]] = memref.alloc
// CHECK: return %[[A]] : memref<2xf32>
func.func @mixed(%cache: memref<4xf32>) -> (memref<4xf32>, memref<2xf32>) {
  %0 = memref.alloc() : memref<2xf32>
  return %cache, %0 : memref<4xf32>, memref<2xf32>
}
