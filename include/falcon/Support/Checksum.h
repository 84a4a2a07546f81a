//===- Checksum.h - the checksum of an artifact's weight files --*- C++ -*-===//
//
// The writer (lib/Target/Artifact.cpp) and the runtime (WeightStore) compute
// the same function, and the manifest spells it one way; both live here.
// LLVM-only (no MLIR), since the runtime links this too.
//
// The function: the file is cut into kChecksumChunkBytes chunks (the last one
// shorter); each chunk gets its XXH3-64 (seed 0), and the checksum is the
// XXH3-64 of those digests written as little-endian 64-bit words, in chunk
// order. An empty file has no chunks: its checksum is XXH3-64 of no bytes.
// Chunks can be hashed on any number of threads, and the result never
// depends on how many did the work. XXH3 runs at memory speed, where the
// FNV-1a this replaces managed ~0.5 GB/s.
//
// The manifest spelling: kChecksumPrefix + 16 lower-case hex digits, e.g.
// "xxh3-64x64m:0123456789abcdef" (the prefix names the hash, its width and
// the chunk size, so a different scheme cannot be mistaken for this one).
//
//===----------------------------------------------------------------------===//
#ifndef FALCON_SUPPORT_CHECKSUM_H
#define FALCON_SUPPORT_CHECKSUM_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <memory>
#include <string>

namespace falcon {

/// Bytes per hashed chunk (64 MiB): part of the checksum's definition.
inline constexpr uint64_t kChecksumChunkBytes = 64ull << 20;

/// What precedes the 16 hex digits in manifest.json.
inline constexpr llvm::StringLiteral kChecksumPrefix = "xxh3-64x64m:";

/// Files at least this large (1 GiB) take long enough to verify that a
/// program should show progress; below it, callers pass no progress callback.
inline constexpr uint64_t kChecksumProgressMinBytes = 1ull << 30;

/// Called with the bytes hashed so far and the total; always on the thread
/// that called computeChecksum, never concurrently.
using ChecksumProgressFn =
    llvm::function_ref<void(uint64_t doneBytes, uint64_t totalBytes)>;

/// The checksum of `bytes`, which arrive in order through any number of
/// update() calls (the artifact writer hashes what it writes as it goes).
class ChecksumBuilder {
public:
  ChecksumBuilder();
  ~ChecksumBuilder();
  ChecksumBuilder(const ChecksumBuilder &) = delete;
  ChecksumBuilder &operator=(const ChecksumBuilder &) = delete;

  void update(llvm::ArrayRef<uint8_t> bytes);
  /// The checksum of everything passed to update() so far.
  uint64_t digest() const;

private:
  struct ChunkState;
  /// The chunk being filled.
  std::unique_ptr<ChunkState> chunk;
  uint64_t chunkFill = 0;
  llvm::SmallVector<uint64_t> chunkDigests;
};

/// The checksum of the `size` bytes at `data`, hashed on up to `maxThreads`
/// threads (0: one per hardware thread; never more than there are chunks).
/// The calling thread hashes too and reports `progress` after each of its
/// chunks and once at the end. A thread that cannot be started leaves its
/// share to the others, so this never fails.
uint64_t computeChecksum(const uint8_t *data, uint64_t size,
                         unsigned maxThreads = 0,
                         ChecksumProgressFn progress = nullptr);

/// kChecksumPrefix + 16 lower-case hex digits.
std::string formatChecksum(uint64_t checksum);

/// The value of a manifest checksum: kChecksumPrefix and 1 to 16 hex digits
/// of either case (the value, not its spelling, is what gets compared). The
/// error says what was expected and quotes `text`.
llvm::Expected<uint64_t> parseChecksum(llvm::StringRef text);

} // namespace falcon

#endif // FALCON_SUPPORT_CHECKSUM_H
