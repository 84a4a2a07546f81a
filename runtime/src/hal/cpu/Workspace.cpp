//===- Workspace.cpp - the compiled code's workspace on the CPU -*- C++ -*-===//
//
// Every block carries a small header in front of the pointer handed out,
// holding its size (free() has none, and the accounting needs it) and the
// start of the underlying allocation.
//
//===----------------------------------------------------------------------===//

#include "hal/cpu/Workspace.h"

#include "llvm/Support/MathExtras.h"
#include "llvm/Support/TimeProfiler.h"

#include <algorithm>
#include <cstdlib>

using namespace falcon::runtime::hal::cpu;

namespace {

struct BlockHeader {
  uint64_t size;
  void *block;
};

// The smallest alignment handed out: the header's, and malloc's.
constexpr uint64_t kMinimumAlignment = 16;
static_assert(sizeof(BlockHeader) <= kMinimumAlignment,
              "the header must fit in the alignment padding");

// Open trace regions of this thread: trace_end without a matching
// trace_begin must not pop someone else's region.
thread_local int traceDepth = 0;

void *importAlloc(void *context, uint64_t size, uint64_t alignment) {
  return static_cast<Workspace *>(context)->allocate(size, alignment);
}

void importFree(void *context, void *pointer) {
  static_cast<Workspace *>(context)->release(pointer);
}

void importTraceBegin(void *, const char *name) {
  ++traceDepth;
  llvm::timeTraceProfilerBegin(name ? name : "(unnamed)", llvm::StringRef());
}

void importTraceEnd(void *) {
  if (traceDepth == 0)
    return;
  --traceDepth;
  llvm::timeTraceProfilerEnd();
}

/// The CPU device runs in one process with no channel bound to its
/// executables: a world of one rank, where the sum over ranks is the data
/// itself.
int32_t importAllReduceSumF32(void *, float *data, int64_t count) {
  if (count < 0 || (count > 0 && !data))
    return 1;
  return 0;
}

} // namespace

void *Workspace::allocate(uint64_t size, uint64_t alignment) {
  if (alignment == 0)
    alignment = kMinimumAlignment;
  if (!llvm::isPowerOf2_64(alignment))
    return nullptr;
  alignment = std::max(alignment, kMinimumAlignment);
  // The header sits in the `alignment` bytes before the returned pointer.
  uint64_t blockSize = 0;
  if (__builtin_add_overflow(size, alignment, &blockSize) ||
      blockSize > SIZE_MAX)
    return nullptr;

  // Reserve the bytes first, so that concurrent callers never pass the
  // limit together.
  uint64_t held = bytes.load(std::memory_order_relaxed);
  uint64_t updated = 0;
  do {
    uint64_t cap = limit.load(std::memory_order_relaxed);
    if (__builtin_add_overflow(held, size, &updated) ||
        (cap != 0 && updated > cap))
      return nullptr;
  } while (
      !bytes.compare_exchange_weak(held, updated, std::memory_order_relaxed));

  void *block = nullptr;
  if (posix_memalign(&block, size_t(alignment), size_t(blockSize)) != 0) {
    bytes.fetch_sub(size, std::memory_order_relaxed);
    return nullptr;
  }
  uint64_t peak = peakBytes.load(std::memory_order_relaxed);
  while (updated > peak && !peakBytes.compare_exchange_weak(
                               peak, updated, std::memory_order_relaxed)) {
  }
  char *pointer = static_cast<char *>(block) + alignment;
  reinterpret_cast<BlockHeader *>(pointer)[-1] = BlockHeader{size, block};
  return pointer;
}

void Workspace::release(void *pointer) {
  if (!pointer)
    return;
  BlockHeader header = static_cast<BlockHeader *>(pointer)[-1];
  bytes.fetch_sub(header.size, std::memory_order_relaxed);
  std::free(header.block);
}

void Workspace::bind(falcon_runtime_imports_t &table) {
  table.size = sizeof(falcon_runtime_imports_t);
  table.context = this;
  table.alloc = importAlloc;
  table.free = importFree;
  table.trace_begin = importTraceBegin;
  table.trace_end = importTraceEnd;
  table.all_reduce_sum_f32 = importAllReduceSumF32;
  // Last: a version != 0 tells the library the table is complete.
  table.version = FALCON_RUNTIME_IMPORTS_VERSION;
}

bool Workspace::isBound(const falcon_runtime_imports_t &table) {
  return table.version != 0 && table.alloc == importAlloc;
}

Workspace *Workspace::getBoundWorkspace(const falcon_runtime_imports_t &table) {
  return isBound(table) ? static_cast<Workspace *>(table.context) : nullptr;
}
