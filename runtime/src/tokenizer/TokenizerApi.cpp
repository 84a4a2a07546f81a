//===- TokenizerApi.cpp - falcon_tokenizer_* -------------------*- C++ -*-===//
//
// The C API over falcon::tokenizer::Tokenizer: argument checks and the
// caller-buffer convention (OUT_OF_RANGE with the size needed).
//
//===----------------------------------------------------------------------===//

#include "falcon/tokenizer.h"

#include "core/Status.h"
#include "tokenizer/Tokenizer.h"

#include <cstring>
#include <new>

using namespace falcon::runtime;
using falcon::tokenizer::Tokenizer;

struct falcon_tokenizer_t {
  std::unique_ptr<Tokenizer> impl;
};

falcon_status_t falcon_tokenizer_open(const char *path,
                                      falcon_tokenizer_t **out_tokenizer) {
  if (!out_tokenizer)
    return makeNullArgumentStatus("falcon_tokenizer_open", "out_tokenizer");
  *out_tokenizer = nullptr;
  if (!path)
    return makeNullArgumentStatus("falcon_tokenizer_open", "path");
  std::unique_ptr<Tokenizer> impl;
  FALCON_RETURN_IF_ERROR(Tokenizer::open(path, impl));
  auto *tokenizer = new (std::nothrow) falcon_tokenizer_t{std::move(impl)};
  if (!tokenizer)
    return makeStatus(FALCON_STATUS_RESOURCE_EXHAUSTED,
                      "falcon_tokenizer_open: out of memory");
  *out_tokenizer = tokenizer;
  return nullptr;
}

void falcon_tokenizer_release(falcon_tokenizer_t *tokenizer) {
  delete tokenizer;
}

falcon_status_t falcon_tokenizer_encode(falcon_tokenizer_t *tokenizer,
                                        const char *text, size_t length,
                                        bool add_special_tokens,
                                        int64_t *out_ids, size_t ids_capacity,
                                        size_t *out_count) {
  if (!out_count)
    return makeNullArgumentStatus("falcon_tokenizer_encode", "out_count");
  *out_count = 0;
  if (!tokenizer)
    return makeNullArgumentStatus("falcon_tokenizer_encode", "tokenizer");
  if (!text && length)
    return makeNullArgumentStatus("falcon_tokenizer_encode", "text");
  if (!out_ids && ids_capacity)
    return makeNullArgumentStatus("falcon_tokenizer_encode", "out_ids");
  std::vector<int64_t> ids;
  FALCON_RETURN_IF_ERROR(tokenizer->impl->encode(
      llvm::StringRef(text ? text : "", length), add_special_tokens, ids));
  *out_count = ids.size();
  if (ids.size() > ids_capacity)
    return makeStatus(FALCON_STATUS_OUT_OF_RANGE,
                      "falcon_tokenizer_encode: " + llvm::Twine(ids.size()) +
                          " ids do not fit a buffer of " +
                          llvm::Twine(ids_capacity));
  if (!ids.empty())
    std::memcpy(out_ids, ids.data(), ids.size() * sizeof(int64_t));
  return nullptr;
}

falcon_status_t falcon_tokenizer_decode(const falcon_tokenizer_t *tokenizer,
                                        const int64_t *ids, size_t count,
                                        bool skip_special_tokens,
                                        char *out_text, size_t text_capacity,
                                        size_t *out_length) {
  if (!out_length)
    return makeNullArgumentStatus("falcon_tokenizer_decode", "out_length");
  *out_length = 0;
  if (!tokenizer)
    return makeNullArgumentStatus("falcon_tokenizer_decode", "tokenizer");
  if (!ids && count)
    return makeNullArgumentStatus("falcon_tokenizer_decode", "ids");
  if (!out_text && text_capacity)
    return makeNullArgumentStatus("falcon_tokenizer_decode", "out_text");
  std::string text;
  FALCON_RETURN_IF_ERROR(tokenizer->impl->decode(
      llvm::ArrayRef<int64_t>(ids, count), skip_special_tokens, text));
  *out_length = text.size();
  if (text.size() > text_capacity)
    return makeStatus(FALCON_STATUS_OUT_OF_RANGE,
                      "falcon_tokenizer_decode: " + llvm::Twine(text.size()) +
                          " bytes do not fit a buffer of " +
                          llvm::Twine(text_capacity));
  if (!text.empty())
    std::memcpy(out_text, text.data(), text.size());
  return nullptr;
}

falcon_status_t falcon_tokenizer_token_to_id(const falcon_tokenizer_t *tokenizer,
                                             const char *token,
                                             int64_t *out_id) {
  if (!out_id)
    return makeNullArgumentStatus("falcon_tokenizer_token_to_id", "out_id");
  *out_id = -1;
  if (!tokenizer)
    return makeNullArgumentStatus("falcon_tokenizer_token_to_id", "tokenizer");
  if (!token)
    return makeNullArgumentStatus("falcon_tokenizer_token_to_id", "token");
  int64_t id = tokenizer->impl->tokenToId(token);
  if (id < 0)
    return makeStatus(FALCON_STATUS_NOT_FOUND,
                      "no token '" + llvm::Twine(token) + "' in the vocabulary");
  *out_id = id;
  return nullptr;
}

int64_t falcon_tokenizer_vocab_size(const falcon_tokenizer_t *tokenizer) {
  return tokenizer ? tokenizer->impl->vocabSize() : 0;
}
