// The CPU strategy reads the module's target and writes a lowering config on
// each projection (register tile sized for the vector registers, threads) and
// each attention (threads along the KV groups, or along the query heads of a
// single group; blocks of 64 query rows x 512 keys for its online softmax).
// RUN: falcon-opt %s --falcon-cpu-attach-target="cpu=x86-64-v3 threads=4" --falcon-cpu-select-lowering-strategy | FileCheck %s --check-prefix=AVX2
// RUN: falcon-opt %s --falcon-cpu-attach-target="cpu=znver4 threads=2" --falcon-cpu-select-lowering-strategy | FileCheck %s --check-prefix=AVX512
// RUN: falcon-opt %s --falcon-cpu-attach-target="triple=aarch64-linux-gnu cpu=neoverse-n1 threads=8" --falcon-cpu-select-lowering-strategy | FileCheck %s --check-prefix=ARM
// RUN: falcon-opt %s --falcon-cpu-attach-target="cpu=x86-64-v3 threads=4" --falcon-cpu-select-lowering-strategy="tile-rows=4 tile-depth=64" | FileCheck %s --check-prefix=OVERRIDE
// RUN: falcon-opt %s --falcon-cpu-attach-target="cpu=x86-64-v3 threads=4" --falcon-cpu-select-lowering-strategy="attention-rows=2 attention-keys=3" | FileCheck %s --check-prefix=BLOCK
// RUN: falcon-opt %s --falcon-cpu-attach-target="cpu=znver4 threads=2" --falcon-cpu-select-lowering-strategy="int8-activations=off" | FileCheck %s --check-prefix=NOINT8
// RUN: falcon-opt %s --falcon-cpu-attach-target="cpu=x86-64-v4 threads=2" --falcon-cpu-select-lowering-strategy | FileCheck %s --check-prefix=V4
// RUN: not falcon-opt %s --falcon-cpu-attach-target="cpu=x86-64-v4 threads=2" --falcon-cpu-select-lowering-strategy="int8-activations=on" 2>&1 | FileCheck %s --check-prefix=NOVNNI
// RUN: not falcon-opt %s --falcon-cpu-attach-target="cpu=x86-64-v3 threads=2" --falcon-cpu-select-lowering-strategy="int8-activations=on" 2>&1 | FileCheck %s --check-prefix=NOVNNI8
// RUN: not falcon-opt %s --falcon-cpu-attach-target="cpu=znver4 threads=2" --falcon-cpu-select-lowering-strategy="int8-activations=yes" 2>&1 | FileCheck %s --check-prefix=BADINT8
// RUN: not falcon-opt %s --falcon-cpu-select-lowering-strategy 2>&1 | FileCheck %s --check-prefix=NOTARGET
// RUN: not falcon-opt %s --falcon-cpu-attach-target="cpu=x86-64-v3" --falcon-cpu-select-lowering-strategy="tile-rows=100" 2>&1 | FileCheck %s --check-prefix=BIG

#x = affine_map<(d0, d1, d2, d3) -> (d0, d2, d1)>
#w = affine_map<(d0, d1, d2, d3) -> (d1, d3)>
#y = affine_map<(d0, d1, d2, d3) -> (d0, d2, d3)>

// A projection of a float weight: no int8 activations anywhere.
// AVX2-LABEL: func.func @projection
// AVX2: linalg.generic {{.*}} attrs = {falcon.lowering_config = #falcon.lowering_config<threads = 4, register_tile = [6, 16, 256]>}
// AVX512-LABEL: func.func @projection
// AVX512: linalg.generic {{.*}} attrs = {falcon.lowering_config = #falcon.lowering_config<threads = 2, register_tile = [8, 32, 256]>}
// NOINT8-LABEL: func.func @projection
// NOINT8: linalg.generic {{.*}} attrs = {falcon.lowering_config = #falcon.lowering_config<threads = 2, register_tile = [8, 32, 256]>}
// BADINT8: error: falcon-cpu-select-lowering-strategy: int8-activations must be auto, on or off, found 'yes'
// ARM-LABEL: func.func @projection
// ARM: linalg.generic {{.*}} attrs = {falcon.lowering_config = #falcon.lowering_config<threads = 8, register_tile = [8, 8, 256]>}
// OVERRIDE: linalg.generic {{.*}} attrs = {falcon.lowering_config = #falcon.lowering_config<threads = 4, register_tile = [4, 16, 64]>}
// NOTARGET: error: expects a #falcon.cpu_target as 'falcon.target' on the module (run falcon-cpu-attach-target)
// BIG: error: falcon-cpu-select-lowering-strategy: tile-rows must be in [0, 64], found 100
func.func @projection(%x: tensor<?x?x8xf32>, %w: tensor<8x80xbf16>, %init: tensor<?x?x80xf32>) -> tensor<?x?x80xf32> {
  %0 = linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "reduction", "parallel", "parallel"]}
      ins(%x, %w : tensor<?x?x8xf32>, tensor<8x80xbf16>) outs(%init : tensor<?x?x80xf32>) {
  ^bb0(%a: f32, %b: bf16, %acc: f32):
    %e = arith.extf %b : bf16 to f32
    %m = arith.mulf %a, %e : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<?x?x80xf32>
  return %0 : tensor<?x?x80xf32>
}

// bf16 activations (falcon-compute-precision) and a bf16 weight: Zen 4 has
// AVX512-BF16, so the register tile sums pairs with vdpbf16ps, in blocks of
// 512 inputs; x86-64-v4 and x86-64-v3 have not. A bf16 activation with an
// f32 weight widens both on every CPU.
// AVX512-LABEL: func.func @bf16
// AVX512: falcon.lowering_config = #falcon.lowering_config<threads = 2, register_tile = [8, 32, 512], bf16_dot_products = true>
// AVX512: falcon.lowering_config = #falcon.lowering_config<threads = 2, register_tile = [8, 32, 256]>}
// V4-LABEL: func.func @bf16
// V4-NOT: bf16_dot_products
// V4: return
// AVX2-LABEL: func.func @bf16
// AVX2-NOT: bf16_dot_products
// AVX2: return
func.func @bf16(%x: tensor<?x?x8xbf16>, %w: tensor<8x80xbf16>, %v: tensor<8x80xf32>, %init: tensor<?x?x80xf32>) -> (tensor<?x?x80xf32>, tensor<?x?x80xf32>) {
  %0 = linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "reduction", "parallel", "parallel"]}
      ins(%x, %w : tensor<?x?x8xbf16>, tensor<8x80xbf16>) outs(%init : tensor<?x?x80xf32>) {
  ^bb0(%a: bf16, %b: bf16, %acc: f32):
    %ea = arith.extf %a : bf16 to f32
    %e = arith.extf %b : bf16 to f32
    %m = arith.mulf %ea, %e : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<?x?x80xf32>
  %1 = linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "reduction", "parallel", "parallel"]}
      ins(%x, %v : tensor<?x?x8xbf16>, tensor<8x80xf32>) outs(%init : tensor<?x?x80xf32>) {
  ^bb0(%a: bf16, %b: f32, %acc: f32):
    %ea = arith.extf %a : bf16 to f32
    %m = arith.mulf %ea, %b : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<?x?x80xf32>
  return %0, %1 : tensor<?x?x80xf32>, tensor<?x?x80xf32>
}

// Quantized weights (a falcon.dequantize generic): Zen 4 has AVX512-VNNI, so
// both decode with int8 activations; x86-64-v3 (AVX2, no VNNI) the int4 one
// only (vpmaddubsw would saturate on int8's unsigned codes); x86-64-v4 (no
// VNNI, but AVX2) likewise; `off` neither; ARM neither.
// AVX512-LABEL: func.func @quantized
// AVX512: falcon.lowering_config = #falcon.lowering_config<threads = 2, register_tile = [8, 32, 256], decode_activation_bits = 8>
// AVX512: falcon.lowering_config = #falcon.lowering_config<threads = 2, register_tile = [8, 32, 256], decode_activation_bits = 8>
// AVX2-LABEL: func.func @quantized
// AVX2: falcon.lowering_config = #falcon.lowering_config<threads = 4, register_tile = [6, 16, 256]>}
// AVX2: falcon.lowering_config = #falcon.lowering_config<threads = 4, register_tile = [6, 16, 256], decode_activation_bits = 8>
// V4-LABEL: func.func @quantized
// V4: falcon.lowering_config = #falcon.lowering_config<threads = 2, register_tile = [8, 32, 256]>}
// V4: falcon.lowering_config = #falcon.lowering_config<threads = 2, register_tile = [8, 32, 256], decode_activation_bits = 8>
// NOINT8-LABEL: func.func @quantized
// NOINT8-NOT: decode_activation_bits
// NOINT8: return
// ARM-LABEL: func.func @quantized
// ARM-NOT: decode_activation_bits
// ARM: return
// NOVNNI: error: falcon-cpu-select-lowering-strategy: int8 activations with int8 weights need a CPU with AVX512-VNNI (avx512vnni), which x86-64-v4 has not
// NOVNNI8: error: falcon-cpu-select-lowering-strategy: int8 activations with int8 weights need a CPU with AVX512-VNNI (avx512vnni), which x86-64-v3 has not
func.func @quantized(%x: tensor<?x?x64xf32>, %codes8: tensor<64x80xi8>, %codes4: tensor<32x80xi8>, %scales: tensor<2x80xf16>, %init: tensor<?x?x80xf32>) -> (tensor<?x?x80xf32>, tensor<?x?x80xf32>) {
  %empty = tensor.empty() : tensor<64x80xf32>
  %w8 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0 floordiv 32, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]}
      ins(%codes8, %scales : tensor<64x80xi8>, tensor<2x80xf16>) outs(%empty : tensor<64x80xf32>)
      attrs = {falcon.dequantize = #falcon.weight_encoding<quantization = int8, group_size = 32, pack = 1, symmetric = true>} {
  ^bb0(%c: i8, %s: f16, %out: f32):
    %v = arith.sitofp %c : i8 to f32
    %e = arith.extf %s : f16 to f32
    %d = arith.mulf %v, %e : f32
    linalg.yield %d : f32
  } -> tensor<64x80xf32>
  %w4 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0 floordiv 2, d1)>, affine_map<(d0, d1) -> (d0 floordiv 32, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]}
      ins(%codes4, %scales : tensor<32x80xi8>, tensor<2x80xf16>) outs(%empty : tensor<64x80xf32>)
      attrs = {falcon.dequantize = #falcon.weight_encoding<quantization = int4, group_size = 32, pack = 2, symmetric = true>} {
  ^bb0(%c: i8, %s: f16, %out: f32):
    %v = arith.sitofp %c : i8 to f32
    %e = arith.extf %s : f16 to f32
    %d = arith.mulf %v, %e : f32
    linalg.yield %d : f32
  } -> tensor<64x80xf32>
  %0 = linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "reduction", "parallel", "parallel"]}
      ins(%x, %w8 : tensor<?x?x64xf32>, tensor<64x80xf32>) outs(%init : tensor<?x?x80xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %m = arith.mulf %a, %b : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<?x?x80xf32>
  %1 = linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "reduction", "parallel", "parallel"]}
      ins(%x, %w4 : tensor<?x?x64xf32>, tensor<64x80xf32>) outs(%init : tensor<?x?x80xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %m = arith.mulf %a, %b : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<?x?x80xf32>
  return %0, %1 : tensor<?x?x80xf32>, tensor<?x?x80xf32>
}

// Not a projection (the weight is read [out, in]): no decision.
// AVX2-LABEL: func.func @other
// AVX2-NOT: falcon.lowering_config
// AVX2: return
func.func @other(%x: tensor<?x?x8xf32>, %w: tensor<80x8xf32>, %init: tensor<?x?x80xf32>) -> tensor<?x?x80xf32> {
  %0 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>, affine_map<(d0, d1, d2, d3) -> (d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%x, %w : tensor<?x?x8xf32>, tensor<80x8xf32>) outs(%init : tensor<?x?x80xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %m = arith.mulf %a, %b : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  } -> tensor<?x?x80xf32>
  return %0 : tensor<?x?x80xf32>
}

// Grouped KV (2 groups): the groups (loop 1) on threads; multi-query (1
// group): the query heads of the group (loop 2).
// AVX2-LABEL: func.func @attention
// AVX2: falcon.attention {{.*}} {falcon.lowering_config = #falcon.lowering_config<threads = 4, thread_dim = 1, attention_block = [64, 512]>}
// AVX2: falcon.attention {{.*}} {falcon.lowering_config = #falcon.lowering_config<threads = 4, thread_dim = 2, attention_block = [64, 512]>}
// BLOCK: falcon.attention {{.*}} {falcon.lowering_config = #falcon.lowering_config<threads = 4, thread_dim = 1, attention_block = [2, 3]>}
func.func @attention(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x2x16xf32>, %kc: tensor<?x2x?x16xf32>,
                     %k1: tensor<?x?x1x16xf32>, %kc1: tensor<?x1x?x16xf32>, %past: tensor<?xi64>)
    -> (tensor<?x?x64xf32>, tensor<?x?x64xf32>) {
  %o, %nk, %nv = falcon.attention %q, %k, %k, %kc, %kc, %past
      : (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?xi64>)
      -> (tensor<?x?x64xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>)
  %o1, %nk1, %nv1 = falcon.attention %q, %k1, %k1, %kc1, %kc1, %past
      : (tensor<?x?x4x16xf32>, tensor<?x?x1x16xf32>, tensor<?x?x1x16xf32>, tensor<?x1x?x16xf32>, tensor<?x1x?x16xf32>, tensor<?xi64>)
      -> (tensor<?x?x64xf32>, tensor<?x1x?x16xf32>, tensor<?x1x?x16xf32>)
  return %o, %o1 : tensor<?x?x64xf32>, tensor<?x?x64xf32>
}
