// With `decode_activation_bits = 8`, the decode path of a projection whose
// weight a `falcon.dequantize` generic decodes quantizes each activation row
// to int8 in blocks of min(32, group) inputs and sums vpdpbusd byte dot
// products of the codes with it (CPUInt8Decode.cpp); prefill keeps the f32
// register tile. falcon-cpu-lower-dot-bytes turns falcon.dot_bytes into the
// LLVM intrinsic.
// RUN: falcon-opt %s --pass-pipeline='builtin.module(func.func(falcon-cpu-tile-projections,canonicalize))' | FileCheck %s
// RUN: falcon-opt %s --pass-pipeline='builtin.module(func.func(falcon-cpu-tile-projections,canonicalize))' | FileCheck %s --check-prefix=INT4
// RUN: falcon-opt %s --pass-pipeline='builtin.module(func.func(falcon-cpu-tile-projections,canonicalize))' | FileCheck %s --check-prefix=FALLBACK
// RUN: falcon-opt %s --pass-pipeline='builtin.module(falcon-cpu-attach-target{cpu=znver4},func.func(falcon-cpu-lower-dot-bytes))' | FileCheck %s --check-prefix=LOWER
// RUN: falcon-opt %s --pass-pipeline='builtin.module(falcon-cpu-attach-target{cpu=x86-64-v3},func.func(falcon-cpu-lower-dot-bytes))' | FileCheck %s --check-prefix=AVX2
// RUN: not falcon-opt %s --pass-pipeline='builtin.module(func.func(falcon-cpu-lower-dot-bytes))' 2>&1 | FileCheck %s --check-prefix=NOTARGET

#x = affine_map<(d0, d1, d2, d3) -> (d0, d2, d1)>
#w = affine_map<(d0, d1, d2, d3) -> (d1, d3)>
#y = affine_map<(d0, d1, d2, d3) -> (d0, d2, d3)>
#codes = affine_map<(d0, d1) -> (d0, d1)>
#scales = affine_map<(d0, d1) -> (d0 floordiv 16, d1)>

// int8 symmetric, groups of 16 (so activation blocks of 16: 4 of them on 64
// inputs, 2 per thread), 80 outputs (5 vectors of 16 lanes).
// CHECK-LABEL: func.func @int8
// CHECK: scf.if
// CHECK:   linalg.generic {{.*}} tensor<16x16xi8>
// CHECK: } else {
// The block maxima and code sums [B, S, 4], the codes four to an i32 [B, S, 16].
// CHECK:   linalg.generic {{.*}} ins(%{{.*}} : tensor<?x?x4x16xf32>) outs(%{{.*}} : tensor<?x?x4xf32>)
// CHECK:     math.absf
// CHECK:     arith.maximumf
// CHECK:   linalg.generic {{.*}} ins(%{{.*}}, %{{.*}} : tensor<?x?x4x16xf32>, tensor<?x?x4xf32>) outs(%{{.*}} : tensor<?x?x4xf32>)
// CHECK:     math.roundeven
// CHECK:   linalg.generic {{.*}} ins(%{{.*}} : tensor<?x?x4xf32>) outs(%{{.*}} : tensor<?x?x16xi32>)
// Two threads, each its two blocks of weight rows, into partial sums.
// CHECK:   scf.forall (%[[C:.*]]) in (2) shared_outs(%{{.*}} = %{{.*}}) -> (tensor<2x?x?x80xf32>)
// CHECK:     scf.for %{{.*}} = %{{.*}} to %{{.*}} step %c1
// CHECK:       scf.for
// CHECK:         scf.for
// CHECK:           scf.for %{{.*}} = %c0 to %c5 step %c1
// Four rows of 16 codes transposed into lanes of four bytes, made unsigned,
// four dot products per block (16 inputs).
// CHECK:             vector.transfer_read {{.*}} : tensor<64x80xi8>, vector<16xi8>
// CHECK:             vector.shuffle {{.*}} : vector<32xi8>, vector<32xi8>
// CHECK:             vector.bitcast {{.*}} : vector<64xi8> to vector<16xi32>
// CHECK:             arith.xori
// CHECK:             falcon.dot_bytes
// CHECK:             falcon.dot_bytes
// CHECK:             falcon.dot_bytes
// CHECK:             falcon.dot_bytes
// CHECK-NOT:         falcon.dot_bytes
// The scale of the group times the block's, the zero point's correction.
// CHECK:             arith.sitofp {{.*}} : vector<16xi32> to vector<16xf32>
// CHECK:             vector.fma
// CHECK:             vector.transfer_read {{.*}} : tensor<4x80xf16>, vector<16xf16>
// CHECK:             vector.fma
// CHECK:   tensor.parallel_insert_slice
// The threads' partial sums added.
// CHECK:   linalg.generic {{.*}} ins(%{{.*}} : tensor<2x?x?x80xf32>)
func.func @int8(%x: tensor<?x?x64xf32>, %codes: tensor<64x80xi8>, %scales: tensor<4x80xf16>, %init: tensor<?x?x80xf32>) -> tensor<?x?x80xf32> {
  %empty = tensor.empty() : tensor<64x80xf32>
  %w = linalg.generic {indexing_maps = [#codes, #scales, #codes], iterator_types = ["parallel", "parallel"]}
      ins(%codes, %scales : tensor<64x80xi8>, tensor<4x80xf16>) outs(%empty : tensor<64x80xf32>)
      attrs = {falcon.dequantize = #falcon.weight_encoding<quantization = int8, group_size = 16, pack = 1, symmetric = true>} {
  ^bb0(%c: i8, %s: f16, %out: f32):
    %v = arith.sitofp %c : i8 to f32
    %e = arith.extf %s : f16 to f32
    %d = arith.mulf %v, %e : f32
    linalg.yield %d : f32
  } -> tensor<64x80xf32>
  %0 = linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "reduction", "parallel", "parallel"]}
      ins(%x, %w : tensor<?x?x64xf32>, tensor<64x80xf32>) outs(%init : tensor<?x?x80xf32>) attrs = {falcon.lowering_config = #falcon.lowering_config<threads = 2, register_tile = [4, 16, 4], decode_activation_bits = 8>} {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %m = arith.mulf %a, %b : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<?x?x80xf32>
  return %0 : tensor<?x?x80xf32>
}

// int4 asymmetric: two codes a byte, so four byte rows hold 8 inputs, whose
// low and high nibbles make two dot products; the zero points are read.
// INT4-LABEL: func.func @int4
// INT4: } else {
// INT4:   scf.forall
// INT4:     arith.xori
// INT4:     arith.andi
// INT4:     arith.shrui
// INT4:     arith.andi
// INT4:     falcon.dot_bytes
// INT4:     falcon.dot_bytes
// INT4:     falcon.dot_bytes
// INT4:     falcon.dot_bytes
// INT4-NOT: falcon.dot_bytes
// INT4:     vector.transfer_read {{.*}} : tensor<4x80xf16>, vector<16xf16>
// INT4:     vector.transfer_read {{.*}} : tensor<4x80xf16>, vector<16xf16>
#pairs = affine_map<(d0, d1) -> (d0 floordiv 2, d1)>
func.func @int4(%x: tensor<?x?x64xf32>, %codes: tensor<32x80xi8>, %scales: tensor<4x80xf16>, %zeros: tensor<4x80xf16>, %init: tensor<?x?x80xf32>) -> tensor<?x?x80xf32> {
  %empty = tensor.empty() : tensor<64x80xf32>
  %w = linalg.generic {indexing_maps = [#pairs, #scales, #scales, #codes], iterator_types = ["parallel", "parallel"]}
      ins(%codes, %scales, %zeros : tensor<32x80xi8>, tensor<4x80xf16>, tensor<4x80xf16>) outs(%empty : tensor<64x80xf32>)
      attrs = {falcon.dequantize = #falcon.weight_encoding<quantization = int4, group_size = 16, pack = 2, symmetric = false>} {
  ^bb0(%c: i8, %s: f16, %z: f16, %out: f32):
    %v = arith.sitofp %c : i8 to f32
    %zf = arith.extf %z : f16 to f32
    %vz = arith.subf %v, %zf : f32
    %e = arith.extf %s : f16 to f32
    %d = arith.mulf %vz, %e : f32
    linalg.yield %d : f32
  } -> tensor<64x80xf32>
  %0 = linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "reduction", "parallel", "parallel"]}
      ins(%x, %w : tensor<?x?x64xf32>, tensor<64x80xf32>) outs(%init : tensor<?x?x80xf32>) attrs = {falcon.lowering_config = #falcon.lowering_config<threads = 2, register_tile = [4, 16, 4], decode_activation_bits = 8>} {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %m = arith.mulf %a, %b : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<?x?x80xf32>
  return %0 : tensor<?x?x80xf32>
}

// 72 outputs are not a whole number of 16-lane vectors: the f32 split-K
// loops, dequantizing as they read.
// FALLBACK-LABEL: func.func @odd_columns
// FALLBACK-NOT: falcon.dot_bytes
// FALLBACK: scf.forall (%{{.*}}) in (2) {{.*}} -> (tensor<2x?x?x72xf32>)
// FALLBACK:   linalg.generic {{.*}} ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<?x?x1x8xf32>, tensor<8x72xi8>, tensor<1x72xf16>)
// FALLBACK-NOT: falcon.dot_bytes
// FALLBACK: return
func.func @odd_columns(%x: tensor<?x?x64xf32>, %codes: tensor<64x72xi8>, %scales: tensor<4x72xf16>, %init: tensor<?x?x72xf32>) -> tensor<?x?x72xf32> {
  %empty = tensor.empty() : tensor<64x72xf32>
  %w = linalg.generic {indexing_maps = [#codes, #scales, #codes], iterator_types = ["parallel", "parallel"]}
      ins(%codes, %scales : tensor<64x72xi8>, tensor<4x72xf16>) outs(%empty : tensor<64x72xf32>)
      attrs = {falcon.dequantize = #falcon.weight_encoding<quantization = int8, group_size = 16, pack = 1, symmetric = true>} {
  ^bb0(%c: i8, %s: f16, %out: f32):
    %v = arith.sitofp %c : i8 to f32
    %e = arith.extf %s : f16 to f32
    %d = arith.mulf %v, %e : f32
    linalg.yield %d : f32
  } -> tensor<64x72xf32>
  %0 = linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "reduction", "parallel", "parallel"]}
      ins(%x, %w : tensor<?x?x64xf32>, tensor<64x72xf32>) outs(%init : tensor<?x?x72xf32>) attrs = {falcon.lowering_config = #falcon.lowering_config<threads = 2, register_tile = [4, 16, 4], decode_activation_bits = 8>} {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %m = arith.mulf %a, %b : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<?x?x72xf32>
  return %0 : tensor<?x?x72xf32>
}

// LOWER-LABEL: func.func @lower
// LOWER: %[[L:.*]] = vector.bitcast %{{.*}} : vector<16xi32> to vector<64xi8>
// LOWER: %[[R:.*]] = vector.bitcast %{{.*}} : vector<16xi32> to vector<64xi8>
// LOWER: llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.512"(%{{.*}}, %[[L]], %[[R]]) : (vector<16xi32>, vector<64xi8>, vector<64xi8>) -> vector<16xi32>
// Without AVX512-VNNI (x86-64-v3), each 256-bit half: vpmaddubsw (unsigned by
// signed byte pairs to i16), vpmaddwd by ones (pairs of those to i32), + acc.
// AVX2-LABEL: func.func @lower
// AVX2: %[[ONES:.*]] = arith.constant dense<1> : vector<16xi16>
// AVX2: %[[A0:.*]] = vector.extract_strided_slice %{{.*}} {offsets = [0], sizes = [8], strides = [1]} : vector<16xi32> to vector<8xi32>
// AVX2: %[[P0:.*]] = llvm.call_intrinsic "llvm.x86.avx2.pmadd.ub.sw"(%{{.*}}, %{{.*}}) : (vector<32xi8>, vector<32xi8>) -> vector<16xi16>
// AVX2: %[[Q0:.*]] = llvm.call_intrinsic "llvm.x86.avx2.pmadd.wd"(%[[P0]], %[[ONES]]) : (vector<16xi16>, vector<16xi16>) -> vector<8xi32>
// AVX2: arith.addi {{.*}}, %[[Q0]] : vector<8xi32>
// AVX2: vector.insert_strided_slice {{.*}} {offsets = [0], strides = [1]} : vector<8xi32> into vector<16xi32>
// AVX2: llvm.call_intrinsic "llvm.x86.avx2.pmadd.ub.sw"
// AVX2: llvm.call_intrinsic "llvm.x86.avx2.pmadd.wd"
// AVX2: vector.insert_strided_slice {{.*}} {offsets = [8], strides = [1]} : vector<8xi32> into vector<16xi32>
// AVX2-NOT: vpdpbusd
// NOTARGET: error: expects a #falcon.cpu_target as 'falcon.target' on the module (run falcon-cpu-attach-target)
func.func @lower(%acc: vector<16xi32>, %a: vector<16xi32>, %b: vector<16xi32>) -> vector<16xi32> {
  %0 = falcon.dot_bytes %acc, %a, %b : vector<16xi32>
  return %0 : vector<16xi32>
}
