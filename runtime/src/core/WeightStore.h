//===- WeightStore.h - read-only mapping of weights.bin ---------*- C++ -*-===//
//
// weights.bin is mapped, never copied: the compiled code reads the weights
// where they lie, and pages that are never touched are never read.
//
//===----------------------------------------------------------------------===//

#ifndef FALCON_RUNTIME_CORE_WEIGHTSTORE_H
#define FALCON_RUNTIME_CORE_WEIGHTSTORE_H

#include "falcon/runtime.h"

#include "llvm/ADT/StringRef.h"

#include <cstddef>
#include <cstdint>
#include <memory>

namespace falcon::runtime {

/// FNV-1a, 64-bit, over `size` bytes, continuing from `hash`.
uint64_t fnv1a64(const void *data, size_t size,
                 uint64_t hash = 0xcbf29ce484222325ULL);

class WeightStore {
public:
  /// Maps `path` read-only after checking that it is exactly `expectedSize`
  /// bytes; with `verifyChecksum`, also that its FNV-1a-64 is
  /// `expectedChecksum`.
  static falcon_status_t open(llvm::StringRef path, uint64_t expectedSize,
                              uint64_t expectedChecksum, bool verifyChecksum,
                              std::unique_ptr<WeightStore> &outStore);

  ~WeightStore();
  WeightStore(const WeightStore &) = delete;
  WeightStore &operator=(const WeightStore &) = delete;

  /// The first byte (page-aligned); never null, even for an empty file.
  const uint8_t *data() const { return data_; }
  size_t size() const { return size_; }

private:
  WeightStore(const uint8_t *data, size_t size, bool mapped)
      : data_(data), size_(size), mapped_(mapped) {}

  const uint8_t *data_;
  size_t size_;
  bool mapped_;
};

} // namespace falcon::runtime

#endif // FALCON_RUNTIME_CORE_WEIGHTSTORE_H
