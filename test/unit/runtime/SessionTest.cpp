//===- SessionTest.cpp - prefill, decode and greedy generation ------------===//
//
// Sessions over the fake artifact. The fake checks every descriptor the
// runtime passes (counting violations in fake_model_abi_errors) and derives
// its logits from the ids it reads back from the KV cache, so equal logits
// mean the runtime passed the right past_len, positions, cache and strides.
//
//===----------------------------------------------------------------------===//

#include "FakeArtifact.h"
#include "FakeModel.h"

#include "falcon/runtime.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include <cmath>
#include <cstdio>
#include <fcntl.h>
#include <sys/stat.h>
#include <vector>

using namespace falcon::test;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

namespace {

class RuntimeSession : public ::testing::Test {
protected:
  void SetUp() override {
    falcon_model_t *raw = nullptr;
    StatusResult result =
        consume(falcon_model_open(artifact.dir().c_str(), nullptr, &raw));
    ASSERT_TRUE(result.ok()) << result.message;
    model.reset(raw);
  }

  void TearDown() override {
    // Whatever a test did, the runtime never broke the host ABI. (-1: the
    // test released everything and the library is gone already.)
    int64_t abiErrors = artifact.counter("fake_model_abi_errors");
    EXPECT_TRUE(abiErrors == 0 || abiErrors == -1) << abiErrors;
  }

  SessionPtr createSession(int64_t batchSize, int64_t capacity) {
    falcon_session_options_t options;
    falcon_session_options_initialize(&options);
    options.batch_size = batchSize;
    options.cache_capacity = capacity;
    falcon_session_t *raw = nullptr;
    StatusResult result =
        consume(falcon_session_create(model.get(), &options, &raw));
    EXPECT_TRUE(result.ok()) << result.message;
    return SessionPtr(raw);
  }

  int64_t lengthOf(falcon_session_t *session) {
    int64_t length = -1;
    EXPECT_TRUE(consume(falcon_session_query_length(session, &length)).ok());
    return length;
  }

  int64_t calls() const { return artifact.counter("fake_model_calls"); }

  FakeArtifact artifact;
  ModelPtr model;
};

const std::vector<int64_t> kPrompt = {1, 17, 42, 99, 3, 250, 7};

TEST_F(RuntimeSession, ThreadCountReachesTheHostLibrary) {
  SessionPtr session = createSession(1, 16);
  ASSERT_TRUE(consume(falcon_session_prefill(session.get(), kPrompt.data(), 1,
                                             int64_t(kPrompt.size()), 0, nullptr))
                  .ok());
  // Default: the host library's OpenMP runtime is left alone.
  EXPECT_EQ(artifact.counter("fake_model_num_threads"), 0);

  falcon_model_options_t options;
  falcon_model_options_initialize(&options);
  options.num_threads = 3;
  falcon_model_t *raw = nullptr;
  ASSERT_TRUE(
      consume(falcon_model_open(artifact.dir().c_str(), &options, &raw)).ok());
  ModelPtr threaded(raw);
  falcon_session_options_t sessionOptions;
  falcon_session_options_initialize(&sessionOptions);
  sessionOptions.cache_capacity = 16;
  falcon_session_t *rawSession = nullptr;
  ASSERT_TRUE(consume(falcon_session_create(threaded.get(), &sessionOptions,
                                            &rawSession))
                  .ok());
  SessionPtr threadedSession(rawSession);
  ASSERT_TRUE(consume(falcon_session_prefill(threadedSession.get(), kPrompt.data(),
                                             1, int64_t(kPrompt.size()), 0,
                                             nullptr))
                  .ok());
  EXPECT_EQ(artifact.counter("fake_model_num_threads"), 3);

  options.num_threads = -1;
  StatusResult result =
      consume(falcon_model_open(artifact.dir().c_str(), &options, &raw));
  EXPECT_EQ(result.code, FALCON_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(result.message,
            "falcon_model_open: num_threads must be in [0, 1024], found -1");
  options.num_threads = FALCON_MAX_THREADS + 1;
  result = consume(falcon_model_open(artifact.dir().c_str(), &options, &raw));
  EXPECT_EQ(result.code, FALCON_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(result.message,
            "falcon_model_open: num_threads must be in [0, 1024], found 1025");
}

TEST_F(RuntimeSession, HostLibraryAllocatesThroughTheRuntime) {
  // falcon_model_open filled the library's runtime import table, and the
  // fake's workspace (its logits and a scratch block) came from it.
  EXPECT_EQ(artifact.counter("fake_model_imports_version"), 1);
  SessionPtr session = createSession(1, 16);
  std::vector<int64_t> ids(4);
  ASSERT_TRUE(
      consume(falcon_session_generate_greedy(
                  session.get(), kPrompt.data(), 1, int64_t(kPrompt.size()), 4,
                  ids.size(), 0, 0, ids.data(), nullptr, nullptr, nullptr))
          .ok());
  EXPECT_EQ(ids, fakeGreedy(kPrompt, 4, artifact.salt()));
  EXPECT_EQ(artifact.counter("fake_model_failed_allocations"), 0);
  EXPECT_EQ(artifact.counter("fake_model_last_all_reduce"), 0);
  // Releasing the last user unloads the library, table and all.
  model.reset();
  session.reset();
  EXPECT_EQ(artifact.counter("fake_model_imports_version"), -1);
}

TEST_F(RuntimeSession, DefaultOptions) {
  falcon_session_t *raw = nullptr;
  ASSERT_TRUE(consume(falcon_session_create(model.get(), nullptr, &raw)).ok());
  SessionPtr session(raw);
  falcon_session_info_t info;
  ASSERT_TRUE(consume(falcon_session_query_info(session.get(), &info)).ok());
  EXPECT_EQ(info.batch_size, 1);
  EXPECT_EQ(info.cache_capacity, FAKE_MAX_POSITIONS);
  EXPECT_EQ(info.length, 0);
}

TEST_F(RuntimeSession, InvalidOptions) {
  falcon_session_options_t options;
  falcon_session_options_initialize(&options);
  falcon_session_t *session = nullptr;

  options.batch_size = 0;
  StatusResult result =
      consume(falcon_session_create(model.get(), &options, &session));
  EXPECT_EQ(result.code, FALCON_STATUS_INVALID_ARGUMENT);
  EXPECT_THAT(result.message,
              HasSubstr("batch_size must be positive, found 0"));
  EXPECT_EQ(session, nullptr);

  options.batch_size = 1;
  // Beyond max_position_embeddings is allowed (no position table) ...
  options.cache_capacity = FAKE_MAX_POSITIONS + 1;
  result = consume(falcon_session_create(model.get(), &options, &session));
  EXPECT_TRUE(result.ok()) << result.message;
  falcon_session_release(session);
  session = nullptr;
  // ... an absurd capacity is refused before anything is allocated.
  options.cache_capacity = int64_t(1) << 60;
  result = consume(falcon_session_create(model.get(), &options, &session));
  EXPECT_EQ(result.code, FALCON_STATUS_RESOURCE_EXHAUSTED);
  EXPECT_EQ(session, nullptr);

  options.cache_capacity = -3;
  result = consume(falcon_session_create(model.get(), &options, &session));
  EXPECT_EQ(result.code, FALCON_STATUS_INVALID_ARGUMENT);

  result = consume(falcon_session_create(nullptr, &options, &session));
  EXPECT_EQ(result.code, FALCON_STATUS_INVALID_ARGUMENT);
  EXPECT_THAT(result.message, HasSubstr("model is NULL"));
  falcon_session_release(nullptr);
}

TEST_F(RuntimeSession, PrefillLogits) {
  SessionPtr session = createSession(1, 16);
  std::vector<float> logits(kPrompt.size() * FAKE_VOCAB_SIZE);
  StatusResult result = consume(falcon_session_prefill(
      session.get(), kPrompt.data(), 1, int64_t(kPrompt.size()), logits.size(),
      logits.data()));
  ASSERT_TRUE(result.ok()) << result.message;
  EXPECT_EQ(lengthOf(session.get()), 7);
  EXPECT_EQ(calls(), 1);
  EXPECT_EQ(artifact.counter("fake_model_last_past_len"), 0);
  EXPECT_EQ(artifact.counter("fake_model_last_sequence_length"), 7);
  EXPECT_EQ(artifact.counter("fake_model_last_cache_capacity"), 16);
  // Row s of the logits predicts from tokens 0..s.
  for (size_t position = 0; position < kPrompt.size(); ++position) {
    SCOPED_TRACE(position);
    std::vector<int64_t> seen(kPrompt.begin(), kPrompt.begin() + position + 1);
    std::vector<float> row(logits.begin() + position * FAKE_VOCAB_SIZE,
                           logits.begin() + (position + 1) * FAKE_VOCAB_SIZE);
    EXPECT_THAT(row, ElementsAreArray(fakeLogits(seen, artifact.salt())));
  }
}

TEST_F(RuntimeSession, DecodeAfterPrefillSeesEarlierRows) {
  SessionPtr session = createSession(1, 16);
  ASSERT_TRUE(
      consume(falcon_session_prefill(session.get(), kPrompt.data(), 1,
                                     int64_t(kPrompt.size()), 0, nullptr))
          .ok());
  int64_t token = 5;
  std::vector<float> logits(FAKE_VOCAB_SIZE);
  StatusResult result = consume(falcon_session_decode(
      session.get(), &token, 1, logits.size(), logits.data()));
  ASSERT_TRUE(result.ok()) << result.message;
  EXPECT_EQ(artifact.counter("fake_model_last_past_len"), 7);
  EXPECT_EQ(artifact.counter("fake_model_last_sequence_length"), 1);
  EXPECT_EQ(lengthOf(session.get()), 8);
  std::vector<int64_t> seen = kPrompt;
  seen.push_back(token);
  EXPECT_THAT(logits, ElementsAreArray(fakeLogits(seen, artifact.salt())));
}

TEST_F(RuntimeSession, IncrementalDecodeEqualsPrefill) {
  std::vector<int64_t> tokens = {9, 8, 7, 200, 1, 0, 255, 31, 64};
  SessionPtr full = createSession(1, 16);
  std::vector<float> fullLogits(tokens.size() * FAKE_VOCAB_SIZE);
  ASSERT_TRUE(consume(falcon_session_prefill(
                          full.get(), tokens.data(), 1, int64_t(tokens.size()),
                          fullLogits.size(), fullLogits.data()))
                  .ok());

  SessionPtr incremental = createSession(1, 16);
  const size_t prefix = 3;
  std::vector<float> stepLogits(prefix * FAKE_VOCAB_SIZE);
  ASSERT_TRUE(consume(falcon_session_prefill(incremental.get(), tokens.data(),
                                             1, prefix, stepLogits.size(),
                                             stepLogits.data()))
                  .ok());
  for (size_t position = prefix; position < tokens.size(); ++position) {
    std::vector<float> logits(FAKE_VOCAB_SIZE);
    ASSERT_TRUE(
        consume(falcon_session_decode(incremental.get(), &tokens[position], 1,
                                      logits.size(), logits.data()))
            .ok());
    stepLogits.insert(stepLogits.end(), logits.begin(), logits.end());
  }
  EXPECT_EQ(stepLogits, fullLogits);
  EXPECT_EQ(lengthOf(incremental.get()), int64_t(tokens.size()));
}

TEST_F(RuntimeSession, ChunkedPrefillEqualsPrefill) {
  SessionPtr full = createSession(1, 16);
  std::vector<float> fullLogits(kPrompt.size() * FAKE_VOCAB_SIZE);
  ASSERT_TRUE(
      consume(falcon_session_prefill(full.get(), kPrompt.data(), 1, 7,
                                     fullLogits.size(), fullLogits.data()))
          .ok());
  SessionPtr chunked = createSession(1, 16);
  std::vector<float> first(4 * FAKE_VOCAB_SIZE), second(3 * FAKE_VOCAB_SIZE);
  ASSERT_TRUE(consume(falcon_session_prefill(chunked.get(), kPrompt.data(), 1,
                                             4, first.size(), first.data()))
                  .ok());
  ASSERT_TRUE(
      consume(falcon_session_prefill(chunked.get(), kPrompt.data() + 4, 1, 3,
                                     second.size(), second.data()))
          .ok());
  EXPECT_EQ(artifact.counter("fake_model_last_past_len"), 4);
  first.insert(first.end(), second.begin(), second.end());
  EXPECT_EQ(first, fullLogits);
}

TEST_F(RuntimeSession, GreedyGeneration) {
  SessionPtr session = createSession(1, 27);
  std::vector<int64_t> ids(20, -1);
  std::vector<float> promptLogits(kPrompt.size() * FAKE_VOCAB_SIZE);
  falcon_generate_stats_t stats;
  StatusResult result = consume(falcon_session_generate_greedy(
      session.get(), kPrompt.data(), 1, int64_t(kPrompt.size()), 20, ids.size(),
      promptLogits.size(), 0, ids.data(), promptLogits.data(), nullptr, &stats));
  ASSERT_TRUE(result.ok()) << result.message;
  EXPECT_EQ(ids, fakeGreedy(kPrompt, 20, artifact.salt()));
  // One prefill, then one decode per new token but the first; the last new
  // token is not fed back.
  EXPECT_EQ(calls(), 20);
  EXPECT_EQ(lengthOf(session.get()), 7 + 20 - 1);
  EXPECT_EQ(stats.prefill_tokens, 7);
  EXPECT_EQ(stats.decode_tokens, 19);
  EXPECT_GE(stats.prefill_seconds, 0.0);
  EXPECT_GE(stats.decode_seconds, 0.0);
  std::vector<float> lastRow(promptLogits.end() - FAKE_VOCAB_SIZE,
                             promptLogits.end());
  EXPECT_THAT(lastRow, ElementsAreArray(fakeLogits(kPrompt, artifact.salt())));
}

TEST_F(RuntimeSession, GreedyGenerationContinuesTheCache) {
  SessionPtr session = createSession(1, 32);
  std::vector<int64_t> first(4), second(3);
  ASSERT_TRUE(consume(falcon_session_generate_greedy(
                          session.get(), kPrompt.data(), 1, 7, 4, first.size(),
                          0, 0, first.data(), nullptr, nullptr, nullptr))
                  .ok());
  // Feed the last new token back as the next "prompt": the result must be
  // the continuation of one long greedy run.
  ASSERT_TRUE(consume(falcon_session_generate_greedy(
                          session.get(), &first.back(), 1, 1, 3, second.size(),
                          0, 0, second.data(), nullptr, nullptr, nullptr))
                  .ok());
  std::vector<int64_t> expected = fakeGreedy(kPrompt, 7, artifact.salt());
  first.insert(first.end(), second.begin(), second.end());
  EXPECT_EQ(first, expected);
}

TEST_F(RuntimeSession, GreedyGenerationBatch) {
  std::vector<int64_t> prompts = {1, 2, 3, 4, 200, 100, 50, 25};
  SessionPtr session = createSession(2, 12);
  std::vector<int64_t> ids(2 * 8);
  StatusResult result = consume(falcon_session_generate_greedy(
      session.get(), prompts.data(), 2, 4, 8, ids.size(), 0, 0, ids.data(),
      nullptr, nullptr, nullptr));
  ASSERT_TRUE(result.ok()) << result.message;
  std::vector<int64_t> row0(ids.begin(), ids.begin() + 8);
  std::vector<int64_t> row1(ids.begin() + 8, ids.end());
  EXPECT_EQ(row0, fakeGreedy({1, 2, 3, 4}, 8, artifact.salt()));
  EXPECT_EQ(row1, fakeGreedy({200, 100, 50, 25}, 8, artifact.salt()));
  EXPECT_NE(row0, row1);
}

TEST_F(RuntimeSession, GreedyGenerationZeroNewTokens) {
  SessionPtr session = createSession(1, 8);
  falcon_generate_stats_t stats;
  StatusResult result = consume(falcon_session_generate_greedy(
      session.get(), kPrompt.data(), 1, 7, 0, 0, 0, 0, nullptr, nullptr, nullptr, &stats));
  ASSERT_TRUE(result.ok()) << result.message;
  EXPECT_EQ(lengthOf(session.get()), 7);
  EXPECT_EQ(stats.decode_tokens, 0);
}

TEST_F(RuntimeSession, GreedyTiesPickTheLowestId) {
  artifact.weights()[1] = FAKE_TIE_MARKER;
  artifact.write();
  falcon_model_t *raw = nullptr;
  ASSERT_TRUE(
      consume(falcon_model_open(artifact.dir().c_str(), nullptr, &raw)).ok());
  model.reset(raw);
  SessionPtr session = createSession(1, 16);
  std::vector<int64_t> ids(5, -1);
  ASSERT_TRUE(consume(falcon_session_generate_greedy(
                          session.get(), kPrompt.data(), 1, 7, 5, ids.size(), 0, 0,
                          ids.data(), nullptr, nullptr, nullptr))
                  .ok());
  EXPECT_EQ(ids, std::vector<int64_t>(5, 0));
}

TEST_F(RuntimeSession, MisshapenLogitsFromTheHostLibrary) {
  artifact.weights()[2] = FAKE_BAD_SHAPE_MARKER;
  artifact.write();
  falcon_model_t *raw = nullptr;
  ASSERT_TRUE(
      consume(falcon_model_open(artifact.dir().c_str(), nullptr, &raw)).ok());
  model.reset(raw);
  SessionPtr session = createSession(1, 16);
  StatusResult result = consume(
      falcon_session_prefill(session.get(), kPrompt.data(), 1, 7, 0, nullptr));
  EXPECT_EQ(result.code, FALCON_STATUS_INTERNAL);
  EXPECT_EQ(result.message, "the host library returned logits of shape [1, "
                            "7, 255], expected [1, 7, 256]");
  EXPECT_EQ(lengthOf(session.get()), 0);
  EXPECT_EQ(calls(), 1);
}

TEST_F(RuntimeSession, ResetStartsOver) {
  SessionPtr session = createSession(1, 16);
  std::vector<int64_t> first(5), second(5);
  ASSERT_TRUE(consume(falcon_session_generate_greedy(
                          session.get(), kPrompt.data(), 1, 7, 5, 5, 0, 0,
                          first.data(), nullptr, nullptr, nullptr))
                  .ok());
  ASSERT_TRUE(consume(falcon_session_reset(session.get())).ok());
  EXPECT_EQ(lengthOf(session.get()), 0);
  ASSERT_TRUE(consume(falcon_session_generate_greedy(
                          session.get(), kPrompt.data(), 1, 7, 5, 5, 0, 0,
                          second.data(), nullptr, nullptr, nullptr))
                  .ok());
  EXPECT_EQ(first, second);
}

TEST_F(RuntimeSession, SessionsAreIndependent) {
  SessionPtr a = createSession(1, 16);
  SessionPtr b = createSession(1, 16);
  int64_t token = 3;
  ASSERT_TRUE(
      consume(falcon_session_prefill(a.get(), kPrompt.data(), 1, 7, 0, nullptr))
          .ok());
  std::vector<float> logits(FAKE_VOCAB_SIZE);
  ASSERT_TRUE(consume(falcon_session_decode(b.get(), &token, 1, logits.size(),
                                            logits.data()))
                  .ok());
  EXPECT_EQ(lengthOf(a.get()), 7);
  EXPECT_EQ(lengthOf(b.get()), 1);
  EXPECT_THAT(logits, ElementsAreArray(fakeLogits({3}, artifact.salt())));
}

TEST_F(RuntimeSession, SessionKeepsTheModelAlive) {
  SessionPtr session = createSession(1, 16);
  model.reset();
  std::vector<int64_t> ids(3);
  StatusResult result = consume(falcon_session_generate_greedy(
      session.get(), kPrompt.data(), 1, 7, 3, ids.size(), 0, 0, ids.data(),
      nullptr, nullptr, nullptr));
  ASSERT_TRUE(result.ok()) << result.message;
  EXPECT_EQ(ids, fakeGreedy(kPrompt, 3, artifact.salt()));
  EXPECT_EQ(artifact.counter("fake_model_abi_errors"), 0);
  // The session held the last reference: the library goes with it.
  session.reset();
  EXPECT_EQ(artifact.counter("fake_model_calls"), -1);
}

TEST_F(RuntimeSession, TokenIdTooLarge) {
  SessionPtr session = createSession(1, 16);
  std::vector<int64_t> prompt = {1, 2, 300, 4};
  std::vector<int64_t> ids(4);
  StatusResult result = consume(falcon_session_generate_greedy(
      session.get(), prompt.data(), 1, 4, 4, ids.size(), 0, 0, ids.data(), nullptr, nullptr,
      nullptr));
  EXPECT_EQ(result.code, FALCON_STATUS_OUT_OF_RANGE);
  EXPECT_EQ(result.message,
            "token id 300 at position 2 is out of range for vocab size 256");
  // Refused before anything ran: the session is unchanged.
  EXPECT_EQ(calls(), 0);
  EXPECT_EQ(lengthOf(session.get()), 0);

  result = consume(
      falcon_session_prefill(session.get(), prompt.data(), 1, 4, 0, nullptr));
  EXPECT_EQ(result.message,
            "token id 300 at position 2 is out of range for vocab size 256");
  int64_t token = FAKE_VOCAB_SIZE;
  result = consume(falcon_session_decode(session.get(), &token, 1, 0, nullptr));
  EXPECT_EQ(result.message,
            "token id 256 at position 0 is out of range for vocab size 256");
  EXPECT_EQ(calls(), 0);
}

TEST_F(RuntimeSession, NegativeTokenId) {
  SessionPtr session = createSession(1, 16);
  std::vector<int64_t> prompt = {-1, 2};
  StatusResult result = consume(
      falcon_session_prefill(session.get(), prompt.data(), 1, 2, 0, nullptr));
  EXPECT_EQ(result.code, FALCON_STATUS_OUT_OF_RANGE);
  EXPECT_EQ(result.message,
            "token id -1 at position 0 is out of range for vocab size 256");
  EXPECT_EQ(lengthOf(session.get()), 0);
}

TEST_F(RuntimeSession, BadTokenInBatchNamesTheRow) {
  SessionPtr session = createSession(2, 16);
  std::vector<int64_t> prompts = {1, 2, 3, 4, 5, 999};
  StatusResult result = consume(
      falcon_session_prefill(session.get(), prompts.data(), 2, 3, 0, nullptr));
  EXPECT_EQ(result.message, "token id 999 at batch row 1, position 2 is out "
                            "of range for vocab size 256");
}

TEST_F(RuntimeSession, PromptPlusNewTokensBeyondCapacity) {
  SessionPtr session = createSession(1, 16);
  std::vector<int64_t> ids(20);
  StatusResult result = consume(falcon_session_generate_greedy(
      session.get(), kPrompt.data(), 1, 7, 20, ids.size(), 0, 0, ids.data(),
      nullptr, nullptr, nullptr));
  EXPECT_EQ(result.code, FALCON_STATUS_OUT_OF_RANGE);
  EXPECT_EQ(result.message, "prompt (7 tokens) plus 20 new tokens exceeds "
                            "the KV-cache capacity of 16");
  EXPECT_EQ(calls(), 0);

  // Exactly full is fine.
  result = consume(falcon_session_generate_greedy(
      session.get(), kPrompt.data(), 1, 7, 9, ids.size(), 0, 0, ids.data(),
      nullptr, nullptr, nullptr));
  EXPECT_TRUE(result.ok()) << result.message;

  // What is already cached counts.
  result = consume(falcon_session_generate_greedy(
      session.get(), kPrompt.data(), 1, 1, 1, ids.size(), 0, 0, ids.data(),
      nullptr, nullptr, nullptr));
  EXPECT_EQ(result.message, "cache length 15 plus prompt (1 tokens) plus 1 "
                            "new tokens exceeds the KV-cache capacity of 16");

  // Absurd requests do not overflow.
  result = consume(falcon_session_generate_greedy(
      session.get(), kPrompt.data(), 1, 1, INT64_MAX, ids.size(), 0, 0, ids.data(),
      nullptr, nullptr, nullptr));
  EXPECT_EQ(result.code, FALCON_STATUS_OUT_OF_RANGE);
}

TEST_F(RuntimeSession, PrefillAndDecodeBeyondCapacity) {
  SessionPtr session = createSession(1, 8);
  StatusResult result = consume(
      falcon_session_prefill(session.get(), kPrompt.data(), 1, 7, 0, nullptr));
  ASSERT_TRUE(result.ok()) << result.message;
  result = consume(
      falcon_session_prefill(session.get(), kPrompt.data(), 1, 2, 0, nullptr));
  EXPECT_EQ(result.code, FALCON_STATUS_OUT_OF_RANGE);
  EXPECT_EQ(result.message, "cache length 7 plus prompt (2 tokens) exceeds "
                            "the KV-cache capacity of 8");
  int64_t token = 1;
  ASSERT_TRUE(
      consume(falcon_session_decode(session.get(), &token, 1, 0, nullptr))
          .ok());
  result = consume(falcon_session_decode(session.get(), &token, 1, 0, nullptr));
  EXPECT_EQ(result.code, FALCON_STATUS_OUT_OF_RANGE);
  EXPECT_EQ(result.message, "decode: the KV cache is full (capacity 8 tokens)");
  EXPECT_EQ(lengthOf(session.get()), 8);
  EXPECT_EQ(calls(), 2);
}

TEST_F(RuntimeSession, BadArguments) {
  SessionPtr session = createSession(1, 16);
  StatusResult result = consume(
      falcon_session_prefill(session.get(), kPrompt.data(), 2, 3, 0, nullptr));
  EXPECT_EQ(result.code, FALCON_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(result.message, "falcon_session_prefill: batch size 2 does not "
                            "match the session's batch size 1");
  result = consume(
      falcon_session_prefill(session.get(), kPrompt.data(), 1, 0, 0, nullptr));
  EXPECT_THAT(result.message, HasSubstr("sequence_length must be positive"));
  result =
      consume(falcon_session_prefill(session.get(), nullptr, 1, 3, 0, nullptr));
  EXPECT_EQ(result.message, "falcon_session_prefill: token_ids is NULL");
  result =
      consume(falcon_session_decode(nullptr, kPrompt.data(), 1, 0, nullptr));
  EXPECT_EQ(result.message, "falcon_session_decode: session is NULL");

  std::vector<float> small(10);
  result = consume(falcon_session_prefill(session.get(), kPrompt.data(), 1, 7,
                                          small.size(), small.data()));
  EXPECT_EQ(result.code, FALCON_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(result.message,
            "falcon_session_prefill: out_logits has room for 10 elements but "
            "the result has 1792");

  std::vector<int64_t> ids(2);
  result = consume(falcon_session_generate_greedy(
      session.get(), kPrompt.data(), 1, 7, 3, ids.size(), 0, 0, ids.data(),
      nullptr, nullptr, nullptr));
  EXPECT_EQ(result.message, "falcon_session_generate_greedy: out_ids has room "
                            "for 2 elements but the result has 3");
  result = consume(falcon_session_generate_greedy(
      session.get(), kPrompt.data(), 1, 7, 3, 3, 0, 0, nullptr, nullptr, nullptr, nullptr));
  EXPECT_EQ(result.message, "falcon_session_generate_greedy: out_ids is NULL");
  result = consume(falcon_session_generate_greedy(session.get(), kPrompt.data(),
                                                  1, 7, -1, 0, 0, 0, nullptr,
                                                  nullptr, nullptr, nullptr));
  EXPECT_THAT(result.message, HasSubstr("max_new_tokens must not be negative"));
  EXPECT_EQ(calls(), 0);
  EXPECT_EQ(lengthOf(session.get()), 0);
}

} // namespace

namespace {

// weights.bin written in place under an open model: the next forward call
// reports it instead of returning results of other weights.
TEST_F(RuntimeSession, WeightsChangedInPlaceAreReported) {
  SessionPtr session = createSession(1, 16);
  ASSERT_TRUE(consume(falcon_session_prefill(session.get(), kPrompt.data(), 1,
                                             int64_t(kPrompt.size()), 0, nullptr))
                  .ok());
  {
    // Same size, one byte different, through a second descriptor.
    std::FILE *file = std::fopen(artifact.path("weights.bin").c_str(), "r+b");
    ASSERT_NE(file, nullptr);
    int byte = std::fgetc(file);
    std::fseek(file, 0, SEEK_SET);
    std::fputc(byte ^ 1, file);
    std::fclose(file);
  }
  // Timestamps are at least a clock tick apart on every file system we run
  // on; make sure the change is visible whatever the granularity.
  struct timespec times[2] = {{0, UTIME_OMIT}, {1, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, artifact.path("weights.bin").c_str(), times, 0), 0);
  int64_t next = 5;
  StatusResult result = consume(falcon_session_prefill(session.get(), &next, 1, 1, 0, nullptr));
  EXPECT_EQ(result.code, FALCON_STATUS_DATA_LOSS);
  EXPECT_THAT(result.message, HasSubstr("weights.bin: changed while in use"));
}

} // namespace
