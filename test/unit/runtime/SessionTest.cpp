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
  // Logits asked for: every position's.
  EXPECT_EQ(artifact.counter("fake_model_last_logits_per_row"), 7);
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
  EXPECT_EQ(artifact.counter("fake_model_last_logits_per_row"), 1);
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
  // No logits asked for: the last position's alone.
  EXPECT_EQ(result.message, "the host library returned logits of shape [1, "
                            "1, 255], expected [1, 1, 256]");
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

//===----------------------------------------------------------------------===//
// falcon_session_generate: prompts of different lengths, sampling, stops and
// the token callback.
//===----------------------------------------------------------------------===//

namespace {

/// The greedy ids of `prompts` generated together, each padded to the
/// longest with `padding`.
struct Batch {
  std::vector<int64_t> ids, lengths;
  int64_t longest = 0;
  Batch(const std::vector<std::vector<int64_t>> &prompts, int64_t padding) {
    for (const std::vector<int64_t> &prompt : prompts)
      longest = std::max(longest, int64_t(prompt.size()));
    for (const std::vector<int64_t> &prompt : prompts) {
      ids.insert(ids.end(), prompt.begin(), prompt.end());
      ids.insert(ids.end(), size_t(longest) - prompt.size(), padding);
      lengths.push_back(int64_t(prompt.size()));
    }
  }
};

struct Streamed {
  std::vector<std::pair<int64_t, int64_t>> tokens;
  int64_t stopRow = -1, stopAfter = -1;
};

int recordToken(void *userData, int64_t row, int64_t id) {
  Streamed &streamed = *static_cast<Streamed *>(userData);
  streamed.tokens.emplace_back(row, id);
  int64_t seen = 0;
  for (auto [r, token] : streamed.tokens)
    seen += r == row;
  return row == streamed.stopRow && seen == streamed.stopAfter;
}

} // namespace

TEST_F(RuntimeSession, MixedLengthRowsEqualEachPromptAlone) {
  const std::vector<std::vector<int64_t>> prompts = {
      {1, 17, 42, 99, 3, 250, 7}, {5, 6, 7}, {200, 201, 202, 203, 204}};
  // The padding is out of range: the runtime must not read it.
  Batch batch(prompts, -5);
  constexpr int64_t kNew = 4;
  SessionPtr session = createSession(3, 16);
  std::vector<int64_t> ids(3 * kNew), counts(3);
  std::vector<float> promptLogits(3 * batch.longest * FAKE_VOCAB_SIZE),
      stepLogits(3 * kNew * FAKE_VOCAB_SIZE);
  falcon_generate_options_t options;
  falcon_generate_options_initialize(&options);
  options.max_new_tokens = kNew;
  falcon_generate_outputs_t outputs = {ids.data(),          ids.size(),
                                       counts.data(),       promptLogits.data(),
                                       promptLogits.size(), stepLogits.data(),
                                       stepLogits.size(),   nullptr};
  StatusResult result = consume(falcon_session_generate(
      session.get(), batch.ids.data(), batch.lengths.data(), 3, batch.longest, &options,
      &outputs));
  ASSERT_TRUE(result.ok()) << result.message;
  EXPECT_THAT(counts, ElementsAreArray({kNew, kNew, kNew}));
  std::vector<int64_t> rowLengths(3);
  ASSERT_TRUE(consume(falcon_session_query_row_lengths(session.get(), 3, rowLengths.data()))
                  .ok());
  EXPECT_THAT(rowLengths, ElementsAreArray({7 + kNew - 1, 3 + kNew - 1, 5 + kNew - 1}));
  EXPECT_EQ(lengthOf(session.get()), 7 + kNew - 1);

  for (int64_t row = 0; row < 3; ++row) {
    const std::vector<int64_t> &prompt = prompts[size_t(row)];
    std::vector<int64_t> rowIds(ids.begin() + row * kNew, ids.begin() + (row + 1) * kNew);
    EXPECT_EQ(rowIds, fakeGreedy(prompt, kNew, artifact.salt())) << "row " << row;
    // Alone: the same logits at the row's own positions.
    SessionPtr alone = createSession(1, 16);
    std::vector<int64_t> aloneIds(kNew);
    std::vector<float> aloneLogits(prompt.size() * FAKE_VOCAB_SIZE),
        aloneSteps(kNew * FAKE_VOCAB_SIZE);
    ASSERT_TRUE(consume(falcon_session_generate_greedy(
                            alone.get(), prompt.data(), 1, int64_t(prompt.size()), kNew,
                            aloneIds.size(), aloneLogits.size(), aloneSteps.size(),
                            aloneIds.data(), aloneLogits.data(), aloneSteps.data(), nullptr))
                    .ok());
    EXPECT_EQ(rowIds, aloneIds);
    std::vector<float> batchLogits(promptLogits.begin() + row * batch.longest * FAKE_VOCAB_SIZE,
                                   promptLogits.begin() + (row * batch.longest +
                                                           int64_t(prompt.size())) *
                                                              FAKE_VOCAB_SIZE);
    EXPECT_EQ(batchLogits, aloneLogits) << "row " << row;
    std::vector<float> batchSteps(stepLogits.begin() + row * kNew * FAKE_VOCAB_SIZE,
                                  stepLogits.begin() + (row + 1) * kNew * FAKE_VOCAB_SIZE);
    EXPECT_EQ(batchSteps, aloneSteps) << "row " << row;
  }
  // Rows of different lengths continue at their own positions.
  std::vector<int64_t> next = {ids[kNew - 1], ids[2 * kNew - 1], ids[3 * kNew - 1]};
  ASSERT_TRUE(consume(falcon_session_decode(session.get(), next.data(), 3, 0, nullptr)).ok());
  ASSERT_TRUE(consume(falcon_session_query_row_lengths(session.get(), 3, rowLengths.data()))
                  .ok());
  EXPECT_THAT(rowLengths, ElementsAreArray({7 + kNew, 3 + kNew, 5 + kNew}));
}

TEST_F(RuntimeSession, PrefillComputesTheLastLogitsUnlessAskedForAll) {
  // Rows of different lengths: each row's last real token, not the padded
  // end, gives its first new token.
  const std::vector<std::vector<int64_t>> prompts = {{1, 17, 42, 99, 3}, {5, 6}};
  Batch batch(prompts, 0);
  SessionPtr session = createSession(2, 16);
  std::vector<int64_t> ids(2), counts(2);
  std::vector<float> stepLogits(2 * FAKE_VOCAB_SIZE);
  falcon_generate_options_t options;
  falcon_generate_options_initialize(&options);
  options.max_new_tokens = 1;
  falcon_generate_outputs_t outputs = {ids.data(),     ids.size(), counts.data(), nullptr, 0,
                                       stepLogits.data(), stepLogits.size(), nullptr};
  StatusResult result = consume(falcon_session_generate(
      session.get(), batch.ids.data(), batch.lengths.data(), 2, batch.longest, &options,
      &outputs));
  ASSERT_TRUE(result.ok()) << result.message;
  EXPECT_EQ(calls(), 1);
  EXPECT_EQ(artifact.counter("fake_model_last_sequence_length"), 5);
  EXPECT_EQ(artifact.counter("fake_model_last_logits_per_row"), 1);
  for (int64_t row = 0; row < 2; ++row) {
    std::vector<float> rowLogits(stepLogits.begin() + row * FAKE_VOCAB_SIZE,
                                 stepLogits.begin() + (row + 1) * FAKE_VOCAB_SIZE);
    EXPECT_THAT(rowLogits, ElementsAreArray(fakeLogits(prompts[size_t(row)], artifact.salt())))
        << "row " << row;
    EXPECT_EQ(ids[size_t(row)], fakeGreedy(prompts[size_t(row)], 1, artifact.salt())[0]);
  }
  // A prefill without an output buffer computes one position per row too.
  SessionPtr alone = createSession(1, 16);
  ASSERT_TRUE(consume(falcon_session_prefill(alone.get(), kPrompt.data(), 1,
                                             int64_t(kPrompt.size()), 0, nullptr))
                  .ok());
  EXPECT_EQ(artifact.counter("fake_model_last_logits_per_row"), 1);
}

TEST_F(RuntimeSession, GenerationStopsAtStopTokensAndWhenTheCallbackSaysSo) {
  const std::vector<int64_t> first = {1, 17, 42}, second = {9, 8, 7, 6};
  const std::vector<int64_t> firstGreedy = fakeGreedy(first, 6, artifact.salt());
  const std::vector<int64_t> secondGreedy = fakeGreedy(second, 6, artifact.salt());
  ASSERT_EQ(std::count(firstGreedy.begin(), firstGreedy.begin() + 2, firstGreedy[2]), 0);
  Batch batch({first, second}, 0);
  SessionPtr session = createSession(2, 16);
  std::vector<int64_t> ids(12), counts(2);
  falcon_generate_options_t options;
  falcon_generate_options_initialize(&options);
  options.max_new_tokens = 6;
  // Row 0 stops at its third token (a stop id), row 1 when the callback
  // says so after its second.
  int64_t stop = firstGreedy[2];
  options.stop_token_ids = &stop;
  options.stop_token_count = 1;
  Streamed streamed;
  streamed.stopRow = 1;
  streamed.stopAfter = 2;
  options.token_callback = &recordToken;
  options.user_data = &streamed;
  falcon_generate_outputs_t outputs = {ids.data(), ids.size(), counts.data(), nullptr, 0,
                                       nullptr,    0,          nullptr};
  ASSERT_TRUE(consume(falcon_session_generate(session.get(), batch.ids.data(),
                                              batch.lengths.data(), 2, batch.longest,
                                              &options, &outputs))
                  .ok());
  int64_t secondStop = std::find(secondGreedy.begin(), secondGreedy.end(), stop) -
                       secondGreedy.begin();
  int64_t secondCount = std::min<int64_t>(2, secondStop + 1);
  EXPECT_THAT(counts, ElementsAreArray({int64_t(3), secondCount}));
  EXPECT_THAT(std::vector<int64_t>(ids.begin(), ids.begin() + 6),
              ElementsAreArray({firstGreedy[0], firstGreedy[1], firstGreedy[2], int64_t(-1),
                                int64_t(-1), int64_t(-1)}));
  EXPECT_EQ(ids[6], secondGreedy[0]);
  // The callback saw every new token as it came, row by row, step by step.
  std::vector<std::pair<int64_t, int64_t>> expected = {{0, firstGreedy[0]},
                                                       {1, secondGreedy[0]}};
  expected.push_back({0, firstGreedy[1]});
  if (secondCount > 1)
    expected.push_back({1, secondGreedy[1]});
  expected.push_back({0, firstGreedy[2]});
  EXPECT_EQ(streamed.tokens, expected);
}

TEST_F(RuntimeSession, SamplingIsReproducibleAndIndependentOfTheOtherRows) {
  const std::vector<int64_t> prompt = {3, 1, 4, 1, 5};
  falcon_generate_options_t options;
  falcon_generate_options_initialize(&options);
  options.max_new_tokens = 12;
  options.sampling.temperature = 6.0;
  options.sampling.seed = 1234;
  auto sample = [&](int64_t rows, const falcon_generate_options_t &request) {
    std::vector<int64_t> prompts;
    for (int64_t row = 0; row < rows; ++row)
      prompts.insert(prompts.end(), prompt.begin(), prompt.end());
    SessionPtr session = createSession(rows, 32);
    std::vector<int64_t> ids(size_t(rows * request.max_new_tokens));
    falcon_generate_outputs_t outputs = {ids.data(), ids.size(), nullptr, nullptr, 0,
                                         nullptr,    0,          nullptr};
    StatusResult result =
        consume(falcon_session_generate(session.get(), prompts.data(), nullptr, rows,
                                        int64_t(prompt.size()), &request, &outputs));
    EXPECT_TRUE(result.ok()) << result.message;
    return ids;
  };
  std::vector<int64_t> once = sample(1, options);
  EXPECT_EQ(sample(1, options), once);
  // Not the greedy tokens (at temperature 6 the fake's distribution is
  // wide), and another seed gives other tokens.
  EXPECT_NE(once, fakeGreedy(prompt, 12, artifact.salt()));
  falcon_generate_options_t other = options;
  other.sampling.seed = 99;
  EXPECT_NE(sample(1, other), once);
  // Every row starts from the seed: two equal rows give the alone tokens.
  std::vector<int64_t> twice = sample(2, options);
  EXPECT_EQ(std::vector<int64_t>(twice.begin(), twice.begin() + 12), once);
  EXPECT_EQ(std::vector<int64_t>(twice.begin() + 12, twice.end()), once);
  // Top-k 1 is greedy whatever the temperature.
  falcon_generate_options_t topOne = options;
  topOne.sampling.top_k = 1;
  EXPECT_EQ(sample(1, topOne), fakeGreedy(prompt, 12, artifact.salt()));
}

TEST_F(RuntimeSession, GenerateRejectsBadRequestsWithoutRunning) {
  SessionPtr session = createSession(2, 8);
  const std::vector<int64_t> prompts = {1, 2, 3, 4, 5, 6};
  std::vector<int64_t> ids(8);
  falcon_generate_outputs_t outputs = {ids.data(), ids.size(), nullptr, nullptr, 0,
                                       nullptr,    0,          nullptr};
  falcon_generate_options_t options;
  falcon_generate_options_initialize(&options);
  options.max_new_tokens = 4;
  int64_t before = calls();
  auto request = [&](const int64_t *lengths) {
    return consume(falcon_session_generate(session.get(), prompts.data(), lengths, 2, 3,
                                           &options, &outputs));
  };
  const int64_t zero[] = {3, 0};
  StatusResult result = request(zero);
  EXPECT_EQ(result.code, FALCON_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(result.message,
            "falcon_session_generate: prompt_lengths[1] must be in [1, 3], found 0");
  const int64_t tooLong[] = {4, 3};
  EXPECT_EQ(request(tooLong).message,
            "falcon_session_generate: prompt_lengths[0] must be in [1, 3], found 4");
  options.sampling.top_p = 1.5;
  EXPECT_EQ(request(nullptr).message,
            "falcon_session_generate: top_p must be in (0, 1] (1 = off), got 1.5");
  options.sampling.top_p = 1.0;
  options.stop_token_count = 2;
  EXPECT_EQ(request(nullptr).message,
            "falcon_session_generate: stop_token_ids must hold stop_token_count (2) ids");
  options.stop_token_count = 0;
  options.max_new_tokens = 6;
  const int64_t mixed[] = {1, 3};
  result = request(mixed);
  EXPECT_EQ(result.code, FALCON_STATUS_OUT_OF_RANGE);
  EXPECT_EQ(result.message, "row 1: prompt (3 tokens) plus 6 new tokens exceeds the "
                            "KV-cache capacity of 8");
  EXPECT_EQ(consume(falcon_session_generate(session.get(), prompts.data(), nullptr, 2, 3,
                                            &options, nullptr))
                .message,
            "falcon_session_generate: outputs is NULL");
  EXPECT_EQ(calls(), before);
  EXPECT_EQ(lengthOf(session.get()), 0);
  std::vector<int64_t> rowLengths(1);
  EXPECT_EQ(consume(falcon_session_query_row_lengths(session.get(), 1, rowLengths.data()))
                .message,
            "falcon_session_query_row_lengths: out_lengths has room for 1 elements but the "
            "result has 2");
  // No precision guard in this artifact: no entries, and nothing to write.
  size_t count = 99;
  EXPECT_EQ(falcon_session_query_precision_fallbacks(session.get(), 0, nullptr, &count),
            nullptr);
  EXPECT_EQ(count, 0u);
  EXPECT_EQ(consume(falcon_session_query_precision_fallbacks(session.get(), 0, nullptr, nullptr))
                .message,
            "falcon_session_query_precision_fallbacks: out_count is NULL");
}
