//===- FalconDialect.h - falcon dialect -------------------------*- C++ -*-===//
#ifndef FALCON_DIALECT_FALCON_IR_FALCONDIALECT_H
#define FALCON_DIALECT_FALCON_IR_FALCONDIALECT_H

#include "mlir/IR/Dialect.h"

#include "Falcon/FalconDialect.h.inc"

#endif // FALCON_DIALECT_FALCON_IR_FALCONDIALECT_H
