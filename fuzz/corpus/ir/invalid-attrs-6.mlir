func.func @untyped_config() attributes {falcon.lowering_config = 3} {
  return
}
