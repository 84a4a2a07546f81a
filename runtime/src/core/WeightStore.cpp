//===- WeightStore.cpp - read-only mapping of weights.bin -------*- C++ -*-===//

#include "core/WeightStore.h"

#include "core/Manifest.h"
#include "core/Status.h"

#include "llvm/ADT/Twine.h"

#include <atomic>
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <mutex>
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

// The mapped weight files, for the SIGBUS handler: a fault inside one means
// the file was truncated under the mapping. Fixed slots filled before the
// mapping is used, read by the handler without locks.
constexpr int kMaxMappings = 64;
struct MappedRange {
  std::atomic<uintptr_t> begin{0}, end{0};
  char message[1024];
  size_t length;
};
MappedRange mappedRanges[kMaxMappings];
std::mutex registryMutex;
struct sigaction previousBusAction;
bool busHandlerInstalled = false;

void onBusError(int signal, siginfo_t *info, void *context) {
  uintptr_t address = reinterpret_cast<uintptr_t>(info->si_addr);
  for (MappedRange &range : mappedRanges) {
    uintptr_t begin = range.begin.load(std::memory_order_acquire);
    if (begin && address >= begin &&
        address < range.end.load(std::memory_order_acquire)) {
      ssize_t written = ::write(STDERR_FILENO, range.message, range.length);
      (void)written;
      ::_exit(135);
    }
  }
  // Not ours: the previous disposition handles it.
  if (previousBusAction.sa_flags & SA_SIGINFO) {
    previousBusAction.sa_sigaction(signal, info, context);
  } else if (previousBusAction.sa_handler != SIG_DFL &&
             previousBusAction.sa_handler != SIG_IGN) {
    previousBusAction.sa_handler(signal);
  } else {
    // Returning re-runs the faulting access under the default action.
    struct sigaction fallback = {};
    fallback.sa_handler = SIG_DFL;
    sigemptyset(&fallback.sa_mask);
    ::sigaction(SIGBUS, &fallback, nullptr);
  }
}

/// Registers [data, data + size) of `path`; returns the slot, or -1 when all
/// are taken (the mapping then works, unguarded).
int registerMapping(const std::string &path, const uint8_t *data, size_t size) {
  std::lock_guard<std::mutex> lock(registryMutex);
  if (!busHandlerInstalled) {
    struct sigaction action = {};
    action.sa_sigaction = &onBusError;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    busHandlerInstalled = ::sigaction(SIGBUS, &action, &previousBusAction) == 0;
  }
  for (int slot = 0; slot < kMaxMappings; ++slot) {
    MappedRange &range = mappedRanges[slot];
    if (range.begin.load(std::memory_order_relaxed))
      continue;
    int length = std::snprintf(range.message, sizeof(range.message),
                               "falcon: %s: truncated while in use (a read of the "
                               "mapped weights failed); the run is aborted\n",
                               path.c_str());
    range.length = length < 0 ? 0 : std::min(size_t(length), sizeof(range.message) - 1);
    range.end.store(reinterpret_cast<uintptr_t>(data) + size, std::memory_order_release);
    range.begin.store(reinterpret_cast<uintptr_t>(data), std::memory_order_release);
    return slot;
  }
  return -1;
}

void unregisterMapping(int slot) {
  if (slot < 0)
    return;
  std::lock_guard<std::mutex> lock(registryMutex);
  mappedRanges[slot].begin.store(0, std::memory_order_release);
}
} // namespace

WeightStore::WeightStore(std::string path, const uint8_t *data, size_t size, bool mapped,
                         int fd, const struct stat &identity)
    : path_(std::move(path)), data_(data), size_(size), mapped_(mapped), fd_(fd),
      modified_{identity.st_mtim.tv_sec, identity.st_mtim.tv_nsec},
      changed_{identity.st_ctim.tv_sec, identity.st_ctim.tv_nsec} {
  if (mapped)
    registration_ = registerMapping(path_, data, size);
}

falcon_status_t WeightStore::checkUnchanged() const {
  struct stat now;
  if (::fstat(fd_, &now) != 0)
    return makeStatus(FALCON_STATUS_INTERNAL,
                      path_ + ": cannot stat: " + std::strerror(errno));
  if (uint64_t(now.st_size) == size_ && now.st_mtim.tv_sec == modified_[0] &&
      now.st_mtim.tv_nsec == modified_[1] && now.st_ctim.tv_sec == changed_[0] &&
      now.st_ctim.tv_nsec == changed_[1])
    return nullptr;
  return makeStatus(FALCON_STATUS_DATA_LOSS,
                    path_ + ": changed while in use (now " + llvm::Twine(int64_t(now.st_size)) +
                        " bytes, " + llvm::Twine(size_) +
                        " when opened); the results may come from other weights: restore "
                        "or recompile the artifact and open it again");
}

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
  std::unique_ptr<WeightStore> store(new (std::nothrow) WeightStore(
      pathString, data, size_t(actualSize), mapped, file.fd, info));
  if (store)
    file.fd = -1; // the store's now: checkUnchanged() fstats it
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
  unregisterMapping(registration_);
  if (mapped_)
    munmap(const_cast<uint8_t *>(data_), size_);
  if (fd_ >= 0)
    ::close(fd_);
}
