//===- StridedCopiesToLinalg.cpp - memref.copy to linalg.copy -------------===//

#include "falcon/Transforms/Passes.h"

#define DEBUG_TYPE "falcon-strided-copies-to-linalg"

namespace mlir::falcon {
#define GEN_PASS_DEF_FALCONSTRIDEDCOPIESTOLINALG
#include "falcon/Transforms/Passes.h.inc"
} // namespace mlir::falcon

using namespace mlir;

namespace {
struct FalconStridedCopiesToLinalgPass
    : public mlir::falcon::impl::FalconStridedCopiesToLinalgBase<
          FalconStridedCopiesToLinalgPass> {
  void runOnOperation() override {
    SmallVector<memref::CopyOp> copies;
    getOperation().walk([&](memref::CopyOp op) {
      auto source = cast<MemRefType>(op.getSource().getType());
      auto target = cast<MemRefType>(op.getTarget().getType());
      if (!source.getLayout().isIdentity() || !target.getLayout().isIdentity())
        copies.push_back(op);
    });
    for (memref::CopyOp op : copies) {
      OpBuilder builder(op);
      linalg::CopyOp::create(builder, op.getLoc(), op.getSource(), op.getTarget());
      op.erase();
    }
  }
};
} // namespace
