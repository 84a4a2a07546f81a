//===- FalconConfig.cpp - Hugging Face Falcon config.json -----------------===//
//
// Accepts the Hugging Face keys, the legacy RW keys (n_embed, n_layer, n_head,
// n_head_kv) and the transformers-v5 `rope_parameters` dictionary, and rejects
// the combinations on which Hugging Face itself crashes (spec section 2).
//
//===----------------------------------------------------------------------===//

#include "falcon/Import/FalconConfig.h"
#include "falcon/Support/Json.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"

#include <algorithm>
#include <tuple>

using namespace mlir;
using namespace mlir::falcon;
using llvm::Error;
using llvm::Expected;
using llvm::StringRef;

int64_t FalconConfig::kvHeads() const {
  if (newDecoderArchitecture)
    return numKVHeadsField;
  return multiQuery ? 1 : numHeads;
}

QKVLayout FalconConfig::qkvLayout() const {
  if (newDecoderArchitecture)
    return QKVLayout::Grouped;
  return multiQuery ? QKVLayout::MultiQuery : QKVLayout::PerHead;
}

int64_t FalconConfig::qkvOutFeatures() const {
  return getFusedQKVWidth(qkvLayout(), numHeads, kvHeads(), headDim());
}

BlockKind FalconConfig::blockKind() const {
  if (!parallelAttn)
    return BlockKind::Sequential;
  int64_t numNorms = numLnInParallelAttn.value_or(newDecoderArchitecture ? 2 : 1);
  return numNorms == 2 ? BlockKind::ParallelTwoNorms
                       : BlockKind::ParallelSharedNorm;
}

namespace {
/// Reads typed values from the config object; the first error wins and is
/// reported with the file name.
class ConfigReader {
public:
  ConfigReader(const llvm::json::Object &object, StringRef fileName)
      : object(object), fileName(fileName) {}

  /// The first of `keys` present (HF name first, then legacy aliases).
  const llvm::json::Value *find(std::initializer_list<StringRef> keys,
                                StringRef *foundKey = nullptr) const {
    for (StringRef key : keys)
      if (const llvm::json::Value *value = object.get(key)) {
        if (foundKey)
          *foundKey = key;
        return value;
      }
    return nullptr;
  }

  bool isNull(std::initializer_list<StringRef> keys) const {
    const llvm::json::Value *value = find(keys);
    return !value || value->kind() == llvm::json::Value::Null;
  }

  void readInt(std::initializer_list<StringRef> keys, int64_t &out,
               bool required) {
    StringRef key;
    const llvm::json::Value *value = find(keys, &key);
    if (!value || value->kind() == llvm::json::Value::Null) {
      if (required)
        fail(llvm::formatv("missing required key '{0}'", *keys.begin()));
      return;
    }
    std::optional<int64_t> integer = ::falcon::getAsInt64(*value);
    if (!integer)
      return fail(llvm::formatv("key '{0}' must be an integer", key));
    out = *integer;
  }

  void readOptionalInt(std::initializer_list<StringRef> keys,
                       std::optional<int64_t> &out) {
    if (isNull(keys))
      return;
    int64_t value = 0;
    readInt(keys, value, /*required=*/false);
    out = value;
  }

  void readBool(std::initializer_list<StringRef> keys, bool &out) {
    StringRef key;
    const llvm::json::Value *value = find(keys, &key);
    if (!value || value->kind() == llvm::json::Value::Null)
      return;
    std::optional<bool> boolean = value->getAsBoolean();
    if (!boolean)
      return fail(llvm::formatv("key '{0}' must be a boolean", key));
    out = *boolean;
  }

  void readDouble(const llvm::json::Object &from, StringRef key, double &out) {
    const llvm::json::Value *value = from.get(key);
    if (!value || value->kind() == llvm::json::Value::Null)
      return;
    std::optional<double> number = value->getAsNumber();
    if (!number)
      return fail(llvm::formatv("key '{0}' must be a number", key));
    out = *number;
  }

  void readString(StringRef key, std::string &out) {
    const llvm::json::Value *value = object.get(key);
    if (!value || value->kind() == llvm::json::Value::Null)
      return;
    std::optional<StringRef> string = value->getAsString();
    if (!string)
      return fail(llvm::formatv("key '{0}' must be a string", key));
    out = string->str();
  }

  /// Reads `rope_type`/`type` and `factor` from a rope_scaling or
  /// rope_parameters dictionary.
  void readRopeScaling(const llvm::json::Object &rope, FalconConfig &config) {
    std::optional<StringRef> type = rope.getString("rope_type");
    if (!type)
      type = rope.getString("type");
    if (!type || *type == "default") {
      config.ropeScaling = RopeScaling::None;
    } else if (*type == "linear") {
      config.ropeScaling = RopeScaling::Linear;
    } else if (*type == "dynamic") {
      config.ropeScaling = RopeScaling::Dynamic;
    } else {
      return fail(llvm::formatv("unsupported rope scaling type '{0}' (expected "
                                "'default', 'linear' or 'dynamic')",
                                *type));
    }
    if (config.ropeScaling != RopeScaling::None && !rope.getNumber("factor"))
      return fail(llvm::formatv("rope scaling '{0}' needs a numeric 'factor'", *type));
    readDouble(rope, "factor", config.ropeFactor);
  }

  void fail(const llvm::Twine &message) {
    if (!error)
      error = message.str();
  }

  Error takeError() {
    if (!error)
      return Error::success();
    return llvm::createStringError(fileName + ": " + *error);
  }

  const llvm::json::Object &object;

private:
  std::string fileName;
  std::optional<std::string> error;
};
} // namespace

/// Reads a `quantization_config` (GPTQ or AWQ, as transformers writes it);
/// what the compiler cannot import as it is fails `reader`.
static void readCheckpointQuantization(const llvm::json::Object &settings, ConfigReader &reader,
                                       FalconConfig &config) {
  // Its errors read "quantization_config: ..." after the file name.
  ConfigReader nested(settings, "quantization_config");
  std::string method;
  nested.readString("quant_method", method);
  CheckpointQuantization quantization;
  int64_t bits = 4, groupSize = 128;
  nested.readInt({"bits", "w_bit"}, bits, /*required=*/true);
  nested.readInt({"group_size", "q_group_size"}, groupSize, /*required=*/true);
  if (Error error = nested.takeError())
    return reader.fail(llvm::toString(std::move(error)));
  auto fail = [&](const llvm::Twine &message) {
    reader.fail("quantization_config: " + message);
  };
  if (method == "gptq") {
    quantization.method = CheckpointQuantization::Method::GPTQ;
    nested.readBool({"desc_act"}, quantization.actOrder);
    std::string format = "gptq";
    nested.readString("checkpoint_format", format);
    if (format != "gptq" && format != "gptq_v2")
      return fail(llvm::formatv("unsupported GPTQ checkpoint_format '{0}' (expected 'gptq' "
                                "or 'gptq_v2')",
                                format));
    quantization.zeroPointOffset = format == "gptq" ? 1 : 0;
    if (bits != 4 && bits != 8)
      return fail(llvm::formatv("GPTQ with {0} bits is not supported (4 or 8)", bits));
  } else if (method == "awq") {
    quantization.method = CheckpointQuantization::Method::AWQ;
    std::string version = "gemm";
    nested.readString("version", version);
    if (StringRef(version).lower() != "gemm")
      return fail(llvm::formatv("AWQ version '{0}' is not supported (only the GEMM packing)",
                                version));
    bool zeroPoint = true;
    nested.readBool({"zero_point"}, zeroPoint);
    if (!zeroPoint)
      return fail("AWQ without zero points is not supported");
    if (bits != 4)
      return fail(llvm::formatv("AWQ with {0} bits is not supported (4)", bits));
  } else {
    return fail(llvm::formatv("quant_method '{0}' is not supported (gptq or awq)", method));
  }
  if (Error error = nested.takeError())
    return reader.fail(llvm::toString(std::move(error)));
  if (groupSize != 32 && groupSize != 64 && groupSize != 128)
    return fail(llvm::formatv("group_size {0} is not supported (32, 64 or 128)", groupSize));
  quantization.bits = unsigned(bits);
  quantization.groupSize = groupSize;
  config.quantization = quantization;
}

static void validate(const FalconConfig &config, ConfigReader &reader) {
  auto fail = [&](const llvm::Twine &message) { reader.fail(message); };
  for (auto [name, value] : {std::pair<StringRef, int64_t>{"vocab_size", config.vocabSize},
                             {"hidden_size", config.hiddenSize},
                             {"num_hidden_layers", config.numLayers},
                             {"num_attention_heads", config.numHeads},
                             {"num_kv_heads", config.numKVHeadsField},
                             {"ffn_hidden_size", config.ffnHiddenSize},
                             {"max_position_embeddings", config.maxPositionEmbeddings}})
    if (value <= 0)
      return fail(llvm::formatv("'{0}' must be positive, found {1}", name, value));
  // Bounds far above any real model (falcon-180B: hidden 14848, 80 layers,
  // vocab 65024) under which every size and byte count fits in 64 bits.
  for (auto [name, value, limit] :
       {std::tuple<StringRef, int64_t, int64_t>{"vocab_size", config.vocabSize, 1 << 24},
        {"hidden_size", config.hiddenSize, 1 << 20},
        {"ffn_hidden_size", config.ffnHiddenSize, 1 << 22},
        {"num_hidden_layers", config.numLayers, 1 << 16},
        {"max_position_embeddings", config.maxPositionEmbeddings, 1 << 24}})
    if (value > limit)
      return fail(llvm::formatv("'{0}' is {1}, above the supported {2}", name, value, limit));
  if (config.headDimField && (*config.headDimField <= 0 || *config.headDimField > (1 << 16)))
    return fail(llvm::formatv("'head_dim' must be in [1, 65536], found {0}",
                              *config.headDimField));
  if (config.numHeads > (1 << 16))
    return fail(llvm::formatv("'num_attention_heads' is {0}, above the supported 65536",
                              config.numHeads));
  // With head_dim stated the attention width is no longer hidden_size: the
  // same bound, so that every size stays as far from overflowing.
  if (config.headDimField && config.numHeads * *config.headDimField > (1 << 20))
    return fail(llvm::formatv("num_attention_heads x head_dim is {0}, above the supported "
                              "1048576",
                              config.numHeads * *config.headDimField));
  if (!config.headDimField && config.hiddenSize % config.numHeads != 0)
    return fail(llvm::formatv("hidden_size ({0}) is not divisible by "
                              "num_attention_heads ({1})",
                              config.hiddenSize, config.numHeads));
  if (config.newDecoderArchitecture && config.numHeads % config.numKVHeadsField != 0)
    return fail(llvm::formatv("num_attention_heads ({0}) is not divisible by "
                              "num_kv_heads ({1})",
                              config.numHeads, config.numKVHeadsField));
  if (config.newDecoderArchitecture && !config.parallelAttn)
    return fail("new_decoder_architecture=true requires parallel_attn=true "
                "(Hugging Face reads a LayerNorm it never created otherwise)");
  if (config.numLnInParallelAttn) {
    int64_t numNorms = *config.numLnInParallelAttn;
    if (config.newDecoderArchitecture && numNorms != 1 && numNorms != 2)
      return fail(llvm::formatv("num_ln_in_parallel_attn must be 1 or 2 with "
                                "new_decoder_architecture, found {0}",
                                numNorms));
    if (!config.newDecoderArchitecture && numNorms == 2)
      return fail("num_ln_in_parallel_attn=2 requires "
                  "new_decoder_architecture=true");
  }
  if (config.qkvLayout() == QKVLayout::PerHead &&
      config.numKVHeadsField != config.numHeads)
    return fail(llvm::formatv("the per-head QKV layout (multi_query=false, "
                              "new_decoder_architecture=false) needs "
                              "num_kv_heads ({0}) equal to "
                              "num_attention_heads ({1})",
                              config.numKVHeadsField, config.numHeads));
  if (!config.alibi && config.headDim() % 2 != 0)
    return fail(llvm::formatv("rotary embeddings need an even head size, found "
                              "{0} (hidden_size / num_attention_heads)",
                              config.headDim()));
  if (config.layerNormEpsilon <= 0)
    return fail(llvm::formatv("layer_norm_epsilon must be positive, found {0}",
                              config.layerNormEpsilon));
  if (config.ropeTheta <= 0 || config.ropeFactor <= 0)
    return fail("rope_theta and the rope scaling factor must be positive");
}

/// The `model_type` values of Falcon checkpoints: "falcon" (transformers),
/// "RefinedWeb"/"RefinedWebModel" (the original remote-code releases).
static constexpr StringRef kFalconModelTypes[] = {"falcon", "RefinedWeb",
                                                  "RefinedWebModel"};
/// The model classes `architectures` may name: transformers' Falcon classes
/// and the remote-code RW ones. FalconMamba and Falcon-H1 are other
/// architectures (model_type falcon_mamba, falcon_h1) and are not here.
static constexpr StringRef kFalconArchitectures[] = {
    "FalconForCausalLM",          "FalconModel",
    "FalconForSequenceClassification", "FalconForTokenClassification",
    "FalconForQuestionAnswering", "RWForCausalLM",
    "RWModel",                    "RWForSequenceClassification",
    "RWForTokenClassification",   "RWForQuestionAnswering"};

/// Refuses a config of another model family: a `model_type` or an
/// `architectures` entry that is not Falcon's. Both keys are optional (small
/// hand-written configs omit them).
static Error checkModelFamily(const llvm::json::Object &object, StringRef fileName) {
  auto refuse = [&](const llvm::Twine &what) {
    return llvm::createStringError(fileName + ": " + what +
                                   "; falcon-mlir compiles Falcon checkpoints only");
  };
  if (const llvm::json::Value *value = object.get("model_type");
      value && value->kind() != llvm::json::Value::Null) {
    std::optional<StringRef> type = value->getAsString();
    if (!type)
      return llvm::createStringError(fileName + ": key 'model_type' must be a string");
    if (!llvm::is_contained(kFalconModelTypes, *type))
      return refuse("model_type '" + *type +
                    "' is not a Falcon model (expected 'falcon')");
  }
  if (const llvm::json::Value *value = object.get("architectures");
      value && value->kind() != llvm::json::Value::Null) {
    const llvm::json::Array *array = value->getAsArray();
    if (!array)
      return llvm::createStringError(fileName +
                                     ": key 'architectures' must be an array of strings");
    for (const llvm::json::Value &entry : *array) {
      std::optional<StringRef> name = entry.getAsString();
      if (!name)
        return llvm::createStringError(
            fileName + ": key 'architectures' must be an array of strings");
      if (!llvm::is_contained(kFalconArchitectures, *name))
        return refuse("architectures names '" + *name +
                      "', not a Falcon model class (expected 'FalconForCausalLM')");
    }
  }
  return Error::success();
}

Expected<FalconConfig> mlir::falcon::parseFalconConfig(StringRef text,
                                                       StringRef fileName) {
  Expected<llvm::json::Value> json = ::falcon::parseJson(text);
  if (!json)
    return llvm::createStringError(fileName + ": invalid JSON: " +
                                       llvm::toString(json.takeError()));
  const llvm::json::Object *object = json->getAsObject();
  if (!object)
    return llvm::createStringError(fileName + ": expected a JSON object");

  // Another family's config (Llama, Mistral, Falcon-Mamba...) often has the
  // same four required keys and would otherwise import as a wrong Falcon.
  if (Error error = checkModelFamily(*object, fileName))
    return std::move(error);

  FalconConfig config;
  ConfigReader reader(*object, fileName);
  reader.readInt({"vocab_size"}, config.vocabSize, /*required=*/true);
  reader.readInt({"hidden_size", "n_embed"}, config.hiddenSize, true);
  // As in transformers' FalconConfig, a given n_embed wins over hidden_size.
  if (!reader.isNull({"n_embed"}))
    reader.readInt({"n_embed"}, config.hiddenSize, true);
  reader.readInt({"num_hidden_layers", "n_layer"}, config.numLayers, true);
  reader.readInt({"num_attention_heads", "n_head"}, config.numHeads, true);
  reader.readOptionalInt({"head_dim"}, config.headDimField);
  config.numKVHeadsField = config.numHeads;
  reader.readInt({"num_kv_heads", "n_head_kv"}, config.numKVHeadsField, false);
  // 4x hidden_size, saturated: validate() rejects the oversized hidden_size.
  config.ffnHiddenSize = 4 * std::clamp<int64_t>(config.hiddenSize, -(INT64_MAX / 4), INT64_MAX / 4);
  reader.readInt({"ffn_hidden_size"}, config.ffnHiddenSize, false);
  reader.readBool({"multi_query"}, config.multiQuery);
  // The RW -> HF conversion turns `n_head_kv` into num_kv_heads plus
  // new_decoder_architecture=true (convert_custom_code_checkpoint.py).
  config.newDecoderArchitecture = !reader.isNull({"n_head_kv"});
  reader.readBool({"new_decoder_architecture"}, config.newDecoderArchitecture);
  reader.readBool({"parallel_attn"}, config.parallelAttn);
  reader.readOptionalInt({"num_ln_in_parallel_attn"}, config.numLnInParallelAttn);
  reader.readBool({"alibi"}, config.alibi);
  reader.readBool({"bias"}, config.bias);
  reader.readBool({"tie_word_embeddings"}, config.tieWordEmbeddings);
  reader.readDouble(*object, "layer_norm_epsilon", config.layerNormEpsilon);
  reader.readInt({"max_position_embeddings"}, config.maxPositionEmbeddings, false);
  reader.readString("torch_dtype", config.torchDtype);
  reader.readString("dtype", config.torchDtype); // transformers v5 spelling
  reader.readDouble(*object, "rope_theta", config.ropeTheta);
  if (const llvm::json::Value *scaling = object->get("rope_scaling");
      scaling && scaling->kind() != llvm::json::Value::Null) {
    if (const llvm::json::Object *rope = scaling->getAsObject())
      reader.readRopeScaling(*rope, config);
    else
      reader.fail("key 'rope_scaling' must be an object or null");
  }
  // transformers v5 keeps theta and scaling in `rope_parameters`.
  if (const llvm::json::Value *params = object->get("rope_parameters");
      params && params->kind() != llvm::json::Value::Null) {
    if (const llvm::json::Object *rope = params->getAsObject()) {
      reader.readDouble(*rope, "rope_theta", config.ropeTheta);
      reader.readRopeScaling(*rope, config);
    } else {
      reader.fail("key 'rope_parameters' must be an object or null");
    }
  }
  if (const llvm::json::Value *quantization = object->get("quantization_config");
      quantization && quantization->kind() != llvm::json::Value::Null) {
    if (const llvm::json::Object *settings = quantization->getAsObject())
      readCheckpointQuantization(*settings, reader, config);
    else
      reader.fail("key 'quantization_config' must be an object or null");
  }
  std::string activation = "gelu";
  reader.readString("activation", activation);
  if (activation != "gelu")
    reader.fail(llvm::formatv("unsupported activation '{0}' (Falcon uses the "
                              "exact erf 'gelu')",
                              activation));
  if (config.torchDtype != "bfloat16" && config.torchDtype != "float16" &&
      config.torchDtype != "float32")
    reader.fail(llvm::formatv("unsupported torch_dtype '{0}' (expected "
                              "bfloat16, float16 or float32)",
                              config.torchDtype));
  if (Error error = reader.takeError())
    return std::move(error);
  validate(config, reader);
  if (Error error = reader.takeError())
    return std::move(error);
  return config;
}

Expected<FalconConfig> mlir::falcon::loadFalconConfig(StringRef path) {
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> buffer =
      llvm::MemoryBuffer::getFile(path, /*IsText=*/true);
  if (!buffer)
    return llvm::createStringError(buffer.getError(), path + ": cannot read: " +
                                                          buffer.getError().message());
  return parseFalconConfig((*buffer)->getBuffer(), path);
}

int64_t WeightSpec::numElements() const {
  int64_t count = 1;
  for (int64_t size : shape)
    count *= size;
  return count;
}

std::string WeightSpec::nameForLayer(int64_t layer) const {
  std::string result = name;
  size_t at = result.find("{}");
  result.replace(at, 2, std::to_string(layer));
  return result;
}

std::vector<WeightSpec>
mlir::falcon::getWeightSpecs(const FalconConfig &config) {
  int64_t h = config.hiddenSize, f = config.ffnHiddenSize;
  std::vector<WeightSpec> specs;
  specs.push_back({"transformer.word_embeddings.weight", {config.vocabSize, h}});
  auto addNorm = [&](StringRef module) {
    for (StringRef part : {"weight", "bias"})
      specs.push_back({llvm::formatv("transformer.h.{{}.{0}.{1}", module, part).str(),
                       {h}, /*perLayer=*/true});
  };
  auto addLinear = [&](StringRef module, int64_t out, int64_t in) {
    std::string prefix = "transformer.h.{}." + module.str();
    specs.push_back({prefix + ".weight", {out, in}, /*perLayer=*/true, /*projection=*/true});
    if (config.bias)
      specs.push_back({prefix + ".bias", {out}, true});
  };
  switch (config.blockKind()) {
  case BlockKind::Sequential:
    addNorm("input_layernorm");
    addNorm("post_attention_layernorm");
    break;
  case BlockKind::ParallelSharedNorm:
    addNorm("input_layernorm");
    break;
  case BlockKind::ParallelTwoNorms:
    addNorm("ln_attn");
    addNorm("ln_mlp");
    break;
  }
  addLinear("self_attention.query_key_value", config.qkvOutFeatures(), h);
  addLinear("self_attention.dense", h, config.attentionWidth());
  addLinear("mlp.dense_h_to_4h", f, h);
  addLinear("mlp.dense_4h_to_h", h, f);
  specs.push_back({"transformer.ln_f.weight", {h}});
  specs.push_back({"transformer.ln_f.bias", {h}});
  if (!config.tieWordEmbeddings)
    specs.push_back({"lm_head.weight", {config.vocabSize, h}});
  return specs;
}

int64_t mlir::falcon::getParameterCount(const FalconConfig &config) {
  int64_t count = 0;
  for (const WeightSpec &spec : getWeightSpecs(config))
    count += spec.numElements() * (spec.perLayer ? config.numLayers : 1);
  return count;
}
