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
    verifier, one lowering (a contraction) and one weight layout decision
    (`falcon-cpu-weight-layout` packs every projection weight `[in, out]`).
  }];
  let methods = [
    InterfaceMethod<"The input activations `[batch, seq, in]`.", "::mlir::Value",
                    "getInput">,
    InterfaceMethod<"The weight operand, `[out, in]` (or `[in, out]` when transposed).",
                    "::mlir::OpOperand &", "getWeightMutable">,
    InterfaceMethod<"The bias `[out]`, or null.", "::mlir::Value", "getProjectionBias",
                    (ins), [{}], [{ return ::mlir::Value(); }]>,
    InterfaceMethod<"Whether the weight is stored `[in, out]`.", "bool",
                    "getTransposedWeight">,
    InterfaceMethod<"Marks the weight as stored `[in, out]` (or not).", "void",
                    "setTransposedWeight", (ins "bool":$transposed)>,
  ];
}

#endif // FALCON_INTERFACES_TD
