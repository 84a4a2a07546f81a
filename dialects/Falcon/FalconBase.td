//===- FalconBase.td - falcon dialect definition -----------*- tablegen -*-===//
//
// The `falcon` dialect models Falcon-family decoder-only language models at
// the level of the Hugging Face reference: embedding, LayerNorm, Linear,
// fused-QKV split, rotary / ALiBi position encoding, causal attention with a
// KV cache, GELU, residual adds and the LM head.
//
//===----------------------------------------------------------------------===//

#ifndef FALCON_BASE_TD
#define FALCON_BASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"

def Falcon_Dialect : Dialect {
  let name = "falcon";
  let cppNamespace = "::mlir::falcon";
  let summary = "Model-level operations of the Falcon LLM family";
  let description = [{
    The `falcon` dialect expresses every Falcon variant of Hugging Face's
    `FalconForCausalLM` exactly: falcon-7b (multi-query, parallel block, one
    LayerNorm), falcon-40b/180B (grouped KV, `ln_attn` + `ln_mlp`),
    falcon-11B (grouped KV, one LayerNorm) and falcon-rw (ALiBi, Linear
    biases, sequential block).

    Activations are ranked tensors `[batch, seq, ...]` with dynamic batch and
    sequence sizes; only the model's own sizes (hidden, heads, ffn, vocab) are
    static. Weights never appear as constants: they are named parameters
    (`falcon.param`) that refer to checkpoint tensors by name, and they may be
    stored in a narrower float type (bf16/f16) than the activations they
    combine with.
  }];
  let useDefaultAttributePrinterParser = 1;
  // Every discardable `falcon.*` attribute (on operations and on function
  // arguments) is checked by the dialect: strategy never travels as an
  // unverified string-keyed attribute.
  let hasOperationAttrVerify = 1;
  let hasRegionArgAttrVerify = 1;
  let extraClassDeclaration = [{
    /// The module attribute holding the target (#falcon.cpu_target).
    static constexpr ::llvm::StringLiteral kTargetAttrName = "falcon.target";
    /// A target strategy's decision for one operation (#falcon.lowering_config).
    static constexpr ::llvm::StringLiteral kLoweringConfigAttrName = "falcon.lowering_config";
    /// The quantization a weight-dequantizing generic decodes
    /// (#falcon.weight_encoding of its codes; falcon-quantize-weights).
    static constexpr ::llvm::StringLiteral kDequantizeAttrName = "falcon.dequantize";
    /// The most query rows or keys in one block of the tiled attention
    /// (#falcon.lowering_config's attention_block).
    static constexpr int64_t kMaxAttentionBlock = 4096;
    /// The model configuration (config.json) on the module.
    static constexpr ::llvm::StringLiteral kModelConfigAttrName = "falcon.config";
    /// The packed weight layout bound by falcon-bind-weights.
    static constexpr ::llvm::StringLiteral kWeightLayoutAttrName = "falcon.weight_layout";
    /// The module attribute naming the rank of a parallel plan the module
    /// was sharded for (#falcon.rank_plan, set by falcon-shard).
    static constexpr ::llvm::StringLiteral kRankPlanAttrName = "falcon.rank_plan";
    /// Upstream's `shard.grid` of a plan (shape pp x tp) and its tensor-
    /// parallel axis, over which falcon.all_reduce sums.
    static constexpr ::llvm::StringLiteral kPlanGridName = "falcon_plan";
    static constexpr int16_t kPlanGridTensorAxis = 1;
    /// Argument attributes: the name of an entry point's argument, and the
    /// checkpoint tensor a layer function's weight argument is bound to.
    static constexpr ::llvm::StringLiteral kArgNameAttrName = "falcon.name";
    static constexpr ::llvm::StringLiteral kArgWeightAttrName = "falcon.weight";
  }];
}

class Falcon_Op<string mnemonic, list<Trait> traits = []>
    : Op<Falcon_Dialect, mnemonic, traits>;

#endif // FALCON_BASE_TD
