//===- FalconInterfaces.td - falcon op interfaces ----------*- tablegen -*-===//
//
// Facts about falcon ops that passes need, as interfaces rather than isa<>
// ladders over concrete ops.
//
//===----------------------------------------------------------------------===//

#ifndef FALCON_INTERFACES_TD
#define FALCON_INTERFACES_TD

include "mlir/IR/OpBase.td"

def Falcon_ProjectionOpInterface : OpInterface<"ProjectionOpInterface"> {
  let cppNamespace = "::mlir::falcon";
  let description = [{
    `y = x W^T (+ b)`: a Linear layer or the LM head. They share one
    verifier and one lowering (a contraction that isProjection recognises,
    which `falcon-cpu-weight-layout` then packs `[in, out]`).
  }];
  let methods = [
    InterfaceMethod<"The input activations `[batch, seq, in]`.", "::mlir::Value",
                    "getInput">,
    InterfaceMethod<"The weight operand, `[out, in]`.",
                    "::mlir::OpOperand &", "getWeightMutable">,
    InterfaceMethod<"The bias `[out]`, or null.", "::mlir::Value", "getProjectionBias",
                    (ins), [{}], [{ return ::mlir::Value(); }]>,
  ];
}

def Falcon_PrecisionOpInterface : OpInterface<"PrecisionOpInterface"> {
  let cppNamespace = "::mlir::falcon";
  let description = [{
    The element types an op computes and accumulates in. The compute type is
    that of its (first) result, the activations; reductions and the residual
    stream accumulate in f32 whatever the activations are (LayerNorm
    statistics, the softmax and dot-product sums of attention, projections,
    residual adds: spec section 10). Lowerings build their sums in the
    accumulate type and convert to the compute type once.
  }];
  let methods = [
    InterfaceMethod<"The element type the op computes in (its result's).", "::mlir::Type",
                    "getComputeElementType", (ins), [{}], [{
      return ::mlir::getElementTypeOrSelf($_op->getResult(0).getType());
    }]>,
    InterfaceMethod<"The element type its sums accumulate in.", "::mlir::Type",
                    "getAccumulateElementType", (ins), [{}], [{
      return ::mlir::getElementTypeOrSelf($_op->getResult(0).getType());
    }]>,
  ];
}

// Ops whose sums accumulate in f32 whatever the activation type.
def Falcon_AccumulatesInF32 : DeclareOpInterfaceMethods<Falcon_PrecisionOpInterface,
                                                        ["getAccumulateElementType"]>;

#endif // FALCON_INTERFACES_TD
