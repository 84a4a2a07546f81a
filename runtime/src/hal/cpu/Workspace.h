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

#include <atomic>
#include <cstdint>

namespace falcon::runtime::hal::cpu {

class Workspace {
public:
  /// `size` bytes aligned to `alignment` (a power of two); null when the
  /// alignment is not one, memory runs out or the limit would be passed.
  void *allocate(uint64_t size, uint64_t alignment);
  /// Releases a pointer from allocate; null is ignored.
  void release(void *pointer);

  uint64_t getBytes() const { return bytes.load(std::memory_order_relaxed); }
  uint64_t getPeakBytes() const {
    return peakBytes.load(std::memory_order_relaxed);
  }
  uint64_t getLimit() const { return limit.load(std::memory_order_relaxed); }
  /// 0 removes the limit. Bytes already held stay held.
  void setLimit(uint64_t limitBytes) {
    limit.store(limitBytes, std::memory_order_relaxed);
  }

  /// Fills `table` with this workspace as the context.
  void bind(falcon_runtime_imports_t &table);
  /// Whether `table` was filled by bind (of any workspace).
  static bool isBound(const falcon_runtime_imports_t &table);
  static Workspace *getBoundWorkspace(const falcon_runtime_imports_t &table);

private:
  // Updated from the compiled code's parallel loops.
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> peakBytes{0};
  std::atomic<uint64_t> limit{0};
};

} // namespace falcon::runtime::hal::cpu

#endif // FALCON_RUNTIME_HAL_CPU_WORKSPACE_H
