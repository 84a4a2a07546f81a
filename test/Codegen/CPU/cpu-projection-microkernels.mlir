// RUN: falcon-opt %s --pass-pipeline='builtin.module(func.func(falcon-cpu-projection-microkernels))' | FileCheck %s

#x = affine_map<(d0, d1, d2, d3) -> (d0, d2, d1)>
#w = affine_map<(d0, d1, d2, d3) -> (d1, d3)>
#y = affine_map<(d0, d1, d2, d3) -> (d0, d2, d3)>

// A static 3 x 16 tile: three accumulator vectors read from y, one weight row
// loaded per input feature and three FMAs with the broadcast inputs, then the
// accumulators written back.
// CHECK-LABEL: func.func @tile
// CHECK-SAME: %[[X:[^:]*]]: tensor<1x3x?xf32>, %[[W:[^:]*]]: tensor<?x16xf32>, %[[Y:[^:]*]]: tensor<1x3x16xf32>
// CHECK: %[[C0:.*]] = arith.constant 0 : index
// CHECK: %[[A0:.*]] = vector.transfer_read %[[Y]][%[[C0]], %[[C0]], %[[C0]]]{{.*}}in_bounds = [true]{{.*}} : tensor<1x3x16xf32>, vector<16xf32>
// CHECK: %[[A1:.*]] = vector.transfer_read %[[Y]]
// CHECK: %[[C2:.*]] = arith.constant 2 : index
// CHECK: %[[A2:.*]] = vector.transfer_read %[[Y]][%[[C0]], %[[C2]], %[[C0]]]
// CHECK: %[[K:.*]] = tensor.dim %[[X]], %{{.*}}
// CHECK: %[[ACC:.*]]:3 = scf.for %[[I:.*]] = %[[C0]] to %[[K]] step %{{.*}} iter_args(%[[R0:.*]] = %[[A0]], %[[R1:.*]] = %[[A1]], %[[R2:.*]] = %[[A2]])
// CHECK:   %[[WROW:.*]] = vector.transfer_read %[[W]][%[[I]], %[[C0]]]{{.*}} : tensor<?x16xf32>, vector<16xf32>
// CHECK:   %[[X0:.*]] = tensor.extract %[[X]][%[[C0]], %[[C0]], %[[I]]]
// CHECK:   %[[B0:.*]] = vector.broadcast %[[X0]] : f32 to vector<16xf32>
// CHECK:   %[[F0:.*]] = vector.fma %[[B0]], %[[WROW]], %[[R0]] : vector<16xf32>
// CHECK:   vector.fma
// CHECK:   %[[X2:.*]] = tensor.extract %[[X]][%[[C0]], %[[C2]], %[[I]]]
// CHECK:   %[[F2:.*]] = vector.fma %{{.*}}, %[[WROW]], %[[R2]]
// CHECK:   scf.yield %[[F0]], %{{.*}}, %[[F2]]
// CHECK: %[[W0:.*]] = vector.transfer_write %[[ACC]]#0, %[[Y]][%[[C0]], %[[C0]], %[[C0]]]
// CHECK: %[[W1:.*]] = vector.transfer_write %[[ACC]]#1, %[[W0]]
// CHECK: %[[W2:.*]] = vector.transfer_write %[[ACC]]#2, %[[W1]][%[[C0]], %[[C2]], %[[C0]]]
// CHECK: return %[[W2]]
// CHECK-NOT: linalg.generic
func.func @tile(%x: tensor<1x3x?xf32>, %w: tensor<?x16xf32>, %init: tensor<1x3x16xf32>) -> tensor<1x3x16xf32> {
  %0 = linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "reduction", "parallel", "parallel"]}
      ins(%x, %w : tensor<1x3x?xf32>, tensor<?x16xf32>) outs(%init : tensor<1x3x16xf32>) attrs = {falcon.lowering_config = #falcon.lowering_config<threads = 1, register_tile = [8, 16, 8]>} {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %m = arith.mulf %a, %b : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<1x3x16xf32>
  return %0 : tensor<1x3x16xf32>
}

// The last rows of a sequence (a dynamic count, at most 4): a 4-row tile whose
// rows past the count repeat the last row; any other count (not produced by
// falcon-cpu-tile-projections) runs the generic as it was.
// CHECK-LABEL: func.func @remainder
// CHECK-SAME: %[[X:[^:]*]]: tensor<1x?x8xf32>, %[[W:[^:]*]]: tensor<8x16xf32>, %[[Y:[^:]*]]: tensor<1x?x16xf32>
// CHECK: %[[C1:.*]] = arith.constant 1 : index
// CHECK: %[[N:.*]] = tensor.dim %[[Y]], %[[C1]]
// CHECK: %[[GE:.*]] = arith.cmpi sge, %[[N]], %[[C1]]
// CHECK: %[[C4:.*]] = arith.constant 4 : index
// CHECK: %[[LE:.*]] = arith.cmpi sle, %[[N]], %[[C4]]
// CHECK: %[[FITS:.*]] = arith.andi %[[GE]], %[[LE]]
// CHECK: scf.if %[[FITS]]
// CHECK:   %[[LAST:.*]] = arith.subi %[[N]], %[[C1]]
// CHECK:   %[[R3:.*]] = arith.minui %{{.*}}, %[[LAST]]
// CHECK:   vector.transfer_read %[[Y]]
// CHECK:   scf.for {{.*}} -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>)
// CHECK:     tensor.extract %[[X]][%{{.*}}, %[[R3]], %{{.*}}]
// CHECK-COUNT-4: vector.transfer_write
// CHECK: } else {
// CHECK:   linalg.generic
// CHECK-NOT: falcon.lowering_config
// CHECK:   arith.mulf
func.func @remainder(%x: tensor<1x?x8xf32>, %w: tensor<8x16xf32>, %init: tensor<1x?x16xf32>) -> tensor<1x?x16xf32> {
  %0 = linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "reduction", "parallel", "parallel"]}
      ins(%x, %w : tensor<1x?x8xf32>, tensor<8x16xf32>) outs(%init : tensor<1x?x16xf32>) attrs = {falcon.lowering_config = #falcon.lowering_config<threads = 1, register_tile = [4, 16, 8]>} {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %m = arith.mulf %a, %b : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<1x?x16xf32>
  return %0 : tensor<1x?x16xf32>
}

// bf16 weights (extended in the body): the weight row is read as bf16 and
// extended in registers.
// CHECK-LABEL: func.func @bf16_weights
// CHECK: scf.for
// CHECK:   %[[WB:.*]] = vector.transfer_read %{{.*}} : tensor<8x16xbf16>, vector<16xbf16>
// CHECK:   %[[WF:.*]] = arith.extf %[[WB]] : vector<16xbf16> to vector<16xf32>
// CHECK:   vector.fma %{{.*}}, %[[WF]], %{{.*}} : vector<16xf32>
// CHECK-NOT: linalg.generic
func.func @bf16_weights(%x: tensor<1x2x8xf32>, %w: tensor<8x16xbf16>, %init: tensor<1x2x16xf32>) -> tensor<1x2x16xf32> {
  %0 = linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "reduction", "parallel", "parallel"]}
      ins(%x, %w : tensor<1x2x8xf32>, tensor<8x16xbf16>) outs(%init : tensor<1x2x16xf32>) attrs = {falcon.lowering_config = #falcon.lowering_config<threads = 1, register_tile = [8, 16, 8]>} {
  ^bb0(%a: f32, %b: bf16, %acc: f32):
    %e = arith.extf %b : bf16 to f32
    %m = arith.mulf %a, %e : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<1x2x16xf32>
  return %0 : tensor<1x2x16xf32>
}

// Dynamic columns (the last columns of a projection): left alone.
// CHECK-LABEL: func.func @dynamic_columns
// CHECK-NOT: vector.
// CHECK: linalg.generic
func.func @dynamic_columns(%x: tensor<1x4x8xf32>, %w: tensor<8x?xf32>, %init: tensor<1x4x?xf32>) -> tensor<1x4x?xf32> {
  %0 = linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "reduction", "parallel", "parallel"]}
      ins(%x, %w : tensor<1x4x8xf32>, tensor<8x?xf32>) outs(%init : tensor<1x4x?xf32>) attrs = {falcon.lowering_config = #falcon.lowering_config<threads = 1, register_tile = [4, 16, 8]>} {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %m = arith.mulf %a, %b : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<1x4x?xf32>
  return %0 : tensor<1x4x?xf32>
}

// Untagged, or not a multiply-accumulate: left alone.
// CHECK-LABEL: func.func @untagged
// CHECK-NOT: vector.
// CHECK: linalg.generic
// CHECK-LABEL: func.func @not_mac
// CHECK-NOT: vector.
// CHECK: linalg.generic
// CHECK: arith.maximumf
func.func @untagged(%x: tensor<1x3x8xf32>, %w: tensor<8x16xf32>, %init: tensor<1x3x16xf32>) -> tensor<1x3x16xf32> {
  %0 = linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "reduction", "parallel", "parallel"]}
      ins(%x, %w : tensor<1x3x8xf32>, tensor<8x16xf32>) outs(%init : tensor<1x3x16xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %m = arith.mulf %a, %b : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<1x3x16xf32>
  return %0 : tensor<1x3x16xf32>
}
func.func @not_mac(%x: tensor<1x3x8xf32>, %w: tensor<8x16xf32>, %init: tensor<1x3x16xf32>) -> tensor<1x3x16xf32> {
  %0 = linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "reduction", "parallel", "parallel"]}
      ins(%x, %w : tensor<1x3x8xf32>, tensor<8x16xf32>) outs(%init : tensor<1x3x16xf32>) attrs = {falcon.lowering_config = #falcon.lowering_config<threads = 1, register_tile = [8, 16, 8]>} {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %m = arith.mulf %a, %b : f32
    %s = arith.maximumf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<1x3x16xf32>
  return %0 : tensor<1x3x16xf32>
}

// A quantized weight (int4 codes two per byte along k, an f16 scale per 16
// inputs), dequantized in registers: each k reads a row of codes at k / 2 and
// a row of scales at k / 16, and evaluates the body's dequantization on
// vectors (the nibble's shift, a scalar of k, broadcast).
#codes = affine_map<(d0, d1, d2, d3) -> (d1 floordiv 2, d3)>
#scales = affine_map<(d0, d1, d2, d3) -> (d1 floordiv 16, d3)>
// CHECK-LABEL: func.func @quantized_tile
// CHECK-SAME: %[[X:[^:]*]]: tensor<1x2x32xf32>, %[[CODES:[^:]*]]: tensor<16x16xi8>, %[[SCALES:[^:]*]]: tensor<2x16xf16>
// CHECK: scf.for %[[I:[^ ]*]] =
// CHECK-DAG: %[[HALF:.*]] = affine.apply #{{.*}}(%[[I]])
// CHECK-DAG: %[[CROW:.*]] = vector.transfer_read %[[CODES]][%[[HALF]], %{{.*}}]{{.*}} : tensor<16x16xi8>, vector<16xi8>
// CHECK-DAG: %[[GROUP:.*]] = affine.apply #{{.*}}(%[[I]])
// CHECK-DAG: %[[SROW:.*]] = vector.transfer_read %[[SCALES]][%[[GROUP]], %{{.*}}]{{.*}} : tensor<2x16xf16>, vector<16xf16>
// CHECK:   arith.remui %[[I]], %{{.*}} : index
// CHECK:   %[[SHIFT:.*]] = vector.broadcast %{{.*}} : i8 to vector<16xi8>
// CHECK:   arith.shli %[[CROW]], %[[SHIFT]] : vector<16xi8>
// CHECK:   arith.shrsi %{{.*}} : vector<16xi8>
// CHECK:   %[[VALUE:.*]] = arith.sitofp %{{.*}} : vector<16xi8> to vector<16xf32>
// CHECK:   %[[SCALE:.*]] = arith.extf %[[SROW]] : vector<16xf16> to vector<16xf32>
// CHECK:   %[[WROW:.*]] = arith.mulf %[[VALUE]], %[[SCALE]] : vector<16xf32>
// CHECK:   vector.fma %{{.*}}, %[[WROW]], %{{.*}} : vector<16xf32>
// CHECK:   vector.fma %{{.*}}, %[[WROW]], %{{.*}} : vector<16xf32>
// CHECK-NOT: linalg.generic
func.func @quantized_tile(%x: tensor<1x2x32xf32>, %codes: tensor<16x16xi8>, %scales: tensor<2x16xf16>, %init: tensor<1x2x16xf32>) -> tensor<1x2x16xf32> {
  %0 = linalg.generic {indexing_maps = [#x, #codes, #scales, #y], iterator_types = ["parallel", "reduction", "parallel", "parallel"]}
      ins(%x, %codes, %scales : tensor<1x2x32xf32>, tensor<16x16xi8>, tensor<2x16xf16>) outs(%init : tensor<1x2x16xf32>) attrs = {falcon.lowering_config = #falcon.lowering_config<threads = 1, register_tile = [2, 16, 32]>} {
  ^bb0(%a: f32, %c: i8, %s: f16, %acc: f32):
    %k = linalg.index 1 : index
    %c2 = arith.constant 2 : index
    %odd = arith.remui %k, %c2 : index
    %oddi = arith.index_cast %odd : index to i8
    %c4 = arith.constant 4 : i8
    %times = arith.muli %oddi, %c4 : i8
    %left = arith.subi %c4, %times : i8
    %shl = arith.shli %c, %left : i8
    %code = arith.shrsi %shl, %c4 : i8
    %value = arith.sitofp %code : i8 to f32
    %scale = arith.extf %s : f16 to f32
    %w = arith.mulf %value, %scale : f32
    %m = arith.mulf %a, %w : f32
    %r = arith.addf %acc, %m : f32
    linalg.yield %r : f32
  } -> tensor<1x2x16xf32>
  return %0 : tensor<1x2x16xf32>
}

// bf16 activations and weight with bf16_dot_products: 16-lane f32
// accumulators (two per row of this 2 x 32 tile), a loop over input pairs
// that interleaves weight rows k and k + 1 for each 16 columns, broadcasts
// the rows' activation pairs as one 32-bit lane and sums with
// x86vector.avx512.dot (vdpbf16ps), then a loop over an odd last input with
// FMAs of the extended operands.
// CHECK-LABEL: func.func @bf16_pairs
// CHECK-SAME: %[[X:[^:]*]]: tensor<1x2x?xbf16>, %[[W:[^:]*]]: tensor<?x32xbf16>
// CHECK-COUNT-4: vector.transfer_read %{{.*}} : tensor<1x2x32xf32>, vector<16xf32>
// CHECK: %[[K:.*]] = tensor.dim %[[X]]
// CHECK: %[[ODD:.*]] = arith.remui %[[K]], %[[C2:.*]] : index
// CHECK: %[[PAIRS:.*]] = arith.subi %[[K]], %[[ODD]]
// CHECK: %[[ACC:.*]]:4 = scf.for %[[I:.*]] = %{{.*}} to %[[PAIRS]] step %[[C2]]
// CHECK:   %[[I1:.*]] = arith.addi %[[I]], %{{.*}}
// CHECK:   %[[EVEN:.*]] = vector.transfer_read %[[W]][%[[I]], %{{.*}}]{{.*}} : tensor<?x32xbf16>, vector<32xbf16>
// CHECK:   %[[ODDROW:.*]] = vector.transfer_read %[[W]][%[[I1]], %{{.*}}]{{.*}} : tensor<?x32xbf16>, vector<32xbf16>
// CHECK:   %[[E0:.*]] = vector.extract_strided_slice %[[EVEN]] {offsets = [0], sizes = [16], strides = [1]}
// CHECK:   %[[O0:.*]] = vector.extract_strided_slice %[[ODDROW]] {offsets = [0], sizes = [16], strides = [1]}
// CHECK:   %[[P0:.*]] = vector.interleave %[[E0]], %[[O0]] : vector<16xbf16> -> vector<32xbf16>
// CHECK:   vector.interleave
// CHECK:   %[[PAIR:.*]] = vector.transfer_read %[[X]][%{{.*}}, %{{.*}}, %[[I]]]{{.*}} : tensor<1x2x?xbf16>, vector<2xbf16>
// CHECK:   vector.bitcast %[[PAIR]] : vector<2xbf16> to vector<1xi32>
// CHECK:   %[[SPLAT:.*]] = vector.bitcast %{{.*}} : vector<16xi32> to vector<32xbf16>
// CHECK:   x86vector.avx512.dot %{{.*}}, %[[P0]], %[[SPLAT]] : vector<32xbf16> -> vector<16xf32>
// CHECK-COUNT-3: x86vector.avx512.dot
// CHECK: scf.for %{{.*}} = %[[PAIRS]] to %[[K]] step %{{.*}} iter_args
// CHECK:   arith.extf %{{.*}} : vector<32xbf16> to vector<32xf32>
// CHECK:   arith.extf %{{.*}} : bf16 to f32
// CHECK-COUNT-4: vector.fma
// CHECK-COUNT-4: vector.transfer_write
// CHECK-NOT: linalg.generic
func.func @bf16_pairs(%x: tensor<1x2x?xbf16>, %w: tensor<?x32xbf16>, %init: tensor<1x2x32xf32>) -> tensor<1x2x32xf32> {
  %0 = linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "reduction", "parallel", "parallel"]}
      ins(%x, %w : tensor<1x2x?xbf16>, tensor<?x32xbf16>) outs(%init : tensor<1x2x32xf32>) attrs = {falcon.lowering_config = #falcon.lowering_config<threads = 1, register_tile = [8, 32, 8], bf16_dot_products = true>} {
  ^bb0(%a: bf16, %b: bf16, %acc: f32):
    %ea = arith.extf %a : bf16 to f32
    %eb = arith.extf %b : bf16 to f32
    %m = arith.mulf %ea, %eb : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<1x2x32xf32>
  return %0 : tensor<1x2x32xf32>
}
