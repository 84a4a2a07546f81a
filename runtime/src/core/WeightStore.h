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
#include <string>
#include <sys/stat.h>

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

  /// DATA_LOSS when the mapped file was written or truncated since open()
  /// (its size, modification or change time differ): the weights the code
  /// read may not be those that were verified. Checked after every forward
  /// call. A truncation under a running forward is caught earlier, by the
  /// SIGBUS handler the first mapping installs: reading a page past the new
  /// end, the process prints "PATH: truncated while in use" and exits with
  /// status 135 instead of dying of the signal.
  falcon_status_t checkUnchanged() const;

private:
  WeightStore(std::string path, const uint8_t *data, size_t size, bool mapped,
              int fd, const struct stat &identity);

  std::string path_;
  const uint8_t *data_;
  size_t size_;
  bool mapped_;
  int fd_;
  int64_t modified_[2], changed_[2];
  int registration_ = -1; // slot in the SIGBUS handler's table
};

} // namespace falcon::runtime

#endif // FALCON_RUNTIME_CORE_WEIGHTSTORE_H
