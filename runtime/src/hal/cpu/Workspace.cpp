//===- Workspace.cpp - the compiled code's workspace on the CPU -*- C++ -*-===//
//
// Every block carries a small header in front of the pointer handed out,
// holding its size (free() has none, and the accounting needs it), the start
// of the underlying allocation, its place in the list of live blocks and the
// call that allocated it.
//
//===----------------------------------------------------------------------===//

#include "hal/cpu/Workspace.h"

#include "comm/Channel.h"
#include "core/Status.h"

#include "llvm/Support/MathExtras.h"
#include "llvm/Support/TimeProfiler.h"

#include <algorithm>
#include <chrono>
#include <csetjmp>
#include <cstdlib>
#include <fstream>
#include <vector>

using namespace falcon::runtime::hal::cpu;

struct Workspace::BlockHeader {
  uint64_t size;
  void *block;
  BlockHeader *previous;
  BlockHeader *next;
  /// The call that allocated the block while it runs; null after.
  Invocation *owner;
};

struct Workspace::Invocation {
  std::jmp_buf jump;
  Workspace *workspace;
  /// The allocation that failed, and what the workspace held then.
  uint64_t failedBytes;
  uint64_t heldBytes;
  /// Set instead when a collective failed: its message.
  falcon_status_t failedCollective;
};

namespace {

using BlockHeader = Workspace::BlockHeader;

// The smallest alignment handed out: the header must fit in front of the
// block (and 64 is what the compiled code asks for anyway).
constexpr uint64_t kMinimumAlignment = 64;
static_assert(sizeof(BlockHeader) <= kMinimumAlignment,
              "the header must fit in the alignment padding");
// Blocks from this size on are checked against the memory the machine has
// left (reading /proc/meminfo costs more than a small malloc).
constexpr uint64_t kCheckedBlockBytes = uint64_t(64) << 20;

// The call of compiled code running on this thread (Workspace::invoke).
thread_local Workspace::Invocation *currentInvocation = nullptr;

// Open trace regions of this thread: trace_end without a matching
// trace_begin must not pop someone else's region.
thread_local int traceDepth = 0;

void *importAlloc(void *context, uint64_t size, uint64_t alignment) {
  auto *workspace = static_cast<Workspace *>(context);
  void *pointer = workspace->allocate(size, alignment);
  if (!pointer)
    workspace->unwindIfInvoked(size);
  return pointer;
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

/// Sums over the workspace's channel (none: a world of one rank, where the
/// sum over ranks is the data itself).
int32_t importAllReduceSumF32(void *context, float *data, int64_t count) {
  if (count < 0 || (count > 0 && !data))
    return 1;
  return static_cast<Workspace *>(context)->allReduceSum(data, count);
}

} // namespace

uint64_t falcon::runtime::hal::cpu::availableMemoryBytes() {
  uint64_t available = 0;
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  uint64_t kibibytes = 0;
  std::string unit;
  while (meminfo >> key >> kibibytes) {
    std::getline(meminfo, unit);
    if (key == "MemAvailable:" || key == "SwapFree:")
      available += kibibytes * 1024;
  }
  uint64_t limit = 0, current = 0;
  std::ifstream maxFile("/sys/fs/cgroup/memory.max"), currentFile("/sys/fs/cgroup/memory.current");
  if (maxFile >> limit && currentFile >> current && available)
    available = std::min(available, limit > current ? limit - current : 0);
  return available;
}

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
  uint64_t available = size >= kCheckedBlockBytes ? availableMemoryBytes() : 0;
  if ((available != 0 && size > available) ||
      posix_memalign(&block, size_t(alignment), size_t(blockSize)) != 0) {
    bytes.fetch_sub(size, std::memory_order_relaxed);
    return nullptr;
  }
  uint64_t peak = peakBytes.load(std::memory_order_relaxed);
  while (updated > peak && !peakBytes.compare_exchange_weak(
                               peak, updated, std::memory_order_relaxed)) {
  }
  char *pointer = static_cast<char *>(block) + alignment;
  BlockHeader *header = reinterpret_cast<BlockHeader *>(pointer) - 1;
  Invocation *owner =
      currentInvocation && currentInvocation->workspace == this ? currentInvocation : nullptr;
  std::lock_guard<std::mutex> lock(blocksMutex);
  *header = BlockHeader{size, block, nullptr, firstBlock, owner};
  if (firstBlock)
    firstBlock->previous = header;
  firstBlock = header;
  return pointer;
}

void Workspace::release(void *pointer) {
  if (!pointer)
    return;
  BlockHeader *header = static_cast<BlockHeader *>(pointer) - 1;
  {
    std::lock_guard<std::mutex> lock(blocksMutex);
    (header->previous ? header->previous->next : firstBlock) = header->next;
    if (header->next)
      header->next->previous = header->previous;
  }
  bytes.fetch_sub(header->size, std::memory_order_relaxed);
  std::free(header->block);
}

void Workspace::unwindIfInvoked(uint64_t size) {
  Invocation *invocation = currentInvocation;
  if (!invocation || invocation->workspace != this)
    return;
  invocation->failedBytes = size;
  invocation->heldBytes = getBytes();
  // Nothing with a destructor is alive between here and invoke's setjmp:
  // this function, importAlloc and the compiled code's frames.
  std::longjmp(invocation->jump, 1);
}

void Workspace::disown(Invocation *invocation) {
  std::lock_guard<std::mutex> lock(blocksMutex);
  for (BlockHeader *header = firstBlock; header; header = header->next)
    if (header->owner == invocation)
      header->owner = nullptr;
}

void Workspace::releaseOwned(Invocation *invocation) {
  std::vector<void *> owned;
  {
    std::lock_guard<std::mutex> lock(blocksMutex);
    for (BlockHeader *header = firstBlock; header; header = header->next)
      if (header->owner == invocation)
        owned.push_back(header + 1);
  }
  for (void *pointer : owned)
    release(pointer);
}

std::string Workspace::invoke(Caller caller, void *function, const uintptr_t *words) {
  Invocation invocation;
  invocation.workspace = this;
  invocation.failedBytes = 0;
  invocation.heldBytes = 0;
  invocation.failedCollective = nullptr;
  Invocation *outer = currentInvocation;
  // `invocation` is only read back through memory after the jump (its
  // address escaped to currentInvocation), and nothing here is changed
  // between setjmp and longjmp but through that pointer.
  if (setjmp(invocation.jump) == 0) {
    currentInvocation = &invocation;
    caller(function, words);
    currentInvocation = outer;
    disown(&invocation);
    return std::string();
  }
  currentInvocation = outer;
  releaseOwned(&invocation);
  if (falcon_status_t status = invocation.failedCollective) {
    std::string reason = std::string("a collective of the compiled code failed: ") +
                         falcon_status_message(status);
    falcon_status_free(status);
    return reason;
  }
  uint64_t size = invocation.failedBytes;
  uint64_t held = invocation.heldBytes, cap = getLimit();
  std::string reason = "the compiled code could not allocate " + std::to_string(size) +
                       " bytes of workspace: ";
  uint64_t available = availableMemoryBytes();
  if (cap != 0 && (size > cap || held > cap - size))
    reason += "the workspace limit is " + std::to_string(cap) + " bytes";
  else if (available != 0 && size > available)
    reason += "only " + std::to_string(available) + " bytes of memory are available";
  else
    reason += "out of memory";
  return reason;
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

int32_t Workspace::allReduceSum(float *data, int64_t count) {
  if (!channel || count == 0)
    return 0;
  auto start = std::chrono::steady_clock::now();
  falcon_status_t status = withHostBuffer(
      device, data, uint64_t(count) * sizeof(float), [&](falcon_hal_buffer_ref_t ref) {
        return channel->vtable->allReduce(channel, /*queue=*/nullptr, ref, ref, count,
                                          FALCON_HAL_ELEMENT_TYPE_F32,
                                          FALCON_COMM_REDUCTION_SUM);
      });
  collectives.fetch_add(1, std::memory_order_relaxed);
  collectiveNanoseconds.fetch_add(
      uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                   std::chrono::steady_clock::now() - start)
                   .count()),
      std::memory_order_relaxed);
  if (!status)
    return 0;
  // The compiled code cannot handle a failure: end its call, as a failed
  // allocation does.
  if (Invocation *invocation = currentInvocation;
      invocation && invocation->workspace == this) {
    invocation->failedCollective = status;
    std::longjmp(invocation->jump, 1);
  }
  falcon_status_free(status);
  return 1;
}
