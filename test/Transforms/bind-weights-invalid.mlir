// RUN: falcon-opt %s -split-input-file --falcon-bind-weights -verify-diagnostics

// expected-error @+1 {{expects a '#falcon.model_config' as 'falcon.config' on the module to lay out per-layer weights}}
module {
  func.func @f(%layer: index) -> tensor<3xf32> {
    %0 = falcon.param "h.{}.w"[%layer] : tensor<3xf32>
    return %0 : tensor<3xf32>
  }
}

// -----

module attributes {falcon.config = #falcon.model_config<vocab_size = 16, hidden_size = 8, num_hidden_layers = 2, num_attention_heads = 2, num_kv_heads = 1, head_dim = 4, ffn_hidden_size = 32, qkv_layout = #falcon.qkv_layout<multi_query>, parallel_attn = true, layer_norms_per_block = 1, alibi = false, bias = false, tie_word_embeddings = true, layer_norm_epsilon = 1.0e-05 : f64, max_position_embeddings = 2048>} {
  func.func @f() -> (tensor<3xf32>, tensor<4xf32>) {
    %0 = falcon.param "w" : tensor<3xf32>
    // expected-error @+1 {{uses parameter "w" with type 'tensor<4xf32>', but it was 'tensor<3xf32>' before}}
    %1 = falcon.param "w" : tensor<4xf32>
    return %0, %1 : tensor<3xf32>, tensor<4xf32>
  }
}
