func.func @attention_bias(%q: tensor<?x?x6x16xf32>, %k: tensor<?x?x6x16xf32>,
                          %c: tensor<?x6x?x16xf32>, %p: index, %b: tensor<5x?xf32>) {
  %o, %kc, %vc = falcon.attention %q, %k, %k, %c, %c, %p bias(%b)
      : (tensor<?x?x6x16xf32>, tensor<?x?x6x16xf32>, tensor<?x?x6x16xf32>, tensor<?x6x?x16xf32>, tensor<?x6x?x16xf32>, index, tensor<5x?xf32>)
      -> (tensor<?x?x96xf32>, tensor<?x6x?x16xf32>, tensor<?x6x?x16xf32>)
  return
}
