func.func @param_empty_name() {
  %0 = falcon.param "" : tensor<8xf32>
  return
}
