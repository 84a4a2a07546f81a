//===- Workspace.h - the compiled code's workspace on the CPU ---*- C++ -*-===//
//
// The CPU device's side of the runtime import table
// (falcon/Support/RuntimeImports.h): the allocator the host library calls
// instead of malloc/free, which counts the bytes it holds and their peak and
// honours a limit, and the table's other callbacks.
//
//===----------------------------------------------------------------------===//

#ifndef FALCON_RUNTIME_HAL_CPU_WORKSPACE_H
#define FALCON_RUNTIME_HAL_CPU_WORKSPACE_H

#include "falcon/Support/RuntimeImports.h"
#include "falcon/runtime.h"

struct falcon_comm_channel_t;
struct falcon_hal_device_t;

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

namespace falcon::runtime::hal::cpu {

/// The bytes this process may still get: the kernel's MemAvailable plus free
/// swap, less what a cgroup v2 memory.max leaves; 0 when unknown.
uint64_t availableMemoryBytes();

class Workspace {
public:
  Workspace() = default;
  Workspace(const Workspace &) = delete;
  Workspace &operator=(const Workspace &) = delete;

  /// `size` bytes aligned to `alignment` (a power of two); null when the
  /// alignment is not one, memory runs out (a block of 64 MiB or more is
  /// refused beyond availableMemoryBytes, before the OOM killer would see
  /// it) or the limit would be passed.
  void *allocate(uint64_t size, uint64_t alignment);
  /// Releases a pointer from allocate; null is ignored.
  void release(void *pointer);

  /// A call of compiled code whose allocations come from this workspace.
  using Caller = void (*)(void *function, const uintptr_t *words);
  /// Calls `caller(function, words)` so that an allocation the code makes
  /// through the import table on this thread and cannot have ends the call
  /// there instead of handing the code a null pointer: the blocks the call
  /// allocated and still holds are released, and the reason is returned
  /// (empty: the call returned). The compiled code allocates only on the
  /// calling thread, never inside its parallel regions
  /// (falcon-cpu-runtime-imports checks that), and has no cleanup of its own
  /// to skip: its frames are plain machine code.
  std::string invoke(Caller caller, void *function, const uintptr_t *words);

  uint64_t getBytes() const { return bytes.load(std::memory_order_relaxed); }
  uint64_t getPeakBytes() const {
    return peakBytes.load(std::memory_order_relaxed);
  }
  uint64_t getLimit() const { return limit.load(std::memory_order_relaxed); }
  /// 0 removes the limit. Bytes already held stay held.
  void setLimit(uint64_t limitBytes) {
    limit.store(limitBytes, std::memory_order_relaxed);
  }

  /// The channel the import table's all-reduce sums over (the stage's
  /// tensor-parallel group), its operands wrapped as buffers of `device`;
  /// null: one rank (the data is the sum).
  void setChannel(falcon_comm_channel_t *channel, falcon_hal_device_t *device) {
    this->channel = channel;
    this->device = device;
  }
  /// The import's all-reduce: sums `count` floats at `data` in place over
  /// the channel. A failure ends the current invocation (like a failed
  /// allocation) with the channel's message; 0 when it returns.
  int32_t allReduceSum(float *data, int64_t count);
  /// The all-reduces so far and their wall time.
  uint64_t getCollectives() const { return collectives.load(std::memory_order_relaxed); }
  uint64_t getCollectiveNanoseconds() const {
    return collectiveNanoseconds.load(std::memory_order_relaxed);
  }

  /// Fills `table` with this workspace as the context.
  void bind(falcon_runtime_imports_t &table);
  /// Whether `table` was filled by bind (of any workspace).
  static bool isBound(const falcon_runtime_imports_t &table);
  static Workspace *getBoundWorkspace(const falcon_runtime_imports_t &table);

  /// Ends the current invocation of this workspace on this thread, if any,
  /// after an allocation of `size` bytes failed (the import table's alloc
  /// calls it); returns when there is none.
  void unwindIfInvoked(uint64_t size);

  struct BlockHeader;
  struct Invocation;

private:
  /// Takes the blocks of `invocation` off it: they outlive the call.
  void disown(Invocation *invocation);
  /// Frees the blocks `invocation` still holds.
  void releaseOwned(Invocation *invocation);

  // The live blocks, a list through their headers (so that a call ended by
  // a failed allocation can free what it held).
  std::mutex blocksMutex;
  BlockHeader *firstBlock = nullptr;
  // Updated from the compiled code's parallel loops.
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> peakBytes{0};
  std::atomic<uint64_t> limit{0};
  falcon_comm_channel_t *channel = nullptr;
  falcon_hal_device_t *device = nullptr;
  std::atomic<uint64_t> collectives{0};
  std::atomic<uint64_t> collectiveNanoseconds{0};
};

} // namespace falcon::runtime::hal::cpu

#endif // FALCON_RUNTIME_HAL_CPU_WORKSPACE_H
