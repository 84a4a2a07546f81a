//===- ModelTest.cpp - opening artifacts and reporting bad ones -----------===//
//
// falcon_model_open against the fake artifact: the happy path, and one test
// per way an artifact can be broken, each checking the status code and that
// the message names the problem.
//
//===----------------------------------------------------------------------===//

#include "FakeArtifact.h"
#include "FakeModel.h"

#include "falcon/runtime.h"

#include "llvm/Support/FileSystem.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <thread>
#include <unistd.h>

using namespace falcon::test;
using ::testing::HasSubstr;

namespace {

StatusResult open(const FakeArtifact &artifact, ModelPtr &model,
                  const falcon_model_options_t *options = nullptr) {
  falcon_model_t *raw = reinterpret_cast<falcon_model_t *>(0x1);
  StatusResult result =
      consume(falcon_model_open(artifact.dir().c_str(), options, &raw));
  // On error the handle must be cleared, never left dangling.
  if (!result.ok()) {
    EXPECT_EQ(raw, nullptr);
  }
  model.reset(raw);
  return result;
}

StatusResult openError(const FakeArtifact &artifact) {
  ModelPtr model;
  StatusResult result = open(artifact, model);
  EXPECT_FALSE(result.ok()) << "opened a broken artifact";
  return result;
}

TEST(RuntimeStatus, NullIsOK) {
  EXPECT_EQ(falcon_status_code(nullptr), FALCON_STATUS_OK);
  EXPECT_STREQ(falcon_status_message(nullptr), "OK");
  falcon_status_free(nullptr);
  EXPECT_STREQ(falcon_status_code_string(FALCON_STATUS_DATA_LOSS), "DATA_LOSS");
  EXPECT_STREQ(falcon_status_code_string(FALCON_STATUS_OUT_OF_RANGE),
               "OUT_OF_RANGE");
}

extern "C" const char *falcon_test_status_code_string_from_c(int code);

TEST(RuntimeStatus, CodeStringTakesAnyInt) {
  // Values outside the enum, as a C caller may pass them (UBSan reported an
  // invalid enum load when the function took falcon_status_code_t).
  EXPECT_STREQ(falcon_test_status_code_string_from_c(1000), "UNKNOWN");
  EXPECT_STREQ(falcon_test_status_code_string_from_c(-1), "UNKNOWN");
  EXPECT_STREQ(falcon_test_status_code_string_from_c(INT32_MIN), "UNKNOWN");
  EXPECT_STREQ(falcon_test_status_code_string_from_c(FALCON_STATUS_INTERNAL), "INTERNAL");
  EXPECT_STREQ(falcon_status_code_string(FALCON_STATUS_OK), "OK");
}

TEST(RuntimeModel, OpensAndReportsManifest) {
  FakeArtifact artifact;
  ModelPtr model;
  StatusResult result = open(artifact, model);
  ASSERT_TRUE(result.ok()) << result.message;
  falcon_model_info_t info;
  ASSERT_TRUE(consume(falcon_model_query_info(model.get(), &info)).ok());
  EXPECT_STREQ(info.name, "fake-tiny");
  EXPECT_EQ(info.vocab_size, FAKE_VOCAB_SIZE);
  EXPECT_EQ(info.hidden_size, 16);
  EXPECT_EQ(info.num_layers, FAKE_LAYERS);
  EXPECT_EQ(info.num_attention_heads, 4);
  EXPECT_EQ(info.num_kv_heads, FAKE_KV_HEADS);
  EXPECT_EQ(info.head_dim, FAKE_HEAD_DIM);
  EXPECT_EQ(info.max_position_embeddings, FAKE_MAX_POSITIONS);
  EXPECT_FALSE(info.alibi);
  EXPECT_EQ(info.kv_cache_layers, FAKE_LAYERS);
  EXPECT_EQ(info.kv_cache_heads, FAKE_KV_HEADS);
  EXPECT_EQ(info.kv_cache_head_dim, FAKE_HEAD_DIM);
  EXPECT_EQ(info.weights_size, 1000u);
  EXPECT_EQ(info.weights_checksum, referenceChecksum(artifact.weights()));
  // Opening loads the library but runs nothing.
  EXPECT_EQ(artifact.counter("fake_model_calls"), 0);
}

TEST(RuntimeModel, ReleaseUnloadsTheHostLibrary) {
  FakeArtifact artifact;
  {
    ModelPtr model;
    ASSERT_TRUE(open(artifact, model).ok());
    EXPECT_EQ(artifact.counter("fake_model_calls"), 0);
  }
  EXPECT_EQ(artifact.counter("fake_model_calls"), -1);
}

TEST(RuntimeModel, RetainKeepsTheModelAlive) {
  FakeArtifact artifact;
  ModelPtr model;
  ASSERT_TRUE(open(artifact, model).ok());
  falcon_model_retain(model.get());
  falcon_model_release(model.get());
  falcon_model_info_t info;
  EXPECT_TRUE(consume(falcon_model_query_info(model.get(), &info)).ok());
}

// The manifest must describe the geometry the host library was compiled for
// (its falcon_model_geometry); otherwise the code would read and write out of
// bounds. Each field is compared.
struct GeometryCase {
  const char *key;
  int64_t value;
  int64_t compiled;
};

void PrintTo(const GeometryCase &param, std::ostream *os) {
  *os << param.key << " = " << param.value;
}

class RuntimeModelGeometry : public ::testing::TestWithParam<GeometryCase> {};

TEST_P(RuntimeModelGeometry, ManifestMustMatchTheHostLibrary) {
  const GeometryCase &param = GetParam();
  FakeArtifact artifact;
  artifact.setKey(param.key, param.value);
  // Another layer count, with a plan that covers it (the plan is checked
  // against the config first): only the host library disagrees.
  if (llvm::StringRef(param.key) == "config.num_hidden_layers")
    artifact.setKey("plan.ranks[0].num_layers", param.value);
  artifact.writeManifest();
  ModelPtr model;
  StatusResult result = open(artifact, model);
  EXPECT_EQ(result.code, FALCON_STATUS_FAILED_PRECONDITION);
  EXPECT_THAT(result.message,
              HasSubstr(std::string("manifest.json: ") + param.key + " is " +
                        std::to_string(param.value) +
                        " but the host library was compiled for " +
                        std::to_string(param.compiled)));
}

INSTANTIATE_TEST_SUITE_P(
    Fields, RuntimeModelGeometry,
    ::testing::Values(GeometryCase{"config.vocab_size", 512, FAKE_VOCAB_SIZE},
                      GeometryCase{"config.hidden_size", 32, 16},
                      GeometryCase{"config.num_hidden_layers", 3, FAKE_LAYERS},
                      GeometryCase{"kv_cache.layers", 1, FAKE_LAYERS},
                      GeometryCase{"config.num_attention_heads", 8, 4},
                      GeometryCase{"config.num_kv_heads", 1, FAKE_KV_HEADS},
                      GeometryCase{"kv_cache.kv_heads", 4, FAKE_KV_HEADS},
                      GeometryCase{"config.head_dim", 8, FAKE_HEAD_DIM},
                      GeometryCase{"kv_cache.head_dim", 1, FAKE_HEAD_DIM}),
    [](const ::testing::TestParamInfo<GeometryCase> &info) {
      std::string name = info.param.key;
      std::replace(name.begin(), name.end(), '.', '_');
      return name;
    });

// weights.bin of another size, with the manifest's size and checksum updated
// to match it, is still not what the code was compiled for.
TEST(RuntimeModel, WeightsOfAnotherSizeAreRefused) {
  FakeArtifact artifact;
  artifact.weights().resize(64);
  artifact.eraseKey("plan.ranks[0].weights.tensors");
  artifact.write();
  ModelPtr model;
  StatusResult result = open(artifact, model);
  EXPECT_EQ(result.code, FALCON_STATUS_FAILED_PRECONDITION);
  EXPECT_THAT(result.message,
              HasSubstr("plan.ranks[0].weights.size is 64 but the host library was compiled for 1000"));
}

// A rank's share of the model (plan.ranks[r]: heads, KV heads, vocabulary
// slice, what it takes and returns) is checked against the config when the
// manifest is read: an edited share never reaches the code.
struct ShareCase {
  const char *key;
  llvm::json::Value value;
  const char *message;
};

TEST(RuntimeModel, RankSharesOutsideTheModelAreRefused) {
  const ShareCase cases[] = {
      {"plan.ranks[0].num_heads", 0,
       "key 'plan.ranks[0].num_heads' must be in [1, 4], found 0"},
      {"plan.ranks[0].num_heads", 5,
       "key 'plan.ranks[0].num_heads' must be in [1, 4], found 5"},
      {"plan.ranks[0].vocab_offset", 1,
       "key 'plan.ranks[0].vocab_offset' must be in [0, 0], found 1"},
      {"plan.ranks[0].num_kv_heads", -1,
       "key 'plan.ranks[0].num_kv_heads' must be in [1, "},
      {"plan.ranks[0].input", "hidden_in",
       "must be 'input_ids' and 'logits' for a rank holding layers [0, +"},
      {"plan.ranks[0].output", "hidden",
       "must be 'input_ids' and 'logits' for a rank holding layers [0, +"},
      {"plan.ranks[0].num_heads", "four", "key 'plan.ranks[0].num_heads' must be an integer"},
  };
  for (const ShareCase &share : cases) {
    SCOPED_TRACE(share.key);
    FakeArtifact artifact;
    artifact.setKey(share.key, share.value);
    artifact.writeManifest();
    ModelPtr model;
    StatusResult result = open(artifact, model);
    EXPECT_EQ(result.code, FALCON_STATUS_FAILED_PRECONDITION);
    EXPECT_THAT(result.message, HasSubstr(share.message));
  }
}

TEST(RuntimeModel, NullArguments) {
  FakeArtifact artifact;
  StatusResult result =
      consume(falcon_model_open(artifact.dir().c_str(), nullptr, nullptr));
  EXPECT_EQ(result.code, FALCON_STATUS_INVALID_ARGUMENT);
  EXPECT_THAT(result.message, HasSubstr("out_model is NULL"));
  falcon_model_t *model = nullptr;
  result = consume(falcon_model_open(nullptr, nullptr, &model));
  EXPECT_EQ(result.code, FALCON_STATUS_INVALID_ARGUMENT);
  EXPECT_THAT(result.message, HasSubstr("artifact_dir is NULL"));
  result = consume(falcon_model_query_info(nullptr, nullptr));
  EXPECT_EQ(result.code, FALCON_STATUS_INVALID_ARGUMENT);
  // Releasing NULL is a no-op.
  falcon_model_release(nullptr);
  falcon_model_options_initialize(nullptr);
}

TEST(RuntimeModel, MissingDirectory) {
  FakeArtifact artifact;
  falcon_model_t *model = nullptr;
  std::string missing = artifact.path("no-such-artifact");
  StatusResult result =
      consume(falcon_model_open(missing.c_str(), nullptr, &model));
  EXPECT_EQ(model, nullptr);
  EXPECT_EQ(result.code, FALCON_STATUS_NOT_FOUND);
  EXPECT_EQ(result.message, missing + ": artifact directory not found");
}

TEST(RuntimeModel, MissingManifest) {
  FakeArtifact artifact;
  llvm::sys::fs::remove(artifact.path("manifest.json"));
  StatusResult result = openError(artifact);
  EXPECT_EQ(result.code, FALCON_STATUS_NOT_FOUND);
  EXPECT_EQ(result.message, artifact.path("manifest.json") +
                                ": cannot read: No such file or directory");
}

TEST(RuntimeModel, MalformedJSON) {
  FakeArtifact artifact;
  artifact.writeFile("manifest.json", "{\"format_version\": 2, \"model\": ");
  StatusResult result = openError(artifact);
  EXPECT_EQ(result.code, FALCON_STATUS_FAILED_PRECONDITION);
  EXPECT_THAT(result.message,
              HasSubstr(artifact.path("manifest.json") + ": invalid JSON: "));
}

TEST(RuntimeModel, TopLevelNotAnObject) {
  FakeArtifact artifact;
  artifact.writeFile("manifest.json", "[1, 2, 3]");
  EXPECT_THAT(openError(artifact).message,
              HasSubstr("manifest.json: the top level must be a JSON object"));
}

TEST(RuntimeModel, MissingKeys) {
  for (const char *key :
       {"format_version", "plan.ranks[0].host_library", "plan.ranks[0].entry_point", "config",
        "config.vocab_size", "config.max_position_embeddings", "config.alibi",
        "kv_cache", "kv_cache.layers", "kv_cache.head_dim", "kv_cache.dtype",
        "plan.ranks[0].weights", "plan.ranks[0].weights.file", "plan.ranks[0].weights.size", "plan.ranks[0].weights.checksum", "target",
        "target.kind", "target.triple", "target.cpu", "target.required_features",
        "target.vector_bits", "activation_dtype", "plan", "plan.tp", "plan.pp",
        "plan.threads", "plan.ranks"}) {
    SCOPED_TRACE(key);
    FakeArtifact artifact;
    artifact.eraseKey(key);
    artifact.writeManifest();
    StatusResult result = openError(artifact);
    EXPECT_EQ(result.code, FALCON_STATUS_FAILED_PRECONDITION);
    EXPECT_EQ(result.message, artifact.path("manifest.json") +
                                  ": missing required key '" + key + "'");
  }
}

TEST(RuntimeModel, WrongTypes) {
  struct Case {
    const char *key;
    llvm::json::Value value;
    const char *expected;
  };
  Case cases[] = {
      {"config.vocab_size", "256",
       "key 'config.vocab_size' must be an integer"},
      {"config.vocab_size", 0,
       "key 'config.vocab_size' must be a positive integer, found 0"},
      {"kv_cache.kv_heads", -2,
       "key 'kv_cache.kv_heads' must be a positive integer, found -2"},
      {"config.alibi", "no", "key 'config.alibi' must be a boolean"},
      {"plan.ranks[0].host_library", "", "key 'plan.ranks[0].host_library' must be a non-empty string"},
      {"config", 3, "key 'config' must be an object"},
      {"plan.ranks[0].weights.size", -1, "key 'plan.ranks[0].weights.size' must not be negative, found -1"},
      {"plan.ranks[0].weights.checksum", "crc32:1234",
       "plan.ranks[0].weights.checksum 'crc32:1234' is not of the form xxh3-64x64m:<16 hex "
       "digits>"},
      {"plan.ranks[0].weights.checksum", "xxh3-64x64m:xyz",
       "plan.ranks[0].weights.checksum 'xxh3-64x64m:xyz' is not of the form"},
      // The format before XXH3 is refused, not misread.
      {"plan.ranks[0].weights.checksum", "fnv1a64:0123456789abcdef",
       "plan.ranks[0].weights.checksum 'fnv1a64:0123456789abcdef' is not of the form "
       "xxh3-64x64m:"},
      {"plan.ranks[0].weights.tensors", 5, "key 'plan.ranks[0].weights.tensors' must be an array"},
      {"target.required_features", "avx2",
       "key 'target.required_features' must be an array"},
      {"target.required_features", llvm::json::Array{3},
       "key 'target.required_features' must be an array of feature names"},
      {"target.kind", "cuda", "target.kind 'cuda' is not supported (this runtime runs cpu)"},
      {"activation_dtype", "bf16",
       "activation_dtype 'bf16' is not supported (this runtime supports f32)"},
      {"plan.tp", 0, "key 'plan.tp' must be a positive integer, found 0"},
      {"plan.tp", 2, "plan.ranks has 1 entries, expected tp x pp = 2 x 1"},
      {"plan.ranks", llvm::json::Array{3}, "key 'plan.ranks[0]' must be an object"},
      {"plan.ranks",
       llvm::json::Array{llvm::json::Object{{"rank", 0},
                                            {"stage", 0},
                                            {"slot", 0},
                                            {"first_layer", 1},
                                            {"num_layers", 1}}},
       "plan.ranks[0] holds layers [1, +1), expected to start at 0 within"},
      {"plan.ranks",
       llvm::json::Array{llvm::json::Object{{"rank", 0},
                                            {"stage", 1},
                                            {"slot", 0},
                                            {"first_layer", 0},
                                            {"num_layers", 1}}},
       "plan.ranks[0] must be rank 0 at stage 0, slot 0"},
      {"plan.ranks",
       llvm::json::Array{llvm::json::Object{
           {"rank", 0}, {"stage", 0}, {"slot", 0}, {"first_layer", 0}}},
       "missing required key 'plan.ranks[0].num_layers'"},
  };
  for (Case &testCase : cases) {
    SCOPED_TRACE(testCase.key);
    FakeArtifact artifact;
    artifact.setKey(testCase.key, testCase.value);
    artifact.writeManifest();
    EXPECT_THAT(openError(artifact).message, HasSubstr(testCase.expected));
  }
}

// Version 2 (before the target and the plan) and any future version are
// refused with a "recompile", before any other key is looked at.
TEST(RuntimeModel, OtherFormatVersions) {
  FakeArtifact old;
  old.setKey("format_version", 2);
  old.eraseKey("target");
  old.writeManifest();
  StatusResult oldResult = openError(old);
  EXPECT_EQ(oldResult.code, FALCON_STATUS_UNIMPLEMENTED);
  EXPECT_EQ(oldResult.message, old.path("manifest.json") +
                                   ": format_version 2 is not supported (this runtime "
                                   "reads version 6; recompile the artifact with "
                                   "falcon-compile)");

  FakeArtifact artifact;
  artifact.setKey("format_version", 7);
  // A future format may rename keys; the version error must come first.
  artifact.eraseKey("config");
  artifact.writeManifest();
  StatusResult result = openError(artifact);
  EXPECT_EQ(result.code, FALCON_STATUS_UNIMPLEMENTED);
  EXPECT_EQ(result.message,
            artifact.path("manifest.json") +
                ": format_version 7 is not supported (this runtime reads "
                "version 6; recompile the artifact with falcon-compile)");
}

// Code this machine cannot run is refused before the library is loaded (it
// would die of SIGILL, or not load at all): a feature the CPU lacks, another
// architecture.
TEST(RuntimeModel, RefusesCodeThisMachineCannotRun) {
  FakeArtifact artifact;
  artifact.setKey("target.cpu", "imaginary");
  artifact.setKey("target.required_features",
                  llvm::json::Array{"sse2", "falcon-imaginary-isa"});
  artifact.writeManifest();
  StatusResult result = openError(artifact);
  EXPECT_EQ(result.code, FALCON_STATUS_UNAVAILABLE);
  EXPECT_EQ(result.message, artifact.dir() +
                                ": compiled for imaginary, which needs falcon-imaginary-isa, "
                                "that this CPU lacks (recompile with --mcpu=native, or for a "
                                "CPU this machine has)");

  FakeArtifact foreign;
  foreign.setKey("target.triple", "riscv64-unknown-linux-gnu");
  foreign.writeManifest();
  result = openError(foreign);
  EXPECT_EQ(result.code, FALCON_STATUS_UNAVAILABLE);
  EXPECT_THAT(result.message,
              HasSubstr(": compiled for riscv64-unknown-linux-gnu, but this machine is "));
}

// The process's rank and world size must fit the plan (one rank today).
TEST(RuntimeModel, RankAndWorldSize) {
  FakeArtifact artifact;
  falcon_model_options_t options;
  falcon_model_options_initialize(&options);
  EXPECT_EQ(options.rank, 0);
  EXPECT_EQ(options.world_size, 1);
  options.world_size = 2;
  falcon_model_t *model = nullptr;
  StatusResult result =
      consume(falcon_model_open(artifact.dir().c_str(), &options, &model));
  EXPECT_EQ(model, nullptr);
  EXPECT_EQ(result.code, FALCON_STATUS_FAILED_PRECONDITION);
  EXPECT_EQ(result.message, artifact.dir() +
                                ": the plan has 1 rank(s) (tp 1 x pp 1), but world_size is 2");
  options.world_size = 1;
  options.rank = 1;
  result = consume(falcon_model_open(artifact.dir().c_str(), &options, &model));
  EXPECT_EQ(result.code, FALCON_STATUS_INVALID_ARGUMENT);
  EXPECT_THAT(result.message, HasSubstr("rank must be in [0, world_size)"));
}

TEST(RuntimeModel, UnsupportedCacheDType) {
  FakeArtifact artifact;
  artifact.setKey("kv_cache.dtype", "f8");
  artifact.writeManifest();
  StatusResult result = openError(artifact);
  EXPECT_EQ(result.code, FALCON_STATUS_UNIMPLEMENTED);
  EXPECT_THAT(result.message,
              HasSubstr("kv_cache.dtype 'f8' is not supported (this runtime "
                        "supports f32, bf16 and f16)"));
}

// A manifest that claims a narrower cache than the code was compiled for
// would make the runtime allocate half of what the code writes: refused.
TEST(RuntimeModel, CacheDTypeMustMatchTheHostLibrary) {
  FakeArtifact artifact;
  artifact.setKey("kv_cache.dtype", "bf16");
  artifact.writeManifest();
  StatusResult result = openError(artifact);
  EXPECT_EQ(result.code, FALCON_STATUS_FAILED_PRECONDITION);
  EXPECT_THAT(result.message,
              HasSubstr("manifest.json: kv_cache.dtype's element bytes is 2 but the host "
                        "library was compiled for 4"));
}

TEST(RuntimeModel, TensorOutsideWeights) {
  FakeArtifact artifact;
  artifact.setKey("plan.ranks[0].weights.tensors",
                  llvm::json::Array{llvm::json::Object{
                      {"name", "w"}, {"offset", 960}, {"bytes", 64}}});
  artifact.writeManifest();
  EXPECT_THAT(openError(artifact).message,
              HasSubstr("plan.ranks[0].weights.tensors[0] ('w'): bytes [960, 1024) lie "
                        "outside weights.size (1000)"));
}

TEST(RuntimeModel, TensorEndPastInt64) {
  // offset + bytes overflows int64_t; the message must still be exact (UBSan
  // reported a signed overflow building it).
  FakeArtifact artifact;
  artifact.setKey("plan.ranks[0].weights.tensors",
                  llvm::json::Array{llvm::json::Object{{"name", "w"},
                                                       {"offset", INT64_MAX},
                                                       {"bytes", INT64_MAX}}});
  artifact.writeManifest();
  EXPECT_THAT(openError(artifact).message,
              HasSubstr("('w'): bytes [9223372036854775807, 9223372036854775807 + "
                        "9223372036854775807) lie outside weights.size (1000)"));
}

TEST(RuntimeModel, IntegerPastInt64AsDouble) {
  // 2^63 written as a double: json::Value::getAsInteger converts it to
  // int64_t, which overflows (UBSan).
  FakeArtifact artifact;
  artifact.setKey("plan.ranks[0].weights.size", 0x1p63);
  artifact.writeManifest();
  StatusResult result = openError(artifact);
  EXPECT_EQ(result.code, FALCON_STATUS_FAILED_PRECONDITION);
  EXPECT_THAT(result.message,
              HasSubstr("key 'plan.ranks[0].weights.size' must be an integer"));
}

TEST(RuntimeModel, TruncatedWeights) {
  FakeArtifact artifact;
  artifact.writeFile("weights.bin", std::string(600, '\0'));
  StatusResult result = openError(artifact);
  EXPECT_EQ(result.code, FALCON_STATUS_FAILED_PRECONDITION);
  EXPECT_EQ(result.message, artifact.path("weights.bin") +
                                ": size 600 does not match the manifest "
                                "(1000)");
}

TEST(RuntimeModel, ModifiedWeights) {
  FakeArtifact artifact;
  std::vector<uint8_t> modified = artifact.weights();
  modified[500] ^= 0x40;
  artifact.writeFile("weights.bin",
                     llvm::StringRef(reinterpret_cast<char *>(modified.data()),
                                     modified.size()));
  StatusResult result = openError(artifact);
  EXPECT_EQ(result.code, FALCON_STATUS_DATA_LOSS);
  EXPECT_EQ(result.message, artifact.path("weights.bin") + ": checksum " +
                                checksumString(referenceChecksum(modified)) +
                                " does not match the manifest's " +
                                checksumString(referenceChecksum(artifact.weights())));

  // With verification off only the size is checked.
  falcon_model_options_t options;
  falcon_model_options_initialize(&options);
  options.verify_checksum = false;
  ModelPtr model;
  StatusResult unverified = open(artifact, model, &options);
  EXPECT_TRUE(unverified.ok()) << unverified.message;
}

/// Records verify_progress calls and the threads they came on.
struct ProgressLog {
  std::vector<std::pair<uint64_t, uint64_t>> calls;
  std::vector<std::thread::id> threads;

  static void record(void *userData, uint64_t done, uint64_t total) {
    auto *log = static_cast<ProgressLog *>(userData);
    log->calls.emplace_back(done, total);
    log->threads.push_back(std::this_thread::get_id());
  }
};

TEST(RuntimeModel, VerifyProgressOnlyForLargeWeights) {
  FakeArtifact artifact;
  ProgressLog log;
  falcon_model_options_t options;
  falcon_model_options_initialize(&options);
  EXPECT_EQ(options.verify_progress, nullptr);
  EXPECT_EQ(options.verify_progress_user_data, nullptr);
  options.verify_progress = &ProgressLog::record;
  options.verify_progress_user_data = &log;
  ModelPtr model;
  StatusResult result = open(artifact, model, &options);
  EXPECT_TRUE(result.ok()) << result.message;
  EXPECT_TRUE(log.calls.empty());

  // 1 GiB (sparse: reads as zeros, costs no disk), checked against the
  // small file's checksum: reported throughout, then refused.
  const uint64_t size = uint64_t(1) << 30;
  {
    int fd;
    ASSERT_FALSE(llvm::sys::fs::openFileForWrite(artifact.path("weights.bin"), fd));
    EXPECT_FALSE(llvm::sys::fs::resize_file(fd, size));
    ::close(fd);
  }
  artifact.setKey("plan.ranks[0].weights.size", int64_t(size));
  artifact.writeManifest();
  model.reset();
  result = open(artifact, model, &options);
  EXPECT_EQ(result.code, FALCON_STATUS_DATA_LOSS) << result.message;
  ASSERT_GE(log.calls.size(), 2u);
  for (size_t index = 0; index < log.calls.size(); ++index) {
    EXPECT_EQ(log.calls[index].second, size);
    EXPECT_EQ(log.threads[index], std::this_thread::get_id());
    if (index > 0) {
      EXPECT_GE(log.calls[index].first, log.calls[index - 1].first);
    }
  }
  EXPECT_EQ(log.calls.back().first, size);
}

TEST(RuntimeModel, ChecksumSpellingIsNotCompared) {
  FakeArtifact artifact;
  std::string upper = checksumString(referenceChecksum(artifact.weights()));
  // Only the digits change: the prefix has no letter a-f.
  for (char &c : upper)
    if (c >= 'a' && c <= 'f')
      c = char(c - 'a' + 'A');
  artifact.setKey("plan.ranks[0].weights.checksum", upper);
  artifact.writeManifest();
  ModelPtr model;
  StatusResult result = open(artifact, model);
  EXPECT_TRUE(result.ok()) << result.message;
}

TEST(RuntimeModel, MissingWeights) {
  FakeArtifact artifact;
  llvm::sys::fs::remove(artifact.path("weights.bin"));
  StatusResult result = openError(artifact);
  EXPECT_EQ(result.code, FALCON_STATUS_NOT_FOUND);
  EXPECT_EQ(result.message, artifact.path("weights.bin") +
                                ": cannot open: No such file or directory");
}

TEST(RuntimeModel, MissingHostLibrary) {
  FakeArtifact artifact;
  llvm::sys::fs::remove(artifact.path("libfalcon_model.so"));
  StatusResult result = openError(artifact);
  EXPECT_EQ(result.code, FALCON_STATUS_NOT_FOUND);
  EXPECT_EQ(result.message,
            artifact.path("libfalcon_model.so") +
                ": cannot load host library: No such file or directory");
}

TEST(RuntimeModel, HostLibraryIsNotASharedObject) {
  FakeArtifact artifact;
  artifact.writeFile("libfalcon_model.so", "not an ELF file");
  StatusResult result = openError(artifact);
  EXPECT_EQ(result.code, FALCON_STATUS_UNAVAILABLE);
  EXPECT_THAT(result.message, HasSubstr(artifact.path("libfalcon_model.so") +
                                        ": cannot load host library: "));
}

TEST(RuntimeModel, MissingEntryPoint) {
  FakeArtifact artifact;
  artifact.setKey("plan.ranks[0].entry_point", "_mlir_ciface_forward_v2");
  artifact.writeManifest();
  StatusResult result = openError(artifact);
  EXPECT_EQ(result.code, FALCON_STATUS_FAILED_PRECONDITION);
  EXPECT_EQ(result.message, artifact.path("libfalcon_model.so") +
                                ": entry point "
                                "'_mlir_ciface_forward_v2' not found in "
                                "the host library");
  // The library was unloaded again on the error path.
  EXPECT_EQ(artifact.counter("fake_model_calls"), -1);
}

TEST(RuntimeModel, UnknownDevice) {
  FakeArtifact artifact;
  falcon_model_options_t options;
  falcon_model_options_initialize(&options);
  options.device = "cuda";
  ModelPtr model;
  StatusResult result = open(artifact, model, &options);
  EXPECT_EQ(result.code, FALCON_STATUS_UNAVAILABLE);
  EXPECT_EQ(result.message,
            "device 'cuda' is not available in this build (available: cpu)");
}

} // namespace

// A manifest cannot make the runtime load or map a file outside the
// artifact: paths are refused, and so are links inside it.
TEST(RuntimeModel, FilesStayInsideTheArtifact) {
  for (const char *key : {"plan.ranks[0].host_library", "plan.ranks[0].weights.file"})
    for (const char *name : {"/tmp/evil.so", "../evil.so", "..", "sub/evil.so"}) {
      SCOPED_TRACE(std::string(key) + " = " + name);
      FakeArtifact artifact;
      artifact.setKey(key, name);
      artifact.writeManifest();
      StatusResult result = openError(artifact);
      EXPECT_EQ(result.code, FALCON_STATUS_FAILED_PRECONDITION);
      EXPECT_THAT(result.message, HasSubstr(std::string("key '") + key +
                                            "' must name a file in the artifact directory"));
    }
  FakeArtifact artifact;
  llvm::sys::fs::remove(artifact.path("libfalcon_model.so"));
  ASSERT_FALSE(llvm::sys::fs::create_link(FALCON_FAKE_MODEL_LIBRARY,
                                          artifact.path("libfalcon_model.so")));
  StatusResult result = openError(artifact);
  EXPECT_EQ(result.code, FALCON_STATUS_FAILED_PRECONDITION);
  EXPECT_EQ(result.message, artifact.path("libfalcon_model.so") +
                                ": is a symbolic link; an artifact loads only its own "
                                "regular files");
}
