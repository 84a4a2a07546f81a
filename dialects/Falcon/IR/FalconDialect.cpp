//===- FalconDialect.cpp - falcon dialect ---------------------------------===//
#include "Falcon/IR/FalconDialect.h"
#include "Falcon/IR/FalconOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::falcon;

#include "Falcon/FalconDialect.cpp.inc"
#include "Falcon/FalconEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "Falcon/FalconAttrs.cpp.inc"

void FalconDialect::initialize() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "Falcon/FalconAttrs.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "Falcon/FalconOps.cpp.inc"
      >();
}
