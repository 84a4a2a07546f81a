func.func @int8_packed() {
  %0 = falcon.param "w" {encoding = #falcon.weight_encoding<quantization = int8, group_size = 32, pack = 2>} : tensor<8x8xi8>
  return
}
