//===- WeightStore.h - read-only mapping of weights.bin ---------*- C++ -*-===//
//
// weights.bin is mapped, never copied: the compiled code reads the weights
// where they lie, and pages that are never touched are never read.
//
//===----------------------------------------------------------------------===//

#ifndef FALCON_RUNTIME_CORE_WEIGHTSTORE_H
#define FALCON_RUNTIME_CORE_WEIGHTSTORE_H

#include "falcon/Support/Checksum.h"
#include "falcon/runtime.h"

#include "llvm/ADT/StringRef.h"

#include <cstddef>
#include <cstdint>
#include <memory>

namespace falcon::runtime {

class WeightStore {
public:
  /// Maps `path` read-only after checking that it is exactly `expectedSize`
  /// bytes; with `verifyChecksum`, also that its checksum
  /// (falcon/Support/Checksum.h, on all hardware threads) is
  /// `expectedChecksum`. A file of kChecksumProgressMinBytes or more reports
  /// its verification to `progress`, if given; the runtime never prints.
  static falcon_status_t open(llvm::StringRef path, uint64_t expectedSize,
                              uint64_t expectedChecksum, bool verifyChecksum,
                              std::unique_ptr<WeightStore> &outStore,
                              ChecksumProgressFn progress = nullptr);

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
