//===- AllReduceBufferization.cpp - shard.all_reduce on buffers -----------===//
//
// One-Shot Bufferize's model of upstream's shard.all_reduce, which
// falcon.all_reduce lowers to (upstream gives it none): it sums in place
// (the result is the operand's buffer, read and written), and on buffers it
// is a call of `falcon_all_reduce_sum_f32(memref<?xf32>)` with the buffer
// flattened. The host library defines that function over the runtime's
// import table (falcon-cpu-runtime-imports), which hands it to the runtime's
// collective channel (MPI on the CPU).
//
//===----------------------------------------------------------------------===//

#include "falcon/Transforms/Passes.h"
#include "Falcon/IR/FalconOps.h"

#include "mlir/Dialect/Bufferization/IR/BufferizableOpInterface.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "mlir/IR/SymbolTable.h"

using namespace mlir;
using namespace mlir::bufferization;
using namespace mlir::falcon;

namespace {
struct AllReduceOpBufferization
    : public BufferizableOpInterface::ExternalModel<AllReduceOpBufferization,
                                                    shard::AllReduceOp> {
  bool bufferizesToMemoryRead(Operation *, OpOperand &, const AnalysisState &) const {
    return true;
  }
  bool bufferizesToMemoryWrite(Operation *op, OpOperand &operand,
                               const AnalysisState &) const {
    return operand.getOperandNumber() == 0;
  }
  AliasingValueList getAliasingValues(Operation *op, OpOperand &operand,
                                      const AnalysisState &) const {
    if (operand.getOperandNumber() != 0)
      return {};
    return {{op->getResult(0), BufferRelation::Equivalent}};
  }

  LogicalResult bufferize(Operation *op, RewriterBase &rewriter,
                          const BufferizationOptions &options,
                          BufferizationState &state) const {
    auto allReduce = cast<shard::AllReduceOp>(op);
    auto resultType = dyn_cast<RankedTensorType>(allReduce.getType());
    if (allReduce.getReduction() != shard::ReductionKind::Sum || !resultType ||
        allReduce.getInput().getType() != resultType ||
        !resultType.getElementType().isF32() ||
        allReduce.getGrid() != FalconDialect::kPlanGridName ||
        allReduce.getGridAxes() != ArrayRef<shard::GridAxis>{FalconDialect::kPlanGridTensorAxis})
      return op->emitOpError("the runtime sums f32 over the tensor axis of @")
             << FalconDialect::kPlanGridName << " only";
    FailureOr<Value> buffer = getBuffer(rewriter, allReduce.getInput(), options, state);
    if (failed(buffer))
      return failure();
    auto type = cast<MemRefType>(buffer->getType());
    if (!type.getLayout().isIdentity())
      return op->emitOpError("expects a contiguous buffer to reduce, found ") << type;
    Location loc = op->getLoc();
    auto flatType = MemRefType::get({ShapedType::kDynamic}, type.getElementType());
    SmallVector<ReassociationIndices> allDims(1);
    for (int64_t dim = 0; dim < type.getRank(); ++dim)
      allDims.front().push_back(dim);
    Value flat = memref::CollapseShapeOp::create(rewriter, loc, flatType, *buffer, allDims);
    auto module = op->getParentOfType<ModuleOp>();
    if (!module.lookupSymbol<func::FuncOp>(kAllReduceFunctionName)) {
      OpBuilder::InsertionGuard guard(rewriter);
      rewriter.setInsertionPointToStart(module.getBody());
      auto declaration = func::FuncOp::create(
          rewriter, loc, kAllReduceFunctionName,
          rewriter.getFunctionType(TypeRange{flatType}, TypeRange{}));
      declaration.setPrivate();
    }
    func::CallOp::create(rewriter, loc, kAllReduceFunctionName, TypeRange{},
                         ValueRange{flat});
    replaceOpWithBufferizedValues(rewriter, op, *buffer);
    return success();
  }
};
} // namespace

void mlir::falcon::registerFalconBufferizationExternalModels(DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *context, shard::ShardDialect *) {
    shard::AllReduceOp::attachInterface<AllReduceOpBufferization>(*context);
  });
}
