//===- TokenizerTest.cpp - falcon_tokenizer_* C API ------------------------===//
//
// The buffer convention (OUT_OF_RANGE with the size needed), lookups and
// argument checks, on the GPT-2 style fixture of test/fixtures/tokenizer.
//
//===----------------------------------------------------------------------===//

#include "falcon/tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

namespace {

const char *kFixture = FALCON_TOKENIZER_FIXTURES "/gpt2";

/// The code of `status`, freeing it.
falcon_status_code_t codeOf(falcon_status_t status) {
  falcon_status_code_t code = falcon_status_code(status);
  falcon_status_free(status);
  return code;
}

class TokenizerTest : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_EQ(codeOf(falcon_tokenizer_open(kFixture, &tokenizer)),
              FALCON_STATUS_OK);
  }
  void TearDown() override { falcon_tokenizer_release(tokenizer); }
  falcon_tokenizer_t *tokenizer = nullptr;
};

TEST_F(TokenizerTest, EncodeReportsTheNeededCapacity) {
  const std::string text = "Hello world<|endoftext|> 12345";
  size_t count = 123;
  // No buffer: OUT_OF_RANGE with the count.
  EXPECT_EQ(codeOf(falcon_tokenizer_encode(tokenizer, text.data(), text.size(),
                                           false, nullptr, 0, &count)),
            FALCON_STATUS_OUT_OF_RANGE);
  ASSERT_GT(count, 2u);
  std::vector<int64_t> ids(count, -7);
  size_t needed = count;
  // One short: still OUT_OF_RANGE, nothing written.
  EXPECT_EQ(codeOf(falcon_tokenizer_encode(tokenizer, text.data(), text.size(),
                                           false, ids.data(), needed - 1,
                                           &count)),
            FALCON_STATUS_OUT_OF_RANGE);
  EXPECT_EQ(count, needed);
  EXPECT_EQ(ids[0], -7);
  // Exactly enough.
  EXPECT_EQ(codeOf(falcon_tokenizer_encode(tokenizer, text.data(), text.size(),
                                           false, ids.data(), ids.size(),
                                           &count)),
            FALCON_STATUS_OK);
  EXPECT_EQ(count, needed);
  int64_t eot = -1;
  EXPECT_EQ(codeOf(falcon_tokenizer_token_to_id(tokenizer, "<|endoftext|>", &eot)),
            FALCON_STATUS_OK);
  EXPECT_NE(std::find(ids.begin(), ids.end(), eot), ids.end());

  // Decode: the same convention, and the text comes back.
  size_t length = 0;
  EXPECT_EQ(codeOf(falcon_tokenizer_decode(tokenizer, ids.data(), count, false,
                                           nullptr, 0, &length)),
            FALCON_STATUS_OUT_OF_RANGE);
  EXPECT_EQ(length, text.size());
  std::string decoded(length, '\0');
  EXPECT_EQ(codeOf(falcon_tokenizer_decode(tokenizer, ids.data(), count, false,
                                           decoded.data(), decoded.size(),
                                           &length)),
            FALCON_STATUS_OK);
  EXPECT_EQ(decoded, text);
  // Skipping special tokens drops <|endoftext|>.
  EXPECT_EQ(codeOf(falcon_tokenizer_decode(tokenizer, ids.data(), count, true,
                                           decoded.data(), decoded.size(),
                                           &length)),
            FALCON_STATUS_OK);
  EXPECT_EQ(std::string(decoded.data(), length), "Hello world 12345");
}

TEST_F(TokenizerTest, LookupsAndVocabSize) {
  EXPECT_EQ(falcon_tokenizer_vocab_size(tokenizer), 2500);
  EXPECT_EQ(falcon_tokenizer_vocab_size(nullptr), 0);
  int64_t id = -1;
  EXPECT_EQ(codeOf(falcon_tokenizer_token_to_id(tokenizer, "<|endoftext|>", &id)),
            FALCON_STATUS_OK);
  EXPECT_EQ(id, 0);
  // Vocabulary tokens are spelled byte-level: " the" is "Ġthe".
  EXPECT_EQ(codeOf(falcon_tokenizer_token_to_id(tokenizer, "\xC4\xA0the", &id)),
            FALCON_STATUS_OK);
  EXPECT_GT(id, 0);
  EXPECT_EQ(codeOf(falcon_tokenizer_token_to_id(tokenizer, "no such token", &id)),
            FALCON_STATUS_NOT_FOUND);
  EXPECT_EQ(id, -1);
}

TEST_F(TokenizerTest, BadInput) {
  size_t count = 5;
  int64_t ids[4];
  EXPECT_EQ(codeOf(falcon_tokenizer_encode(tokenizer, "a\xFF", 2, false, ids, 4,
                                           &count)),
            FALCON_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(count, 0u);
  // Empty text: no ids, OK, even with no buffer.
  EXPECT_EQ(codeOf(falcon_tokenizer_encode(tokenizer, nullptr, 0, false,
                                           nullptr, 0, &count)),
            FALCON_STATUS_OK);
  EXPECT_EQ(count, 0u);
  const int64_t bad[] = {1, 2500};
  char text[16];
  size_t length = 9;
  falcon_status_t status =
      falcon_tokenizer_decode(tokenizer, bad, 2, false, text, sizeof text, &length);
  EXPECT_EQ(falcon_status_code(status), FALCON_STATUS_OUT_OF_RANGE);
  EXPECT_NE(std::strstr(falcon_status_message(status), "token id 2500"), nullptr);
  falcon_status_free(status);
  EXPECT_EQ(length, 0u);
  EXPECT_EQ(codeOf(falcon_tokenizer_encode(nullptr, "a", 1, false, ids, 4,
                                           &count)),
            FALCON_STATUS_INVALID_ARGUMENT);
}

TEST(TokenizerOpenTest, MissingFileAndNullArguments) {
  falcon_tokenizer_t *tokenizer = reinterpret_cast<falcon_tokenizer_t *>(1);
  EXPECT_EQ(codeOf(falcon_tokenizer_open("/nonexistent/tokenizer.json", &tokenizer)),
            FALCON_STATUS_NOT_FOUND);
  EXPECT_EQ(tokenizer, nullptr);
  EXPECT_EQ(codeOf(falcon_tokenizer_open(nullptr, &tokenizer)),
            FALCON_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(codeOf(falcon_tokenizer_open(kFixture, nullptr)),
            FALCON_STATUS_INVALID_ARGUMENT);
  falcon_tokenizer_release(nullptr);
}

} // namespace
