func.func @qkv_split_zero_width(%f: tensor<1x2x0xf32>) {
  %q, %k, %v = falcon.qkv_split %f {layout = #falcon.qkv_layout<grouped>, num_heads = 4 : i64, num_kv_heads = 2 : i64} : tensor<1x2x0xf32> -> (tensor<1x2x4x0xf32>, tensor<1x2x2x0xf32>, tensor<1x2x2x0xf32>)
  return
}
