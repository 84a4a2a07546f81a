// RUN: falcon-opt %s -split-input-file --falcon-cpu-decompose-attention | FileCheck %s

// Cache append at each row's past_lens, then blocks of query rows x keys (the config's
// attention_block, 4 x 8 here) with an online softmax; heads merged
// head-major.
// CHECK-LABEL: func @attention
// CHECK-SAME: %[[Q:[^:]*]]: tensor<?x?x4x16xf32>, %[[K:[^:]*]]: tensor<?x?x2x16xf32>, %[[V:[^:]*]]: tensor<?x?x2x16xf32>, %[[KC:[^:]*]]: tensor<?x2x?x16xf32>, %[[VC:[^:]*]]: tensor<?x2x?x16xf32>, %[[PASTS:[^:]*]]: tensor<?xi64>
// CHECK: %[[B:.*]] = tensor.dim %[[Q]], %c0
// CHECK: %[[SEQ:.*]] = tensor.dim %[[Q]], %c1
// The longest row's past length bounds the keys every row's blocks visit.
// CHECK: %[[PAST:.*]] = scf.for %[[R:.*]] = %{{.*}} to %[[B]]
// CHECK:   tensor.extract %[[PASTS]][%[[R]]]
// CHECK:   arith.maxsi
// CHECK: %[[KT:.*]] = linalg.transpose ins(%[[K]] : tensor<?x?x2x16xf32>) {{.*}} permutation = [0, 2, 1, 3]
// Row r's new keys go to its own cache rows past_lens[r] ...
// CHECK: %[[NKC:.*]] = scf.for %[[R:.*]] = %{{.*}} to %[[B]] {{.*}} iter_args(%[[CACHE:.*]] = %[[KC]])
// CHECK:   %[[ROWKT:.*]] = tensor.extract_slice %[[KT]][%[[R]], 0, 0, 0] [1, 2, %[[SEQ]], 16]
// CHECK:   %[[RP:.*]] = tensor.extract %[[PASTS]][%[[R]]]
// CHECK:   %[[RPI:.*]] = arith.index_cast %[[RP]]
// CHECK:   tensor.insert_slice %[[ROWKT]] into %[[CACHE]][%[[R]], 0, %[[RPI]], 0] [1, 2, %[[SEQ]], 16]
// CHECK: %[[VT:.*]] = linalg.transpose ins(%[[V]]
// CHECK: %[[NVC:.*]] = scf.for
// CHECK: %[[KEYS:.*]] = tensor.extract_slice %[[NKC]][0, 0, 0, 0]
// CHECK: %[[VALUES:.*]] = tensor.extract_slice %[[NVC]][0, 0, 0, 0]
// CHECK: %[[QG:.*]] = tensor.expand_shape %[[Q]] {{\[\[}}0], [1], [2, 3], [4]] {{.*}} into tensor<?x?x2x2x16xf32>
// From 8 query rows on, the keys are transposed to [B, K, d, T] first.
// CHECK: %[[MANY:.*]] = arith.cmpi sge, %[[SEQ]], %c8
// CHECK: %[[CTX:.*]] = scf.if %[[MANY]] -> (tensor<?x?x2x2x16xf32>)
// CHECK:   %[[KEYST:.*]] = linalg.transpose ins(%[[KEYS]] : tensor<?x2x?x16xf32>) {{.*}} permutation = [0, 1, 3, 2]
// Rows in blocks of 4; a block sees keys 0 .. past_len + row + rows - 1.
// CHECK:   scf.for %[[ROW:.*]] = %{{.*}} to %[[SEQ]] step %[[C4:.*]] iter_args
// CHECK:     %[[ROWS:.*]] = arith.minsi %[[C4]]
// CHECK:     %[[QB:.*]] = tensor.extract_slice %[[QG]][0, %[[ROW]], 0, 0, 0] [%{{.*}}, %[[ROWS]], 2, 2, 16]
// CHECK:     %[[END:.*]] = arith.addi %[[ROW]], %[[ROWS]]
// CHECK:     %[[SEEN:.*]] = arith.addi %[[PAST]], %[[END]]
// CHECK:     %[[MAX0:.*]] = linalg.fill ins(%cst{{.*}} : f32) outs(%{{.*}} : tensor<?x2x2x?xf32>)
// Keys in blocks of 8, carrying the running maximum, denominator and
// weighted sum of values.
// CHECK:     %[[STATS:.*]]:3 = scf.for %[[KEY:.*]] = %{{.*}} to %[[SEEN]] step %[[C8:.*]] iter_args(%[[MAX:.*]] = %[[MAX0]], %[[SUM:.*]] = %{{.*}}, %[[ACC:.*]] = %{{.*}})
// CHECK:       %[[KB:.*]] = tensor.extract_slice %[[KEYST]][0, 0, 0, %[[KEY]]]
// CHECK:       %[[VB:.*]] = tensor.extract_slice %[[VALUES]][0, 0, %[[KEY]], 0]
// Dots over loops (b, g, j, i, e, t): keys innermost. Every generic over a
// whole block runs its 2 KV groups (loop 1) in parallel: it carries the
// attention's thread split (and no attention_block).
// CHECK:       %[[DOTS:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction", "parallel"]} ins(%[[QB]], %[[KB]] : {{.*}} attrs = {falcon.lowering_config = #falcon.lowering_config<threads = 2, thread_dim = 1>}
// CHECK:       %[[SCORES:.*]] = linalg.generic {{.*}} ins(%[[DOTS]], %[[PASTS]] : {{.*}} attrs = {falcon.lowering_config = #falcon.lowering_config<threads = 2, thread_dim = 1>}
// The causal mask: key KEY + t is hidden from query ROW + i of batch row b
// past past_lens[b] + ROW + i.
// CHECK:         ^bb0(%{{[^:]*}}: f32, %[[ROWPAST:[^:]*]]: i64,
// CHECK:         %[[T:.*]] = arith.addi %[[KEY]], %{{.*}}
// CHECK:         %[[RPAST:.*]] = arith.index_cast %[[ROWPAST]]
// CHECK:         %[[I:.*]] = arith.addi %[[ROW]], %{{.*}}
// CHECK:         %[[LIMIT:.*]] = arith.addi %[[RPAST]], %[[I]]
// CHECK:         arith.cmpi ugt, %[[T]], %[[LIMIT]]
// CHECK:         arith.select
// CHECK:       %[[NEWMAX:.*]] = linalg.generic {{.*}} ins(%[[SCORES]] : {{.*}} outs(%[[MAX]] :
// CHECK:         arith.maximumf
// CHECK:       %[[RESCALE:.*]] = linalg.generic {{.*}} ins(%[[MAX]], %[[NEWMAX]] :
// CHECK:         math.exp
// CHECK:       %[[P:.*]] = linalg.generic {{.*}} ins(%[[SCORES]], %[[NEWMAX]] : {{.*}} attrs = {falcon.lowering_config = #falcon.lowering_config<threads = 2, thread_dim = 1>}
// CHECK:         math.exp
// CHECK:       %[[SUM1:.*]] = linalg.generic {{.*}} ins(%[[RESCALE]] : {{.*}} outs(%[[SUM]] :
// CHECK:       %[[SUM2:.*]] = linalg.generic {{.*}} ins(%[[P]] : {{.*}} outs(%[[SUM1]] :
// CHECK:       %[[ACC1:.*]] = linalg.generic {{.*}} ins(%[[RESCALE]] : {{.*}} outs(%[[ACC]] :
// Values over loops (b, g, j, i, t, e): a row of values innermost.
// CHECK:       %[[ACC2:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction", "parallel"]} ins(%[[P]], %[[VB]] : {{.*}} outs(%[[ACC1]] : {{.*}} attrs = {falcon.lowering_config = #falcon.lowering_config<threads = 2, thread_dim = 1>}
// CHECK:       scf.yield %[[NEWMAX]], %[[SUM2]], %[[ACC2]]
// CHECK:     %[[OUTB:.*]] = linalg.generic {{.*}} ins(%[[STATS]]#2, %[[STATS]]#1 :
// CHECK:       arith.divf
// CHECK:     tensor.insert_slice %[[OUTB]] into %{{.*}}[0, %[[ROW]], 0, 0, 0]
// A few rows (decode) read the keys as they are cached.
// CHECK: } else {
// CHECK:   scf.for
// CHECK:     scf.for
// CHECK:       tensor.extract_slice %[[KEYS]][0, 0, %{{.*}}, 0]
// CHECK: %[[OUT:.*]] = tensor.collapse_shape %[[CTX]] {{\[\[}}0], [1], [2, 3, 4]] : tensor<?x?x2x2x16xf32> into tensor<?x?x64xf32>
// CHECK: return %[[OUT]], %[[NKC]], %[[NVC]]
func.func @attention(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x2x16xf32>, %v: tensor<?x?x2x16xf32>,
                     %kc: tensor<?x2x?x16xf32>, %vc: tensor<?x2x?x16xf32>, %past: tensor<?xi64>)
    -> (tensor<?x?x64xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>) {
  %o, %nk, %nv = falcon.attention %q, %k, %v, %kc, %vc, %past {falcon.lowering_config = #falcon.lowering_config<threads = 2, thread_dim = 1, attention_block = [4, 8]>}
      : (tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?xi64>)
      -> (tensor<?x?x64xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>)
  return %o, %nk, %nv : tensor<?x?x64xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>
}

// -----

// With ALiBi the bias, grouped [K, r, T] and sliced to the block's keys, is
// added before the 1/sqrt(d) scale. Without a lowering config: the default
// blocks, 64 rows x 512 keys.
// CHECK-LABEL: func @attention_alibi
// CHECK: %[[B:.*]] = tensor.expand_shape %{{.*}} {{\[\[}}0, 1], [2]] {{.*}} : tensor<2x?xf32> into tensor<2x1x?xf32>
// CHECK: scf.for {{.*}} step %c64
// CHECK: scf.for %[[KEY:.*]] = {{.*}} step %c512
// CHECK: %[[BB:.*]] = tensor.extract_slice %[[B]][0, 0, %[[KEY]]] [2, 1, %{{.*}}]
// CHECK: linalg.generic {{.*}} ins(%{{.*}}, %[[BB]], %{{.*}} :
// CHECK:   %[[S:.*]] = arith.addf
// CHECK:   %[[SCALE:.*]] = arith.constant 2.500000e-01 : f32
// CHECK:   arith.mulf %[[S]], %[[SCALE]]
func.func @attention_alibi(%q: tensor<?x?x2x16xf32>, %k: tensor<?x?x2x16xf32>,
                           %kc: tensor<?x2x?x16xf32>, %past: tensor<?xi64>, %bias: tensor<2x?xf32>)
    -> tensor<?x?x32xf32> {
  %o, %nk, %nv = falcon.attention %q, %k, %k, %kc, %kc, %past bias(%bias)
      : (tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?xi64>, tensor<2x?xf32>)
      -> (tensor<?x?x32xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>)
  return %o : tensor<?x?x32xf32>
}

