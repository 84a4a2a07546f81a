//===- ReferenceChecksum.h - weights checksum by definition ----*- C++ -*-===//
//
// falcon/Support/Checksum.h's function written out with xxhash.h, for tests
// that check the library (and the runtime) against the definition rather
// than against themselves.
//
//===----------------------------------------------------------------------===//
#ifndef FALCON_TEST_UNIT_REFERENCECHECKSUM_H
#define FALCON_TEST_UNIT_REFERENCECHECKSUM_H

#include "llvm/Support/Endian.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace falcon::test {

/// XXH3-64 of the 64 MiB chunks' XXH3-64s as little-endian words.
inline uint64_t referenceChecksum(const std::vector<uint8_t> &bytes) {
  constexpr size_t chunkBytes = size_t(64) << 20;
  std::vector<uint8_t> words;
  for (size_t at = 0; at < bytes.size(); at += chunkBytes) {
    uint8_t word[8];
    llvm::support::endian::write64le(
        word, XXH3_64bits(&bytes[at], std::min(chunkBytes, bytes.size() - at)));
    words.insert(words.end(), word, word + 8);
  }
  return XXH3_64bits(words.data(), words.size());
}

} // namespace falcon::test

#endif // FALCON_TEST_UNIT_REFERENCECHECKSUM_H
