func.func @alibi_heads(%n: index) {
  %0 = falcon.alibi %n {num_heads = 6 : i64} : tensor<5x?xf32>
  return
}
