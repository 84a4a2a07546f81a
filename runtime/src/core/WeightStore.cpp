//===- WeightStore.cpp - read-only mapping of weights.bin -------*- C++ -*-===//

#include "core/WeightStore.h"

#include "core/Manifest.h"
#include "core/Status.h"

#include "llvm/ADT/Twine.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <new>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace falcon::runtime;

namespace {
// Stands in for the mapping of an empty weights.bin (mmap rejects length 0)
// so that data() is never null. Aligned like a mapping would be.
alignas(64) const uint8_t emptyWeights[64] = {};

/// Closes a file descriptor on every path out of open().
struct FileDescriptor {
  int fd;
  ~FileDescriptor() {
    if (fd >= 0)
      close(fd);
  }
};
} // namespace

falcon_status_t WeightStore::open(llvm::StringRef path, uint64_t expectedSize,
                                  uint64_t expectedChecksum,
                                  bool verifyChecksum,
                                  std::unique_ptr<WeightStore> &outStore,
                                  ChecksumProgressFn progress) {
  outStore.reset();
  std::string pathString = path.str();
  FileDescriptor file{::open(pathString.c_str(), O_RDONLY | O_CLOEXEC)};
  if (file.fd < 0) {
    int error = errno;
    return makeStatus(error == ENOENT ? FALCON_STATUS_NOT_FOUND
                                      : FALCON_STATUS_FAILED_PRECONDITION,
                      path + ": cannot open: " + std::strerror(error));
  }
  struct stat info;
  if (fstat(file.fd, &info) != 0)
    return makeStatus(FALCON_STATUS_INTERNAL,
                      path + ": cannot stat: " + std::strerror(errno));
  if (!S_ISREG(info.st_mode))
    return makeStatus(FALCON_STATUS_FAILED_PRECONDITION,
                      path + ": not a regular file");
  uint64_t actualSize = uint64_t(info.st_size);
  if (actualSize != expectedSize)
    return makeStatus(FALCON_STATUS_FAILED_PRECONDITION,
                      path + ": size " + llvm::Twine(actualSize) +
                          " does not match the manifest (" +
                          llvm::Twine(expectedSize) + ")");
  if (actualSize > SIZE_MAX)
    return makeStatus(FALCON_STATUS_RESOURCE_EXHAUSTED,
                      path + ": too large to map");

  const uint8_t *data = emptyWeights;
  bool mapped = false;
  if (actualSize > 0) {
    // MAP_PRIVATE + PROT_READ: the compiled code must not write the weights,
    // and if it tried, the fault would point straight at the bug.
    void *mapping =
        mmap(nullptr, size_t(actualSize), PROT_READ, MAP_PRIVATE, file.fd, 0);
    if (mapping == MAP_FAILED)
      return makeStatus(FALCON_STATUS_RESOURCE_EXHAUSTED,
                        path + ": cannot map: " + std::strerror(errno));
    data = static_cast<const uint8_t *>(mapping);
    mapped = true;
  }
  std::unique_ptr<WeightStore> store(
      new (std::nothrow) WeightStore(data, size_t(actualSize), mapped));
  if (!store) {
    if (mapped)
      munmap(const_cast<uint8_t *>(data), size_t(actualSize));
    return makeStatus(FALCON_STATUS_RESOURCE_EXHAUSTED,
                      "cannot allocate the weight store");
  }

  if (verifyChecksum) {
    // One sequential pass per thread; tell the kernel so it reads ahead.
    if (mapped)
      madvise(const_cast<uint8_t *>(data), size_t(actualSize), MADV_SEQUENTIAL);
    uint64_t actualChecksum = computeChecksum(
        data, actualSize, /*maxThreads=*/0,
        actualSize >= kChecksumProgressMinBytes ? progress : nullptr);
    if (mapped)
      madvise(const_cast<uint8_t *>(data), size_t(actualSize), MADV_NORMAL);
    if (actualChecksum != expectedChecksum)
      return makeStatus(FALCON_STATUS_DATA_LOSS,
                        path + ": checksum " +
                            falcon::formatChecksum(actualChecksum) +
                            " does not match the manifest's " +
                            falcon::formatChecksum(expectedChecksum));
  }
  outStore = std::move(store);
  return nullptr;
}

WeightStore::~WeightStore() {
  if (mapped_)
    munmap(const_cast<uint8_t *>(data_), size_);
}
