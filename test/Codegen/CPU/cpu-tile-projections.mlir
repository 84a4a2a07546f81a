// RUN: falcon-opt %s --pass-pipeline='builtin.module(func.func(falcon-cpu-tile-projections,canonicalize))' | FileCheck %s
// RUN: sed 's/threads = 2/threads = 1/' %s | falcon-opt --pass-pipeline='builtin.module(func.func(falcon-cpu-tile-projections))' | FileCheck %s --check-prefix=SERIAL
// RUN: sed 's/threads = 2/threads = 3/' %s | falcon-opt --pass-pipeline='builtin.module(func.func(falcon-cpu-tile-projections))' | FileCheck %s --check-prefix=THREE
// RUN: falcon-opt %s --pass-pipeline='builtin.module(func.func(falcon-cpu-tile-projections,canonicalize))' --falcon-decode-streamed-rows=2 | FileCheck %s --check-prefix=STREAM
// RUN: sed 's/register_tile = \[4,/register_tile = [0,/' %s | not falcon-opt --pass-pipeline='builtin.module(func.func(falcon-cpu-tile-projections))' 2>&1 | FileCheck %s --check-prefix=BAD

#x = affine_map<(d0, d1, d2, d3) -> (d0, d2, d1)>
#w = affine_map<(d0, d1, d2, d3) -> (d1, d3)>
#y = affine_map<(d0, d1, d2, d3) -> (d0, d2, d3)>

// One function serves every sequence length: 4 rows or more take the
// register-tiled path, fewer the split-K path.
// CHECK-LABEL: func.func @projection
// CHECK-SAME: %[[X:[^:]*]]: tensor<?x?x8xf32>, %[[W:[^:]*]]: tensor<8x80xf32>
// CHECK-DAG: %[[C4:.*]] = arith.constant 4 : index
// CHECK-DAG: %[[SEQ:.*]] = tensor.dim %[[X]], %c1
// CHECK: %[[PREFILL:.*]] = arith.cmpi sge, %[[SEQ]], %[[C4]]
// CHECK: scf.if %[[PREFILL]]
// Prefill: 80 columns in 2 thread blocks of 48 (a multiple of 16), then
// loops batch, K blocks of 4, column tiles of 16, row tiles of 4 ...
// CHECK:   scf.forall (%{{.*}}) = (0) to (80) step (48)
// CHECK:     scf.for %[[B:.*]] = %c0 to %{{.*}} step %c1
// CHECK:       scf.for %[[K:.*]] = %c0 to %c8 step %c4
// ... whose column and row loops are peeled: the main loops' tiles are static
// and keep the lowering config for the micro-kernels ...
// CHECK:         scf.for %{{.*}} step %c16
// CHECK:           scf.for %{{.*}} step %c4
// CHECK:             linalg.generic {{.*}} ins(%{{.*}}, %{{.*}} : tensor<1x4x4xf32>, tensor<4x16xf32>) outs(%{{.*}} : tensor<1x4x16xf32>) attrs = {falcon.lowering_config = #falcon.lowering_config<threads = 2, register_tile = [4, 16, 4]>
// ... the last rows (fewer than 4) a tile of dynamic rows, which keeps it too ...
// CHECK:           scf.for
// CHECK:             linalg.generic {{.*}} outs(%{{.*}} : tensor<1x?x16xf32>) attrs = {falcon.lowering_config = #falcon.lowering_config<threads = 2, register_tile = [4, 16, 4]>
// ... and the last columns (80 is not a multiple of 16 per thread) dynamic.
// CHECK:         scf.for
// CHECK:           scf.for
// CHECK:             linalg.generic {{.*}} outs(%{{.*}} : tensor<1x4x?xf32>)
// CHECK:           scf.for
// CHECK:             linalg.generic {{.*}} outs(%{{.*}} : tensor<1x?x?xf32>)
// CHECK:   scf.forall.in_parallel
// Decode: the 8 input features become 2 chunks of 4 (x reshaped, the weight
// indexed 4 * c + k), computed in
// parallel into partials [2, B, S, 80] (chunk outermost), then summed.
// CHECK: } else {
// CHECK-DAG: %[[XE:.*]] = tensor.expand_shape %[[X]] {{\[\[}}0], [1], [2, 3]] {{.*}} into tensor<?x?x2x4xf32>
// CHECK: %[[PARTIAL:.*]] = scf.forall (%[[C:.*]]) in (2) shared_outs(%{{.*}} = %{{.*}}) -> (tensor<2x?x?x80xf32>)
// CHECK:   linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "reduction", "parallel", "parallel"]
// CHECK:   scf.forall.in_parallel
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%[[PARTIAL]] : tensor<2x?x?x80xf32>)
// CHECK:   arith.addf

// Decode streams weight rows 2 at a time (8 by default; 8 does not divide
// these chunks of 4): each chunk's K loop steps by 2 and the generic's
// reduction over those 2 rows is its innermost loop, inside the columns.
// STREAM: } else {
// STREAM: scf.forall (%{{.*}}) in (2)
// STREAM:   scf.for %{{.*}} = %c0 to %c4 step %c2
// STREAM:     linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]} ins(%{{.*}}, %{{.*}} : tensor<?x?x1x2xf32>, tensor<2x80xf32>) outs(%{{.*}} : tensor<1x?x?x80xf32>)

// Without threads: no scf.forall on either path.
// SERIAL-LABEL: func.func @projection
// SERIAL-NOT: scf.forall
// SERIAL: scf.if
// SERIAL: scf.for %{{.*}} step %c1
// SERIAL: } else {
// SERIAL-NEXT: linalg.generic {{.*}} iterator_types = ["parallel", "reduction", "parallel", "parallel"]
// SERIAL-NOT: scf.forall

// 3 threads requested, 8 input features: decode splits them into the most
// equal blocks up to 3 that divide 8, i.e. 2 blocks of 4.
// THREE: } else {
// THREE: tensor.expand_shape {{.*}} into tensor<?x?x2x4xf32>
// THREE: scf.forall (%{{.*}}) in (2)

// BAD: expects register_tile rows in [1, 64], cols in [1, 1024] and depth in [1, 1048576]
func.func @projection(%x: tensor<?x?x8xf32>, %w: tensor<8x80xf32>, %init: tensor<?x?x80xf32>) -> tensor<?x?x80xf32> {
  %0 = linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "reduction", "parallel", "parallel"]}
      ins(%x, %w : tensor<?x?x8xf32>, tensor<8x80xf32>) outs(%init : tensor<?x?x80xf32>) attrs = {falcon.lowering_config = #falcon.lowering_config<threads = 2, register_tile = [4, 16, 4]>} {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %m = arith.mulf %a, %b : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<?x?x80xf32>
  return %0 : tensor<?x?x80xf32>
}

// A quantized weight: int8 codes [64, 80], an f16 scale per 16 inputs, and
// the dequantizing generic the projection reads. Both paths fuse it into the
// projection (the weight is never dequantized whole): prefill's K blocks of
// 4 grow to 16 (whole groups), and decode's split-K chunks of 32 inputs hold
// whole groups, the scales indexed (32 * c + k) / 16.
// CHECK-LABEL: func.func @quantized
// CHECK-NOT: tensor<64x80xf32>
// CHECK: scf.if
// CHECK:   scf.forall
// CHECK:     scf.for %{{.*}} = %c0 to %c64 step %c16
// CHECK:             linalg.generic {{.*}} ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<1x4x16xf32>, tensor<16x16xi8>, tensor<1x16xf16>)
// CHECK-SAME:            falcon.lowering_config
// CHECK: } else {
// CHECK:   scf.forall (%{{.*}}) in (2) {{.*}} -> (tensor<2x?x?x80xf32>)
// Each chunk streams its codes 8 rows at a time (one group's scale row).
// CHECK:     scf.for %{{.*}} = %c0 to %c32 step %c8
// CHECK:       linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]} ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<?x?x1x8xf32>, tensor<8x80xi8>, tensor<1x80xf16>)
#codes = affine_map<(d0, d1) -> (d0, d1)>
#scales = affine_map<(d0, d1) -> (d0 floordiv 16, d1)>
func.func @quantized(%x: tensor<?x?x64xf32>, %codes: tensor<64x80xi8>, %scales: tensor<4x80xf16>, %init: tensor<?x?x80xf32>) -> tensor<?x?x80xf32> {
  %empty = tensor.empty() : tensor<64x80xf32>
  %w = linalg.generic {indexing_maps = [#codes, #scales, #codes], iterator_types = ["parallel", "parallel"]}
      ins(%codes, %scales : tensor<64x80xi8>, tensor<4x80xf16>) outs(%empty : tensor<64x80xf32>) {
  ^bb0(%c: i8, %s: f16, %out: f32):
    %v = arith.sitofp %c : i8 to f32
    %e = arith.extf %s : f16 to f32
    %d = arith.mulf %v, %e : f32
    linalg.yield %d : f32
  } -> tensor<64x80xf32>
  %0 = linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "reduction", "parallel", "parallel"]}
      ins(%x, %w : tensor<?x?x64xf32>, tensor<64x80xf32>) outs(%init : tensor<?x?x80xf32>) attrs = {falcon.lowering_config = #falcon.lowering_config<threads = 2, register_tile = [4, 16, 4]>} {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %m = arith.mulf %a, %b : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<?x?x80xf32>
  return %0 : tensor<?x?x80xf32>
}
