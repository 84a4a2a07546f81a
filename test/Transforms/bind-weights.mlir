// RUN: falcon-opt %s --falcon-bind-weights | FileCheck %s

// Layout in order of first appearance, each tensor 64-byte aligned:
//   emb  [16x8xf32]  512 B at 0
//   w.{} [3x8xbf16]   48 B, stride 64, two layers at 512 and 576
//   ln   [8xf32]      32 B at 640
// The layout is recorded for the artifact writer as a typed attribute.
// CHECK: module attributes {{{.*}}falcon.weight_layout = #falcon.weight_layout<num_layers = 2, total_bytes = 704, slots = [#falcon.weight_slot<name = "transformer.word_embeddings.weight", type = tensor<16x8xf32>, offset = 0, layer_stride = 512, bytes = 512>, #falcon.weight_slot<name = "transformer.h.{}.w", type = tensor<3x8xbf16>, offset = 512, layer_stride = 64, bytes = 48, per_layer = true>, #falcon.weight_slot<name = "transformer.ln_f.weight", type = tensor<8xf32>, offset = 640, layer_stride = 64, bytes = 32>]>}
module attributes {falcon.config = #falcon.model_config<vocab_size = 16, hidden_size = 8, num_hidden_layers = 2, num_attention_heads = 2, num_kv_heads = 1, head_dim = 4, ffn_hidden_size = 32, qkv_layout = #falcon.qkv_layout<multi_query>, parallel_attn = true, layer_norms_per_block = 1, alibi = false, bias = false, tie_word_embeddings = true, layer_norm_epsilon = 1.0e-05 : f64, max_position_embeddings = 2048>} {
  // CHECK-LABEL: func.func @forward
  // CHECK-SAME: %[[LAYER:[^:]*]]: index, %[[BUF:.*]]: memref<?xi8> {falcon.name = "weights"}
  func.func @forward(%layer: index) -> (tensor<16x8xf32>, tensor<3x8xbf16>, tensor<8xf32>) {
    // CHECK: %[[C0:.*]] = arith.constant 0 : index
    // CHECK: %[[E:.*]] = memref.view %[[BUF]][%[[C0]]][] : memref<?xi8> to memref<16x8xf32>
    // CHECK: bufferization.to_tensor %[[E]] restrict : memref<16x8xf32> to tensor<16x8xf32>
    %0 = falcon.param "transformer.word_embeddings.weight" : tensor<16x8xf32>
    // CHECK: %[[C512:.*]] = arith.constant 512 : index
    // CHECK: %[[C64:.*]] = arith.constant 64 : index
    // CHECK: %[[SCALED:.*]] = arith.muli %[[LAYER]], %[[C64]]
    // CHECK: %[[OFF:.*]] = arith.addi %[[C512]], %[[SCALED]]
    // CHECK: memref.view %[[BUF]][%[[OFF]]][] : memref<?xi8> to memref<3x8xbf16>
    %1 = falcon.param "transformer.h.{}.w"[%layer] : tensor<3x8xbf16>
    // CHECK: %[[C640:.*]] = arith.constant 640 : index
    // CHECK: memref.view %[[BUF]][%[[C640]]][] : memref<?xi8> to memref<8xf32>
    %2 = falcon.param "transformer.ln_f.weight" : tensor<8xf32>
    // CHECK-NOT: falcon.param
    return %0, %1, %2 : tensor<16x8xf32>, tensor<3x8xbf16>, tensor<8xf32>
  }
}
