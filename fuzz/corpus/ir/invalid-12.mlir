func.func @linear_batch(%x: tensor<2x?x8xf32>, %w: tensor<16x8xf32>) {
  %0 = falcon.linear %x, %w : (tensor<2x?x8xf32>, tensor<16x8xf32>) -> tensor<3x?x16xf32>
  return
}
