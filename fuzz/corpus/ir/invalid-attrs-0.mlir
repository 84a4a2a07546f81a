func.func @unknown() attributes {falcon.projection} {
  return
}
