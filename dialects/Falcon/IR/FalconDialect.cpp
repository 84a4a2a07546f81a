//===- FalconDialect.cpp - falcon dialect ---------------------------------===//
#include "Falcon/IR/FalconDialect.h"
#include "Falcon/IR/FalconOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/Transforms/InliningUtils.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::falcon;

#include "Falcon/FalconDialect.cpp.inc"
#include "Falcon/FalconEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "Falcon/FalconAttrs.cpp.inc"

namespace {
/// Every falcon op is pure and position-independent: calls to the layer
/// function may be inlined into the layer loop.
struct FalconInlinerInterface : public DialectInlinerInterface {
  using DialectInlinerInterface::DialectInlinerInterface;
  bool isLegalToInline(Operation *, Operation *, bool) const final {
    return true;
  }
  bool isLegalToInline(Region *, Region *, bool, IRMapping &) const final {
    return true;
  }
  bool isLegalToInline(Operation *, Region *, bool, IRMapping &) const final {
    return true;
  }
};
} // namespace

void FalconDialect::initialize() {
  addInterfaces<FalconInlinerInterface>();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "Falcon/FalconAttrs.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "Falcon/FalconOps.cpp.inc"
      >();
}
