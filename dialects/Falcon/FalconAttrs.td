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

//===----------------------------------------------------------------------===//
// Target and lowering configuration
//===----------------------------------------------------------------------===//

class Falcon_Attr<string name, string attrMnemonic> : AttrDef<Falcon_Dialect, name> {
  let mnemonic = attrMnemonic;
}

def Falcon_CPUTargetAttr : Falcon_Attr<"CPUTarget", "cpu_target"> {
  let summary = "the CPU an artifact's code is generated for";
  let description = [{
    Attached to the module as `falcon.target` by `falcon-cpu-attach-target`
    (what `falcon-compile --target=cpu --mcpu=... --mtriple=...` runs), and
    read only by the CPU strategy pass and the code emitter: the
    target-neutral lowering never looks at it.

    * `triple`: the LLVM target triple (`x86_64-pc-linux-gnu`,
      `aarch64-linux-gnu`, ...);
    * `cpu`: the LLVM CPU name (`znver4`, `x86-64-v3`, `generic`, ...);
    * `features`: the ISA features that matter to the generated code, each
      `+name` or `-name` in LLVM's spelling (`+avx2,+fma,-avx512f`): the code
      generator is given exactly these, and the artifact's manifest lists the
      `+` ones as what a machine must have to run it;
    * `vector_bits`: the widest vector register the code may use (128, 256
      or 512);
    * `vector_registers`: how many of them there are (16 with AVX2, 32 with
      AVX-512 or on AArch64), which bounds a register tile;
    * `threads`: the blocks parallel loops are split into (the cores of the
      machine the code is for; fixed at compile time so that results do not
      depend on the thread count at run time).

    ```mlir
    module attributes {falcon.target = #falcon.cpu_target<triple = "x86_64-pc-linux-gnu",
        cpu = "x86-64-v3", features = "+avx,+avx2,+fma,-avx512f", vector_bits = 256,
        vector_registers = 16, threads = 8>} {}
    ```
  }];
  let parameters = (ins StringRefParameter<"LLVM target triple">:$triple,
                        StringRefParameter<"LLVM CPU name">:$cpu,
                        StringRefParameter<"'+f,-g' ISA features">:$features,
                        "int64_t":$vector_bits,
                        "int64_t":$vector_registers,
                        "int64_t":$threads);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// Whether `features` enables `name` (e.g. "avx512f").
    bool hasFeature(::llvm::StringRef name) const;
    /// The enabled features (the `+` entries, without the sign).
    ::llvm::SmallVector<::llvm::StringRef> getRequiredFeatures() const;
  }];
}

// A list of integers printed and parsed in square brackets, `[8, 32, 256]`.
def Falcon_BracketedI64List : OptionalArrayRefParameter<"int64_t"> {
  let parser = [{ [&]() -> ::mlir::FailureOr<::llvm::SmallVector<int64_t>> {
    ::llvm::SmallVector<int64_t> values;
    if ($_parser.parseCommaSeparatedList(::mlir::AsmParser::Delimiter::Square, [&] {
          return $_parser.parseInteger(values.emplace_back());
        }))
      return ::mlir::failure();
    return values;
  }() }];
  let printer = [{
    $_printer << '[';
    ::llvm::interleaveComma($_self, $_printer);
    $_printer << ']';
  }];
}

def Falcon_LoweringConfigAttr : Falcon_Attr<"LoweringConfig", "lowering_config"> {
  let summary = "how a target strategy wants one operation tiled";
  let description = [{
    Written by a target's strategy pass (`falcon-cpu-select-lowering-strategy`)
    on the operations it has decided for, as `falcon.lowering_config`, and
    consumed by the generic tiling passes; no other channel carries strategy
    between passes.

    * `threads`: the blocks the operation is split into for threads (1: none);
    * `thread_dim`: the loop dimension split over threads (-1: the
      operation's own rule, as for projections, whose prefill splits output
      columns and whose decode splits the reduction);
    * `register_tile`: `[rows, cols, depth]` of a projection's register tile
      (sequence rows, output columns, input features per block); empty for
      other operations;
    * `attention_block`: `[rows, keys]` of one block of `falcon.attention`'s
      tiled online softmax (query rows, keys whose scores exist at once);
      empty: the decomposition's defaults (64 x 512 on the CPU);
    * `decode_activation_bits`: 8 when a projection whose weight is
      quantized quantizes its activation rows at decode to int8 (blocks of
      16 or 32 inputs, one f32 scale each) and sums integer dot products
      (`vpdpbusd`); 0 (the default): its weight is dequantized to f32;
    * `bf16_dot_products`: a projection whose activations and weight are both
      bf16 sums its register tiles with AVX512-BF16's `vdpbf16ps` (pairs of
      inputs, f32 sums); false (the default): each operand is widened to f32
      for an FMA.

    ```mlir
    linalg.generic {..., falcon.lowering_config = #falcon.lowering_config<threads = 2, register_tile = [8, 32, 256]>}
    falcon.attention ... {falcon.lowering_config = #falcon.lowering_config<threads = 2, thread_dim = 1, attention_block = [64, 512]>}
    linalg.generic {..., falcon.lowering_config = #falcon.lowering_config<threads = 2, thread_dim = 1>}
    ```
  }];
  let parameters = (ins "int64_t":$threads,
                        DefaultValuedParameter<"int64_t", "-1">:$thread_dim,
                        Falcon_BracketedI64List:$register_tile,
                        Falcon_BracketedI64List:$attention_block,
                        DefaultValuedParameter<"int64_t", "0">:$decode_activation_bits,
                        DefaultValuedParameter<"bool", "false">:$bf16_dot_products);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

//===----------------------------------------------------------------------===//
// Model configuration
//===----------------------------------------------------------------------===//

def Falcon_ModelConfigAttr : Falcon_Attr<"ModelConfig", "model_config"> {
  let summary = "the model's hyper-parameters (config.json), on the module";
  let description = [{
    What the importer derived from `config.json` (spec section 2), set on the
    module as `falcon.config`: sizes, the fused-QKV layout, the block kind,
    position encoding, biases, tied head, LayerNorm epsilon. Passes that need
    a model-wide fact (the layer count for the weight layout) read it here.

    ```mlir
    module attributes {falcon.config = #falcon.model_config<vocab_size = 65024,
        hidden_size = 4544, num_hidden_layers = 32, num_attention_heads = 71,
        num_kv_heads = 1, head_dim = 64, ffn_hidden_size = 18176,
        qkv_layout = <multi_query>, parallel_attn = true,
        layer_norms_per_block = 1, alibi = false, bias = false,
        tie_word_embeddings = true, layer_norm_epsilon = 1.000000e-05 : f64,
        max_position_embeddings = 2048>} {}
    ```
  }];
  let parameters = (ins "int64_t":$vocab_size, "int64_t":$hidden_size,
                        "int64_t":$num_hidden_layers, "int64_t":$num_attention_heads,
                        "int64_t":$num_kv_heads, "int64_t":$head_dim,
                        "int64_t":$ffn_hidden_size, "QKVLayoutAttr":$qkv_layout,
                        "::mlir::BoolAttr":$parallel_attn, "int64_t":$layer_norms_per_block,
                        "::mlir::BoolAttr":$alibi, "::mlir::BoolAttr":$bias,
                        "::mlir::BoolAttr":$tie_word_embeddings,
                        "::mlir::FloatAttr":$layer_norm_epsilon,
                        "int64_t":$max_position_embeddings);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

//===----------------------------------------------------------------------===//
// Weight encoding
//===----------------------------------------------------------------------===//

def Falcon_Quantization : I32EnumAttr<"Quantization", "weight quantization scheme", [
    I32EnumAttrCase<"None", 0, "none">,
    I32EnumAttrCase<"Int8", 1, "int8">,
    I32EnumAttrCase<"Int4", 2, "int4">
  ]> {
  let cppNamespace = "::mlir::falcon";
  let genSpecializedAttr = 0;
}

def Falcon_QuantizedPart : I32EnumAttr<"QuantizedPart", "a tensor of a quantized weight", [
    I32EnumAttrCase<"Codes", 0, "codes">,
    I32EnumAttrCase<"Scales", 1, "scales">,
    I32EnumAttrCase<"ZeroPoints", 2, "zero_points">,
    I32EnumAttrCase<"InputOrder", 3, "input_order">
  ]> {
  let cppNamespace = "::mlir::falcon";
  let genSpecializedAttr = 0;
}

def Falcon_WeightEncodingAttr : Falcon_Attr<"WeightEncoding", "weight_encoding"> {
  let summary = "how a checkpoint tensor becomes the bytes a kernel reads";
  let description = [{
    Carried by `falcon.param` as `encoding`. Applied in this order to the
    checkpoint tensor:

    1. a shard (at most one of the two): `slice = [dim, begin, size]`, a
       contiguous range of one dimension, or `gather = [dim, i0, i1, ...]`,
       the listed indices of one dimension in that order (uneven tensor-
       parallel shards: falcon-7b's 71 query heads split over ranks);
    2. `permutation`, a transpose of the dimensions (`[1, 0]`: a projection
       weight packed `[in, out]` for the CPU kernels);
    3. `quantization` (`int8`, `int4`) of the [inputs, outputs] tensor the
       permutation made, round to nearest in groups of `group_size` inputs,
       packed `pack` values per byte (2 for int4); the param is one `part` of
       it: the signed `codes` ([inputs / pack, outputs] i8; int4 inputs 2i
       and 2i + 1 in the low and high nibble), the `scales` or, unless
       `symmetric`, the `zero_points` ([inputs / group_size, outputs] f16). A
       value is (code - zero point) * scale. A GPTQ act-order checkpoint's
       weight also has an `input_order` ([inputs] i32): the parts' input j is
       the checkpoint's input `input_order[j]` (its inputs sorted by group),
       and the projection reads its activations in that order.

    The param's result type is the encoded tensor (after shard, permutation
    and quantization). One library, `include/falcon/Support/WeightTransform.h`,
    turns the encoding into sizes and offsets and writes the bytes.

    ```mlir
    %w = falcon.param "transformer.h.{}.mlp.dense_4h_to_h.weight"[%i]
        {encoding = #falcon.weight_encoding<permutation = [1, 0]>} : tensor<18176x4544xbf16>
    %q = falcon.param "transformer.h.{}.self_attention.query_key_value.weight"[%i]
        {encoding = #falcon.weight_encoding<slice = [0, 0, 2336]>} : tensor<2336x4544xbf16>
    %c = falcon.param "transformer.h.{}.mlp.dense_4h_to_h.weight"[%i]
        {encoding = #falcon.weight_encoding<permutation = [1, 0], quantization = int4,
                                            group_size = 128, pack = 2>} : tensor<9088x4544xi8>
    %s = falcon.param "transformer.h.{}.mlp.dense_4h_to_h.weight"[%i]
        {encoding = #falcon.weight_encoding<permutation = [1, 0], quantization = int4,
                                            group_size = 128, pack = 2, part = scales>}
        : tensor<142x4544xf16>
    ```
  }];
  let parameters = (ins Falcon_BracketedI64List:$slice,
                        Falcon_BracketedI64List:$gather,
                        Falcon_BracketedI64List:$permutation,
                        DefaultValuedParameter<"Quantization", "Quantization::None">:$quantization,
                        DefaultValuedParameter<"int64_t", "0">:$group_size,
                        DefaultValuedParameter<"int64_t", "1">:$pack,
                        DefaultValuedParameter<"bool", "true">:$symmetric,
                        DefaultValuedParameter<"QuantizedPart", "QuantizedPart::Codes">:$part);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// The encoded shape of a checkpoint tensor of `shape`, or failure (with
    /// `emitError`'s diagnostic) when the encoding does not apply to it.
    ::mlir::FailureOr<::llvm::SmallVector<int64_t>>
    getEncodedShape(::llvm::ArrayRef<int64_t> shape,
                    ::llvm::function_ref<::mlir::InFlightDiagnostic()> emitError) const;
    /// A permutation of two dimensions, swapped ([1, 0]).
    bool isTranspose() const;
  }];
}

//===----------------------------------------------------------------------===//
// Weight layout (what falcon-bind-weights compiled in)
//===----------------------------------------------------------------------===//

def Falcon_WeightSlotAttr : Falcon_Attr<"WeightSlot", "weight_slot"> {
  let summary = "where one weight lives in a rank's weight file";
  let description = [{
    One distinct `falcon.param` (name and encoding) as bound into the code:
    its encoded tensor type, the byte offset of its copy (of layer 0 for a
    per-layer weight, whose name holds `{}`), the distance between layers'
    copies and the bytes of one copy. Offsets come from the weight-transform
    library's `layoutWeightFiles`, the same call the artifact writer's
    placement is checked against.

    ```mlir
    #falcon.weight_slot<name = "transformer.h.{}.ln_attn.weight",
        type = tensor<4544xbf16>, offset = 128, layer_stride = 9088,
        bytes = 9088, per_layer = true>
    ```
  }];
  let parameters = (ins StringRefParameter<"checkpoint tensor name">:$name,
                        "::mlir::RankedTensorType":$type,
                        "int64_t":$offset,
                        "int64_t":$layer_stride,
                        "int64_t":$bytes,
                        DefaultValuedParameter<"bool", "false">:$per_layer,
                        OptionalParameter<"WeightEncodingAttr">:$encoding);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def Falcon_WeightLayoutAttr : Falcon_Attr<"WeightLayout", "weight_layout"> {
  let summary = "the packed weight file that falcon-bind-weights compiled in";
  let description = [{
    Set on the module as `falcon.weight_layout` by `falcon-bind-weights`, for
    the artifact writer: the layer count that per-layer slots are repeated
    for, the file's size and its `#falcon.weight_slot`s in file order.
  }];
  let parameters = (ins "int64_t":$num_layers, "int64_t":$total_bytes,
                        "::mlir::ArrayAttr":$slots);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

//===----------------------------------------------------------------------===//
// Parallel plan (what falcon-shard made of the module)
//===----------------------------------------------------------------------===//

def Falcon_RankPlanAttr : Falcon_Attr<"RankPlan", "rank_plan"> {
  let summary = "the rank of a tensor x pipeline parallel plan a module runs";
  let description = [{
    Set on the module as `falcon.rank_plan` by `falcon-shard`: the plan
    (`tp` x `pp` ranks; rank r is stage `r / tp`, tensor slot `r % tp`) and
    this rank's share of it. The stage runs checkpoint layers
    `[first_layer, first_layer + num_layers)`; its weight file holds only
    those (copy i is checkpoint layer `first_layer + i`). The slot holds query
    heads `[first_head, first_head + num_heads)`, KV heads
    `[first_kv_head, first_kv_head + num_kv_heads)` (`kv_replicated` when
    other slots hold the same KV heads: more slots than KV heads), FFN
    columns `[ffn_offset, ffn_offset + ffn_size)` and vocabulary rows
    `[vocab_offset, vocab_offset + vocab_size)`. The uneven sizes of an
    uneven plan (falcon-7b's 71 heads on tp 2: 36 and 35) are visible here and
    in the sliced types.

    ```mlir
    module attributes {falcon.rank_plan = #falcon.rank_plan<tp = 2, pp = 1,
        rank = 1, first_layer = 0, num_layers = 32, first_head = 36,
        num_heads = 35, first_kv_head = 0, num_kv_heads = 1,
        kv_replicated = true, ffn_offset = 9088, ffn_size = 9088,
        vocab_offset = 32512, vocab_size = 32512>} {}
    ```
  }];
  let parameters = (ins "int64_t":$tp, "int64_t":$pp, "int64_t":$rank,
                        "int64_t":$first_layer, "int64_t":$num_layers,
                        "int64_t":$first_head, "int64_t":$num_heads,
                        "int64_t":$first_kv_head, "int64_t":$num_kv_heads,
                        "bool":$kv_replicated,
                        "int64_t":$ffn_offset, "int64_t":$ffn_size,
                        "int64_t":$vocab_offset, "int64_t":$vocab_size);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    int64_t getStage() const { return getRank() / getTp(); }
    int64_t getSlot() const { return getRank() % getTp(); }
    bool isFirstStage() const { return getStage() == 0; }
    bool isLastStage() const { return getStage() == getPp() - 1; }
  }];
}

#endif // FALCON_ATTRS_TD
