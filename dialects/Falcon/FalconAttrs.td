//===- FalconAttrs.td - falcon dialect attributes ----------*- tablegen -*-===//

#ifndef FALCON_ATTRS_TD
#define FALCON_ATTRS_TD

include "Falcon/FalconBase.td"
include "mlir/IR/EnumAttr.td"

// Row layout of the fused `query_key_value` projection (spec section 5.2).
def Falcon_QKVLayout : I32EnumAttr<"QKVLayout", "fused QKV row layout", [
    I32EnumAttrCase<"PerHead", 0, "per_head">,
    I32EnumAttrCase<"MultiQuery", 1, "multi_query">,
    I32EnumAttrCase<"Grouped", 2, "grouped">
  ]> {
  let cppNamespace = "::mlir::falcon";
  let genSpecializedAttr = 0;
}
def Falcon_QKVLayoutAttr : EnumAttr<Falcon_Dialect, Falcon_QKVLayout, "qkv_layout"> {
  let assemblyFormat = "`<` $value `>`";
}

// RoPE frequency scaling (spec section 5.3).
def Falcon_RopeScaling : I32EnumAttr<"RopeScaling", "rotary frequency scaling", [
    I32EnumAttrCase<"None", 0, "none">,
    I32EnumAttrCase<"Linear", 1, "linear">,
    I32EnumAttrCase<"Dynamic", 2, "dynamic">
  ]> {
  let cppNamespace = "::mlir::falcon";
  let genSpecializedAttr = 0;
}
def Falcon_RopeScalingAttr : EnumAttr<Falcon_Dialect, Falcon_RopeScaling, "rope_scaling"> {
  let assemblyFormat = "`<` $value `>`";
}

#endif // FALCON_ATTRS_TD
