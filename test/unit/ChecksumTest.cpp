//===- ChecksumTest.cpp - the checksum of an artifact's weight files ------===//
//
// The expected values come from the definition in Checksum.h, computed with
// xxhash.h directly (ReferenceChecksum.h), and from one fixed known answer
// that pins the definition (a change to it is a change to the artifact
// format).
//
//===----------------------------------------------------------------------===//

#include "falcon/Support/Checksum.h"
#include "ReferenceChecksum.h"

#include "gtest/gtest.h"

#include <thread>
#include <vector>

using namespace falcon;
using falcon::test::referenceChecksum;

namespace {

std::vector<uint8_t> patternBytes(uint64_t size) {
  std::vector<uint8_t> bytes(size);
  for (uint64_t index = 0; index < size; ++index)
    bytes[index] = uint8_t((index * 37 + 11) & 0xff);
  return bytes;
}

uint64_t buildInPieces(const std::vector<uint8_t> &bytes,
                       llvm::ArrayRef<uint64_t> pieceSizes) {
  ChecksumBuilder builder;
  uint64_t at = 0;
  for (size_t piece = 0; at < bytes.size(); ++piece) {
    uint64_t length = std::min<uint64_t>(pieceSizes[piece % pieceSizes.size()],
                                         bytes.size() - at);
    builder.update(llvm::ArrayRef<uint8_t>(&bytes[at], length));
    at += length;
  }
  return builder.digest();
}

TEST(Checksum, KnownAnswer) {
  // The fake artifacts' weights (test/unit/runtime, test/Runtime/Inputs).
  std::vector<uint8_t> bytes = patternBytes(1000);
  EXPECT_EQ(formatChecksum(computeChecksum(bytes.data(), bytes.size())),
            "xxh3-64x64m:a3a258d646b0ab16");
  EXPECT_EQ(computeChecksum(bytes.data(), bytes.size()),
            referenceChecksum(bytes));
}

TEST(Checksum, EmptyInputHasNoChunks) {
  EXPECT_EQ(computeChecksum(nullptr, 0), XXH3_64bits(nullptr, 0));
  EXPECT_EQ(ChecksumBuilder().digest(), XXH3_64bits(nullptr, 0));
}

TEST(Checksum, IndependentOfThreadsAndPieces) {
  // Two full chunks and a short one.
  std::vector<uint8_t> bytes = patternBytes(2 * kChecksumChunkBytes + 12345);
  uint64_t expected = referenceChecksum(bytes);
  for (unsigned threads : {1u, 2u, 3u, 8u, 0u})
    EXPECT_EQ(computeChecksum(bytes.data(), bytes.size(), threads), expected)
        << threads << " threads";
  EXPECT_EQ(buildInPieces(bytes, {bytes.size()}), expected);
  EXPECT_EQ(buildInPieces(bytes, {1, 4096, 7 << 20, 33 << 20}), expected);
  // A digest midway does not disturb what follows.
  ChecksumBuilder builder;
  builder.update(llvm::ArrayRef<uint8_t>(bytes).take_front(100 << 20));
  (void)builder.digest();
  builder.update(llvm::ArrayRef<uint8_t>(bytes).drop_front(100 << 20));
  EXPECT_EQ(builder.digest(), expected);
}

TEST(Checksum, ExactChunkMultipleHasNoEmptyChunk) {
  std::vector<uint8_t> bytes = patternBytes(kChecksumChunkBytes);
  uint64_t expected = referenceChecksum(bytes);
  EXPECT_EQ(computeChecksum(bytes.data(), bytes.size(), 2), expected);
  EXPECT_EQ(buildInPieces(bytes, {kChecksumChunkBytes / 2}), expected);
  EXPECT_NE(expected, XXH3_64bits(bytes.data(), bytes.size()));
}

TEST(Checksum, ReportsProgressOnTheCallingThread) {
  std::vector<uint8_t> bytes = patternBytes(3 * kChecksumChunkBytes - 1);
  for (unsigned threads : {1u, 4u}) {
    std::vector<uint64_t> reported;
    std::thread::id caller = std::this_thread::get_id();
    bool otherThread = false;
    computeChecksum(bytes.data(), bytes.size(), threads,
                    [&](uint64_t done, uint64_t total) {
                      otherThread |= std::this_thread::get_id() != caller;
                      EXPECT_EQ(total, bytes.size());
                      reported.push_back(done);
                    });
    EXPECT_FALSE(otherThread);
    ASSERT_FALSE(reported.empty());
    EXPECT_TRUE(std::is_sorted(reported.begin(), reported.end()));
    EXPECT_EQ(reported.back(), bytes.size());
    if (threads == 1) {
      EXPECT_EQ(reported, (std::vector<uint64_t>{kChecksumChunkBytes,
                                                 2 * kChecksumChunkBytes,
                                                 bytes.size(), bytes.size()}));
    }
  }
}

TEST(Checksum, FormatAndParse) {
  EXPECT_EQ(formatChecksum(0x0123456789abcdefULL),
            "xxh3-64x64m:0123456789abcdef");
  EXPECT_EQ(formatChecksum(0), "xxh3-64x64m:0000000000000000");
  llvm::Expected<uint64_t> parsed =
      parseChecksum("xxh3-64x64m:0123456789ABCDEF");
  ASSERT_TRUE(bool(parsed)) << llvm::toString(parsed.takeError());
  EXPECT_EQ(*parsed, 0x0123456789abcdefULL);
  parsed = parseChecksum("xxh3-64x64m:f");
  ASSERT_TRUE(bool(parsed)) << llvm::toString(parsed.takeError());
  EXPECT_EQ(*parsed, 15u);
  for (const char *bad : {"fnv1a64:0123456789abcdef", "xxh3-64x64m:",
                          "xxh3-64x64m:xyz", "xxh3-64x64m:0123456789abcdef0",
                          "xxh3-64x64m:+1", "0123456789abcdef"}) {
    llvm::Expected<uint64_t> value = parseChecksum(bad);
    ASSERT_FALSE(bool(value)) << bad;
    EXPECT_EQ(llvm::toString(value.takeError()),
              std::string("'") + bad +
                  "' is not of the form xxh3-64x64m:<16 hex digits>");
  }
}

} // namespace
