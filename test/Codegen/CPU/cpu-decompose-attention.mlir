// RUN: falcon-opt %s -split-input-file --falcon-cpu-decompose-attention | FileCheck %s

// Cache append at past_len, scores over keys 0 .. past_len + S - 1 with the
// causal mask, softmax, context, heads merged head-major.
// CHECK-LABEL: func @attention
// CHECK-SAME: %[[Q:[^:]*]]: tensor<?x?x4x16xf32>, %[[K:[^:]*]]: tensor<?x?x2x16xf32>, %[[V:[^:]*]]: tensor<?x?x2x16xf32>, %[[KC:[^:]*]]: tensor<?x2x?x16xf32>, %[[VC:[^:]*]]: tensor<?x2x?x16xf32>, %[[PAST:[^:]*]]: index
// CHECK: %[[KT:.*]] = linalg.transpose ins(%[[K]] : tensor<?x?x2x16xf32>) {{.*}} permutation = [0, 2, 1, 3]
// CHECK: %[[NKC:.*]] = tensor.insert_slice %[[KT]] into %[[KC]][0, 0, %[[PAST]], 0]
// CHECK: %[[VT:.*]] = linalg.transpose ins(%[[V]]
// CHECK: %[[NVC:.*]] = tensor.insert_slice %[[VT]] into %[[VC]][0, 0, %[[PAST]], 0]
// CHECK: %[[KEYS:.*]] = tensor.extract_slice %[[NKC]][0, 0, 0, 0]
// CHECK: %[[QG:.*]] = tensor.expand_shape %[[Q]] {{\[\[}}0], [1], [2, 3], [4]] {{.*}} into tensor<?x?x2x2x16xf32>
// Dots over loops (b, g, j, i, e, t): keys innermost; from 8 query rows on,
// over keys transposed to [B, K, d, T] first. Every attention generic runs its
// 2 KV groups (loop 1) in parallel on the CPU: each carries the attention's
// lowering config.
// CHECK: %[[MANY:.*]] = arith.cmpi sge, %{{.*}}, %c8
// CHECK: %[[DOTS:.*]] = scf.if %[[MANY]] -> (tensor<?x2x2x?x?xf32>)
// CHECK:   %[[KT:.*]] = linalg.transpose ins(%[[KEYS]] : tensor<?x2x?x16xf32>) {{.*}} permutation = [0, 1, 3, 2]
// CHECK:   linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction", "parallel"]} ins(%[[QG]], %[[KT]] : {{.*}} attrs = {falcon.lowering_config = #falcon.lowering_config<threads = 2, thread_dim = 1>}
// CHECK: } else {
// CHECK:   linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction", "parallel"]} ins(%[[QG]], %[[KEYS]] : {{.*}} attrs = {falcon.lowering_config = #falcon.lowering_config<threads = 2, thread_dim = 1>}
// CHECK: %[[SCORES:.*]] = linalg.generic {{.*}} ins(%[[DOTS]] : {{.*}} attrs = {falcon.lowering_config = #falcon.lowering_config<threads = 2, thread_dim = 1>}
// CHECK:   arith.cmpi ugt
// CHECK:   arith.select
// CHECK: linalg.generic {{.*}} ins(%[[SCORES]] : {{.*}} attrs = {falcon.lowering_config = #falcon.lowering_config<threads = 2, thread_dim = 1>}
// CHECK:   arith.maximumf
// CHECK: math.exp
// CHECK: math.exp
// CHECK: arith.divf
// Context over loops (b, g, j, i, t, e): a row of values innermost.
// CHECK: %[[CTX:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction", "parallel"]{{.*}} attrs = {falcon.lowering_config = #falcon.lowering_config<threads = 2, thread_dim = 1>}
// CHECK: %[[OUT:.*]] = tensor.collapse_shape %[[CTX]] {{\[\[}}0], [1], [2, 3, 4]] : tensor<?x?x2x2x16xf32> into tensor<?x?x64xf32>
// CHECK: return %[[OUT]], %[[NKC]], %[[NVC]]
func.func @attention(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x2x16xf32>, %v: tensor<?x?x2x16xf32>,
                     %kc: tensor<?x2x?x16xf32>, %vc: tensor<?x2x?x16xf32>, %past: index)
    -> (tensor<?x?x64xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>) {
  %o, %nk, %nv = falcon.attention %q, %k, %v, %kc, %vc, %past {falcon.lowering_config = #falcon.lowering_config<threads = 2, thread_dim = 1>}
      : (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, index)
      -> (tensor<?x?x64xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>)
  return %o, %nk, %nv : tensor<?x?x64xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>
}

// -----

// With ALiBi the bias, grouped [K, r, T], is added before the 1/sqrt(d) scale.
// CHECK-LABEL: func @attention_alibi
// CHECK: %[[B:.*]] = tensor.expand_shape %{{.*}} {{\[\[}}0, 1], [2]] {{.*}} : tensor<2x?xf32> into tensor<2x1x?xf32>
// CHECK: linalg.generic {{.*}} ins(%{{.*}}, %[[B]] :
// CHECK:   %[[S:.*]] = arith.addf
// CHECK:   %[[SCALE:.*]] = arith.constant 2.500000e-01 : f32
// CHECK:   arith.mulf %[[S]], %[[SCALE]]
func.func @attention_alibi(%q: tensor<?x?x2x16xf32>, %k: tensor<?x?x2x16xf32>,
                           %kc: tensor<?x2x?x16xf32>, %past: index, %bias: tensor<2x?xf32>)
    -> tensor<?x?x32xf32> {
  %o, %nk, %nv = falcon.attention %q, %k, %k, %kc, %kc, %past bias(%bias)
      : (tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, index, tensor<2x?xf32>)
      -> (tensor<?x?x32xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>)
  return %o : tensor<?x?x32xf32>
}

