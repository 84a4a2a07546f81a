//===- Unicode.h - UTF-8 and character classes for the tokenizer -*- C++ -*-===//
//
// The few Unicode facts the pre-tokenizers need: UTF-8 decoding (strict for
// input, lossy for decoded output, as Rust's String::from_utf8_lossy) and the
// classes \p{L}, \p{N}, \s and punctuation from generated range tables.
//
//===----------------------------------------------------------------------===//

#ifndef FALCON_RUNTIME_TOKENIZER_UNICODE_H
#define FALCON_RUNTIME_TOKENIZER_UNICODE_H

#include "llvm/ADT/StringRef.h"

#include <cstddef>
#include <cstdint>
#include <string>

namespace falcon::tokenizer {

/// Character class bits.
enum CharClass : uint8_t {
  kLetter = 1,      // \p{L}
  kNumber = 2,      // \p{N}, Rust's char::is_numeric
  kWhiteSpace = 4,  // Oniguruma's Unicode \s (the White_Space property)
  kPunctuation = 8, // Rust's is_ascii_punctuation() || general category P*
};

/// The CharClass bits of code point `cp`.
uint8_t classify(uint32_t cp);

/// Decodes one UTF-8 character at `text[offset]` into `cp` and returns its
/// length in bytes; returns 0 when the bytes there are not valid UTF-8
/// (overlong forms, surrogates and values past U+10FFFF included).
size_t decodeUtf8(llvm::StringRef text, size_t offset, uint32_t &cp);

/// The offset of the first byte of `text` that does not start a valid UTF-8
/// character, or npos when all of it is valid.
size_t findInvalidUtf8(llvm::StringRef text);

/// Appends `cp` as UTF-8 to `out`.
void appendUtf8(uint32_t cp, std::string &out);

/// Appends `bytes` to `out` with each maximal invalid subsequence replaced by
/// U+FFFD, exactly as Rust's String::from_utf8_lossy.
void appendUtf8Lossy(llvm::StringRef bytes, std::string &out);

} // namespace falcon::tokenizer

#endif // FALCON_RUNTIME_TOKENIZER_UNICODE_H
