func.func @f() {
  %0 = falcon.param "h" {encoding = #falcon.weigfh