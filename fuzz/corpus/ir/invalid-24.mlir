func.func @split_head_size(%f: tensor<?x?x112xf32>) {
  %q, %k, %v = falcon.qkv_split %f {layout = #falcon.qkv_layout<multi_query>, num_heads = 5 : i64, num_kv_heads = 1 : i64}
      : tensor<?x?x112xf32> -> (tensor<?x?x5x16xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x16xf32>)
  return
}
