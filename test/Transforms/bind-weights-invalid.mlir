// RUN: falcon-opt %s -split-input-file --falcon-bind-weights -verify-diagnostics

// expected-error @+1 {{expects a 'falcon.config' dictionary with 'num_hidden_layers' to lay out per-layer weights}}
module {
  func.func @f(%layer: index) -> tensor<3xf32> {
    %0 = falcon.param "h.{}.w"[%layer] : tensor<3xf32>
    return %0 : tensor<3xf32>
  }
}

// -----

module attributes {falcon.config = {num_hidden_layers = 2 : i64}} {
  func.func @f() -> (tensor<3xf32>, tensor<4xf32>) {
    %0 = falcon.param "w" : tensor<3xf32>
    // expected-error @+1 {{uses parameter "w" with type 'tensor<4xf32>', but it was 'tensor<3xf32>' before}}
    %1 = falcon.param "w" : tensor<4xf32>
    return %0, %1 : tensor<3xf32>, tensor<4xf32>
  }
}
