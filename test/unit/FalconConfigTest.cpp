//===- FalconConfigTest.cpp - config.json parsing -------------------------===//

#include "falcon/Import/FalconConfig.h"

#include "gtest/gtest.h"

using namespace mlir::falcon;

namespace {

FalconConfig parseOk(llvm::StringRef text) {
  llvm::Expected<FalconConfig> config = parseFalconConfig(text, "config.json");
  if (!config) {
    ADD_FAILURE() << llvm::toString(config.takeError());
    return {};
  }
  return *config;
}

std::string parseError(llvm::StringRef text) {
  llvm::Expected<FalconConfig> config = parseFalconConfig(text, "config.json");
  if (config)
    return "<no error>";
  return llvm::toString(config.takeError());
}

TEST(FalconConfig, Falcon7bDefaults) {
  FalconConfig config = parseOk(R"({"vocab_size": 65024, "hidden_size": 4544,
      "num_hidden_layers": 32, "num_attention_heads": 71})");
  EXPECT_EQ(config.headDim(), 64);
  EXPECT_EQ(config.kvHeads(), 1);
  EXPECT_EQ(config.qkvLayout(), QKVLayout::MultiQuery);
  EXPECT_EQ(config.qkvOutFeatures(), 4672);
  EXPECT_EQ(config.ffnHiddenSize, 18176);
  EXPECT_EQ(config.blockKind(), BlockKind::ParallelSharedNorm);
  EXPECT_TRUE(config.tieWordEmbeddings);
  EXPECT_EQ(getParameterCount(config), 6921720704);
}

// A pruned model (docs/precision.md, "Structured pruning") states head_dim:
// its query heads no longer tile hidden_size.
TEST(FalconConfig, StatedHeadDimOfAPrunedModel) {
  FalconConfig config = parseOk(R"({"vocab_size": 65024, "hidden_size": 4544,
      "num_hidden_layers": 32, "num_attention_heads": 53, "head_dim": 64,
      "ffn_hidden_size": 13632})");
  EXPECT_EQ(config.headDim(), 64);
  EXPECT_EQ(config.attentionWidth(), 53 * 64);
  EXPECT_EQ(config.qkvOutFeatures(), (53 + 2) * 64);
  std::vector<WeightSpec> specs = getWeightSpecs(config);
  auto dense = llvm::find_if(specs, [](const WeightSpec &spec) {
    return spec.name == "transformer.h.{}.self_attention.dense.weight";
  });
  ASSERT_NE(dense, specs.end());
  EXPECT_EQ(dense->shape, (llvm::SmallVector<int64_t, 2>{4544, 53 * 64}));
  // Without head_dim, the head size is hidden_size / num_attention_heads.
  EXPECT_EQ(parseOk(R"({"vocab_size": 8, "hidden_size": 64, "num_hidden_layers": 1,
      "num_attention_heads": 4})").attentionWidth(), 64);
}

// The fused QKV rows of a set of query heads, per layout (spec section 5.2).
TEST(FalconConfig, FusedQKVRowsOfHeads) {
  auto firstRows = [](QKVLayout layout, int64_t heads, int64_t kv,
                      std::vector<int64_t> queryHeads) {
    std::vector<int64_t> rows = getFusedQKVRows(layout, heads, kv, 2, queryHeads);
    std::vector<int64_t> starts;
    for (size_t at = 0; at < rows.size(); at += 2)
      starts.push_back(rows[at]);
    EXPECT_EQ(rows.size() % 2, 0u);
    return starts;
  };
  // [H + 2, d]: heads 1 and 3 of 5, then k (row 10) and v (row 12).
  EXPECT_EQ(firstRows(QKVLayout::MultiQuery, 5, 1, {1, 3}),
            (std::vector<int64_t>{2, 6, 10, 12}));
  // [K, H/K + 2, d] with 2 groups of 4: head 1 (group 0), heads 4 and 7
  // (group 1), each group's k and v after its queries.
  EXPECT_EQ(firstRows(QKVLayout::Grouped, 8, 2, {1, 4, 7}),
            (std::vector<int64_t>{2, 8, 10, 12, 18, 20, 22}));
  // [H, 3, d]: head 2's q, k, v.
  EXPECT_EQ(firstRows(QKVLayout::PerHead, 4, 4, {2}), (std::vector<int64_t>{12, 14, 16}));
}

TEST(FalconConfig, LegacyRWKeysImplyNewDecoderArchitecture) {
  FalconConfig config = parseOk(R"({"vocab_size": 65024, "n_embed": 8192,
      "n_layer": 60, "n_head": 128, "n_head_kv": 8, "parallel_attn": true})");
  EXPECT_TRUE(config.newDecoderArchitecture);
  EXPECT_EQ(config.kvHeads(), 8);
  EXPECT_EQ(config.qkvLayout(), QKVLayout::Grouped);
  EXPECT_EQ(config.qkvOutFeatures(), 9216);
  EXPECT_EQ(config.blockKind(), BlockKind::ParallelTwoNorms);
  EXPECT_EQ(getParameterCount(config), 41303293952);
}

TEST(FalconConfig, RopeParametersV5) {
  FalconConfig config = parseOk(R"({"vocab_size": 10, "hidden_size": 64,
      "num_hidden_layers": 1, "num_attention_heads": 4,
      "rope_parameters": {"rope_type": "linear", "rope_theta": 500042.0,
                          "factor": 2.0}})");
  EXPECT_DOUBLE_EQ(config.ropeTheta, 500042.0);
  EXPECT_EQ(config.ropeScaling, RopeScaling::Linear);
  EXPECT_DOUBLE_EQ(config.ropeFactor, 2.0);
}

TEST(FalconConfig, RopeScalingLegacyType) {
  FalconConfig config = parseOk(R"({"vocab_size": 10, "hidden_size": 64,
      "num_hidden_layers": 1, "num_attention_heads": 4, "rope_theta": 20.0,
      "rope_scaling": {"type": "dynamic", "factor": 4}})");
  EXPECT_DOUBLE_EQ(config.ropeTheta, 20.0);
  EXPECT_EQ(config.ropeScaling, RopeScaling::Dynamic);
  EXPECT_DOUBLE_EQ(config.ropeFactor, 4.0);
}

TEST(FalconConfig, Falcon11BSingleNorm) {
  FalconConfig config = parseOk(R"({"vocab_size": 65024, "hidden_size": 4096,
      "num_hidden_layers": 60, "num_attention_heads": 32, "num_kv_heads": 8,
      "new_decoder_architecture": true, "num_ln_in_parallel_attn": 1,
      "ffn_hidden_size": 16384})");
  EXPECT_EQ(config.blockKind(), BlockKind::ParallelSharedNorm);
  EXPECT_EQ(config.headDim(), 128);
  EXPECT_EQ(config.qkvOutFeatures(), 6144);
  EXPECT_EQ(getParameterCount(config), 10836484096);
}

TEST(FalconConfig, RWPerHeadWithBias) {
  FalconConfig config = parseOk(R"({"vocab_size": 50304, "hidden_size": 2048,
      "num_hidden_layers": 24, "num_attention_heads": 32, "alibi": true,
      "bias": true, "multi_query": false, "parallel_attn": false})");
  EXPECT_EQ(config.qkvLayout(), QKVLayout::PerHead);
  EXPECT_EQ(config.kvHeads(), 32);
  EXPECT_EQ(config.blockKind(), BlockKind::Sequential);
  EXPECT_EQ(getParameterCount(config), 1311625216);
}

TEST(FalconConfig, WeightSpecNamesAndShapes) {
  FalconConfig config = parseOk(R"({"vocab_size": 50304, "hidden_size": 2048,
      "num_hidden_layers": 24, "num_attention_heads": 32, "alibi": true,
      "bias": true, "multi_query": false, "parallel_attn": false,
      "tie_word_embeddings": false})");
  std::vector<WeightSpec> specs = getWeightSpecs(config);
  ASSERT_GE(specs.size(), 3u);
  EXPECT_EQ(specs.front().name, "transformer.word_embeddings.weight");
  EXPECT_EQ(specs.back().name, "lm_head.weight");
  auto qkv = llvm::find_if(specs, [](const WeightSpec &spec) {
    return spec.name == "transformer.h.{}.self_attention.query_key_value.bias";
  });
  ASSERT_NE(qkv, specs.end());
  EXPECT_TRUE(qkv->perLayer);
  EXPECT_EQ(qkv->shape[0], 6144);
  EXPECT_EQ(qkv->nameForLayer(17),
            "transformer.h.17.self_attention.query_key_value.bias");
}

struct BadConfig {
  const char *name;
  const char *json;
  const char *expected;
};

void PrintTo(const BadConfig &config, std::ostream *os) { *os << config.name; }

class FalconConfigErrors : public ::testing::TestWithParam<BadConfig> {};

TEST_P(FalconConfigErrors, NamesTheProblem) {
  std::string error = parseError(GetParam().json);
  EXPECT_NE(error.find("config.json: "), std::string::npos) << error;
  EXPECT_NE(error.find(GetParam().expected), std::string::npos) << error;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, FalconConfigErrors,
    ::testing::Values(
        BadConfig{"InvalidJson", "{\"vocab_size\": 1,", "invalid JSON"},
        BadConfig{"NotAnObject", "[1, 2]", "expected a JSON object"},
        BadConfig{"MissingVocab", R"({"hidden_size": 64, "num_hidden_layers": 1,
                      "num_attention_heads": 4})",
                  "missing required key 'vocab_size'"},
        BadConfig{"WrongType", R"({"vocab_size": 8, "hidden_size": "64",
                      "num_hidden_layers": 1, "num_attention_heads": 4})",
                  "key 'hidden_size' must be an integer"},
        // 2^63 as a double: json::Value::getAsInteger converts it to int64_t
        // and overflows (UBSan); it must be refused as not an integer.
        BadConfig{"IntegerPastInt64AsDouble", R"({"vocab_size": 9.223372036854775807e18,
                      "hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4})",
                  "key 'vocab_size' must be an integer"},
        BadConfig{"IntegerPastInt64", R"({"vocab_size": 9223372036854775808,
                      "hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4})",
                  "key 'vocab_size' must be an integer"},
        BadConfig{"HiddenNotDivisible", R"({"vocab_size": 8, "hidden_size": 4544,
                      "num_hidden_layers": 1, "num_attention_heads": 70})",
                  "hidden_size (4544) is not divisible by num_attention_heads (70)"},
        BadConfig{"ZeroHeadDim", R"({"vocab_size": 8, "hidden_size": 64,
                      "num_hidden_layers": 1, "num_attention_heads": 4, "head_dim": 0})",
                  "'head_dim' must be in [1, 65536], found 0"},
        BadConfig{"NegativeHeadDim", R"({"vocab_size": 8, "hidden_size": 64,
                      "num_hidden_layers": 1, "num_attention_heads": 4, "head_dim": -16})",
                  "'head_dim' must be in [1, 65536], found -16"},
        BadConfig{"WideStatedHeads", R"({"vocab_size": 8, "hidden_size": 64,
                      "num_hidden_layers": 1, "num_attention_heads": 65536, "head_dim": 65536})",
                  "num_attention_heads x head_dim is 4294967296, above the supported 1048576"},
        BadConfig{"OddStatedHeadDim", R"({"vocab_size": 8, "hidden_size": 64,
                      "num_hidden_layers": 1, "num_attention_heads": 3, "head_dim": 15})",
                  "rotary embeddings need an even head size, found 15"},
        BadConfig{"HeadsNotDivisibleByKV", R"({"vocab_size": 8, "hidden_size": 64, "num_hidden_layers": 1,
                      "num_attention_heads": 4, "num_kv_heads": 3,
                      "new_decoder_architecture": true})",
                  "num_attention_heads (4) is not divisible by num_kv_heads (3)"},
        BadConfig{"NewArchSequential", R"({"vocab_size": 8, "hidden_size": 64, "num_hidden_layers": 1,
                      "num_attention_heads": 4, "num_kv_heads": 2,
                      "new_decoder_architecture": true, "parallel_attn": false})",
                  "requires parallel_attn=true"},
        BadConfig{"TwoNormsOldArch", R"({"vocab_size": 8, "hidden_size": 64, "num_hidden_layers": 1,
                      "num_attention_heads": 4, "num_ln_in_parallel_attn": 2})",
                  "num_ln_in_parallel_attn=2 requires new_decoder_architecture"},
        BadConfig{"ThreeNorms", R"({"vocab_size": 8, "hidden_size": 64, "num_hidden_layers": 1,
                      "num_attention_heads": 4, "num_kv_heads": 2,
                      "new_decoder_architecture": true,
                      "num_ln_in_parallel_attn": 3})",
                  "must be 1 or 2 with new_decoder_architecture, found 3"},
        BadConfig{"PerHeadKV", R"({"vocab_size": 8, "hidden_size": 64, "num_hidden_layers": 1,
                      "num_attention_heads": 4, "multi_query": false,
                      "num_kv_heads": 2})",
                  "per-head QKV layout"},
        BadConfig{"ZeroLayers", R"({"vocab_size": 8, "hidden_size": 64, "num_hidden_layers": 0,
                      "num_attention_heads": 4})",
                  "'num_hidden_layers' must be positive, found 0"},
        BadConfig{"UnsupportedActivation", R"({"vocab_size": 8, "hidden_size": 64, "num_hidden_layers": 1,
                      "num_attention_heads": 4, "activation": "relu"})",
                  "unsupported activation 'relu'"},
        BadConfig{"OddHeadDim", R"({"vocab_size": 8, "hidden_size": 60, "num_hidden_layers": 1,
                      "num_attention_heads": 4})",
                  "rotary embeddings need an even head size, found 15"},
        BadConfig{"UnknownRopeScaling", R"({"vocab_size": 8, "hidden_size": 64, "num_hidden_layers": 1,
                      "num_attention_heads": 4,
                      "rope_scaling": {"type": "yarn", "factor": 2}})",
                  "unsupported rope scaling type 'yarn'"}),
    [](const ::testing::TestParamInfo<BadConfig> &info) { return info.param.name; });

} // namespace
