//===- Checksum.cpp - the checksum of an artifact's weight files ----------===//

#include "falcon/Support/Checksum.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/MathExtras.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <atomic>
#include <pthread.h>
#include <thread>
#include <vector>

// Compiled into this file (static functions), so neither the compiler nor
// libfalcon_runtime.so depends on libxxhash.so at run time: the package is
// a build dependency only.
#define XXH_INLINE_ALL
#include <xxhash.h>

using namespace falcon;

struct ChecksumBuilder::ChunkState {
  XXH3_state_t state;
};

/// The checksum from the chunks' digests, in chunk order.
static uint64_t combineDigests(llvm::ArrayRef<uint64_t> digests) {
  std::vector<uint8_t> words(digests.size() * sizeof(uint64_t));
  for (size_t index = 0; index < digests.size(); ++index)
    llvm::support::endian::write64le(&words[index * sizeof(uint64_t)],
                                     digests[index]);
  return XXH3_64bits(words.data(), words.size());
}

ChecksumBuilder::ChecksumBuilder() : chunk(std::make_unique<ChunkState>()) {
  XXH3_64bits_reset(&chunk->state);
}

ChecksumBuilder::~ChecksumBuilder() = default;

void ChecksumBuilder::update(llvm::ArrayRef<uint8_t> bytes) {
  while (!bytes.empty()) {
    uint64_t take =
        std::min<uint64_t>(kChecksumChunkBytes - chunkFill, bytes.size());
    XXH3_64bits_update(&chunk->state, bytes.data(), size_t(take));
    chunkFill += take;
    bytes = bytes.drop_front(size_t(take));
    if (chunkFill == kChecksumChunkBytes) {
      chunkDigests.push_back(XXH3_64bits_digest(&chunk->state));
      XXH3_64bits_reset(&chunk->state);
      chunkFill = 0;
    }
  }
}

uint64_t ChecksumBuilder::digest() const {
  if (chunkFill == 0)
    return combineDigests(chunkDigests);
  llvm::SmallVector<uint64_t> digests(chunkDigests);
  digests.push_back(XXH3_64bits_digest(&chunk->state));
  return combineDigests(digests);
}

namespace {
/// The chunks of one computeChecksum call, handed out to threads one at a
/// time so that a slow thread (page faults, a busy core) holds no one up.
struct ChunkQueue {
  const uint8_t *data;
  uint64_t size;
  uint64_t numChunks;
  std::vector<uint64_t> digests;
  std::atomic<uint64_t> nextChunk{0};
  std::atomic<uint64_t> doneBytes{0};

  /// Hashes chunks until none is left; `progress` (if any) after each.
  void drain(ChecksumProgressFn progress) {
    for (;;) {
      uint64_t index = nextChunk.fetch_add(1, std::memory_order_relaxed);
      if (index >= numChunks)
        return;
      uint64_t begin = index * kChecksumChunkBytes;
      uint64_t length = std::min(kChecksumChunkBytes, size - begin);
      digests[index] = XXH3_64bits(data + begin, size_t(length));
      uint64_t done =
          doneBytes.fetch_add(length, std::memory_order_relaxed) + length;
      if (progress)
        progress(done, size);
    }
  }

  static void *drainOnThread(void *queue) {
    static_cast<ChunkQueue *>(queue)->drain(nullptr);
    return nullptr;
  }
};
} // namespace

uint64_t falcon::computeChecksum(const uint8_t *data, uint64_t size,
                                 unsigned maxThreads,
                                 ChecksumProgressFn progress) {
  ChunkQueue queue;
  queue.data = data;
  queue.size = size;
  queue.numChunks = llvm::divideCeil(size, kChecksumChunkBytes);
  queue.digests.resize(queue.numChunks);

  uint64_t threads =
      maxThreads ? maxThreads : std::thread::hardware_concurrency();
  threads =
      std::clamp<uint64_t>(threads, 1, std::max<uint64_t>(queue.numChunks, 1));
  // pthread rather than std::thread: with -fno-exceptions, std::thread's
  // failure to start would terminate the process; here it only means fewer
  // helpers.
  std::vector<pthread_t> helpers;
  for (uint64_t index = 1; index < threads; ++index) {
    pthread_t thread;
    if (pthread_create(&thread, nullptr, &ChunkQueue::drainOnThread, &queue) !=
        0)
      break;
    helpers.push_back(thread);
  }
  queue.drain(progress);
  for (pthread_t thread : helpers)
    pthread_join(thread, nullptr);
  if (progress)
    progress(size, size);
  return combineDigests(queue.digests);
}

std::string falcon::formatChecksum(uint64_t checksum) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << kChecksumPrefix << llvm::format_hex_no_prefix(checksum, 16);
  return text;
}

llvm::Expected<uint64_t> falcon::parseChecksum(llvm::StringRef text) {
  llvm::StringRef digits = text;
  uint64_t value = 0;
  if (!digits.consume_front(kChecksumPrefix) || digits.empty() ||
      digits.size() > 16 || !llvm::all_of(digits, llvm::isHexDigit) ||
      digits.getAsInteger(16, value))
    return llvm::createStringError("'" + text + "' is not of the form " +
                                   kChecksumPrefix + "<16 hex digits>");
  return value;
}
