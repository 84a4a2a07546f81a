//===- CPUDevice.cpp - in-process CPU device --------------------*- C++ -*-===//
//
// The CPU backend of the HAL. Executables are loaded with dlopen (never
// linked), so one process can hold several artifacts, and exports are called
// with the memref descriptors of docs/artifact-format.md. Queue work runs
// inline, so an event is signalled as soon as it is recorded; the checks a
// GPU would need (host access only through a mapping, no queue use of a
// mapped buffer) are enforced all the same.
//
//===----------------------------------------------------------------------===//

#include "hal/cpu/CPUDevice.h"

#include "core/Status.h"
#include "hal/cpu/Workspace.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <fstream>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unordered_map>
#include <utility>
#include <vector>

#if !defined(__x86_64__) && !defined(__aarch64__)
#error "the CPU device's launch assumes the SysV x86-64 or AAPCS64 convention"
#endif

using namespace falcon::runtime;
using namespace falcon::runtime::hal;
using falcon::runtime::hal::cpu::availableMemoryBytes;
using falcon::runtime::hal::cpu::Workspace;

namespace {

//===----------------------------------------------------------------------===//
// Objects
//===----------------------------------------------------------------------===//

// Backends derive from the interface's headers, so the casts below are
// static_casts.
struct CPUDevice : falcon_hal_device_t {
  int32_t threadCount = 0;
  /// Shared with the import-table registry, which may keep it for another
  /// device's executables (see bindImports).
  std::shared_ptr<Workspace> workspace;
  std::atomic<uint64_t> bufferBytes{0};
  std::atomic<uint64_t> bufferPeakBytes{0};
};

struct CPUBuffer : falcon_hal_buffer_t {
  CPUBuffer(falcon_hal_device_t *device, uint64_t size,
            falcon_hal_memory_type_t memoryType, void *data, bool ownsMemory)
      : falcon_hal_buffer_t{device, size, memoryType}, data(data),
        ownsMemory(ownsMemory) {}
  void *data;
  /// False for buffers that wrap memory owned by someone else.
  bool ownsMemory;
  bool mapped = false;
};

struct CPUExecutable {
  void *libraryHandle;
  std::string path;
  std::vector<std::string> exportNames;
  std::vector<void *> exports;
  /// The OpenMP runtime's omp_set_num_threads as the library sees it (null
  /// for a library without parallel loops).
  void (*setNumThreads)(int);
  /// The library's import table and the workspace it is bound to; null for
  /// a library without one.
  falcon_runtime_imports_t *imports;
  std::shared_ptr<Workspace> workspace;
};

struct CPUQueue : falcon_hal_queue_t {
  explicit CPUQueue(falcon_hal_device_t *device) : falcon_hal_queue_t{device} {}
  /// The first failure of the work since the last finish.
  falcon_status_t deferredError = nullptr;
};

struct CPUEvent {
  falcon_hal_device_t *device;
  bool recorded;
};

CPUDevice *cast(falcon_hal_device_t *device) {
  return static_cast<CPUDevice *>(device);
}
CPUBuffer *cast(falcon_hal_buffer_t *buffer) {
  return static_cast<CPUBuffer *>(buffer);
}
CPUExecutable *cast(falcon_hal_executable_t *executable) {
  return reinterpret_cast<CPUExecutable *>(executable);
}
CPUQueue *cast(falcon_hal_queue_t *queue) {
  return static_cast<CPUQueue *>(queue);
}
CPUEvent *cast(falcon_hal_event_t *event) {
  return reinterpret_cast<CPUEvent *>(event);
}

// Alignment of every buffer: one cache line, and what the compiled code may
// assume for vector loads.
constexpr size_t kBufferAlignment = 64;

constexpr falcon_hal_memory_type_t kAllMemoryTypes =
    FALCON_HAL_MEMORY_TYPE_DEVICE_LOCAL | FALCON_HAL_MEMORY_TYPE_HOST_LOCAL |
    FALCON_HAL_MEMORY_TYPE_HOST_VISIBLE;

/// "device-local|host-visible".
std::string describeMemoryType(falcon_hal_memory_type_t memoryType) {
  std::string text;
  auto add = [&](falcon_hal_memory_type_t bit, const char *name) {
    if (!(memoryType & bit))
      return;
    if (!text.empty())
      text += '|';
    text += name;
  };
  add(FALCON_HAL_MEMORY_TYPE_DEVICE_LOCAL, "device-local");
  add(FALCON_HAL_MEMORY_TYPE_HOST_LOCAL, "host-local");
  add(FALCON_HAL_MEMORY_TYPE_HOST_VISIBLE, "host-visible");
  return text.empty() ? "none" : text;
}

falcon_status_t descriptorAllocationFailed() {
  return makeStatus(FALCON_STATUS_RESOURCE_EXHAUSTED,
                    "cannot allocate a descriptor");
}

//===----------------------------------------------------------------------===//
// Device and allocator
//===----------------------------------------------------------------------===//

void destroyDevice(falcon_hal_device_t *device) { delete cast(device); }

void countBufferBytes(CPUDevice *device, uint64_t size) {
  uint64_t held =
      device->bufferBytes.fetch_add(size, std::memory_order_relaxed) + size;
  uint64_t peak = device->bufferPeakBytes.load(std::memory_order_relaxed);
  while (held > peak && !device->bufferPeakBytes.compare_exchange_weak(
                            peak, held, std::memory_order_relaxed)) {
  }
}

falcon_status_t allocateBuffer(falcon_hal_device_t *device,
                               falcon_hal_memory_type_t memoryType,
                               uint64_t size, falcon_hal_buffer_t **outBuffer) {
  *outBuffer = nullptr;
  if (memoryType == 0 || (memoryType & ~kAllMemoryTypes))
    return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                      "allocateBuffer: memory type 0x" +
                          llvm::Twine::utohexstr(memoryType) +
                          " is not a non-empty set of memory type bits");
  // A zero-byte buffer still gets a unique, non-null pointer: the compiled
  // code never reads it, but NULL data would look like a failed allocation.
  uint64_t bytes = size == 0 ? kBufferAlignment : size;
  // The kernel's zero pages (page-aligned, so kBufferAlignment holds):
  // nothing is committed or touched until the code writes it, so a KV cache
  // costs memory as it fills, not at its capacity. A size the machine cannot
  // give is refused now rather than by the OOM killer later.
  uint64_t available = availableMemoryBytes();
  if (available != 0 && bytes > available)
    return makeStatus(FALCON_STATUS_RESOURCE_EXHAUSTED,
                      "cannot allocate a buffer of " + llvm::Twine(size) +
                          " bytes: only " + llvm::Twine(available) +
                          " bytes of memory are available");
  void *data = bytes > SIZE_MAX ? MAP_FAILED
                                : ::mmap(nullptr, size_t(bytes), PROT_READ | PROT_WRITE,
                                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (data == MAP_FAILED)
    return makeStatus(FALCON_STATUS_RESOURCE_EXHAUSTED,
                      "cannot allocate a buffer of " + llvm::Twine(size) +
                          " bytes: " + std::strerror(errno));
  // Exactly the requested types, although CPU memory is all of them: a
  // device-local buffer must not be mappable here when it cannot be on a GPU.
  auto *buffer = new (std::nothrow)
      CPUBuffer(device, size, memoryType, data, /*ownsMemory=*/true);
  if (!buffer) {
    ::munmap(data, size_t(bytes));
    return descriptorAllocationFailed();
  }
  countBufferBytes(cast(device), size);
  *outBuffer = buffer;
  return nullptr;
}

falcon_status_t wrapHostMemory(falcon_hal_device_t *device, void *data,
                               uint64_t size, falcon_hal_buffer_t **outBuffer) {
  *outBuffer = nullptr;
  if (!data)
    return makeNullArgumentStatus("wrapHostMemory", "data");
  auto *buffer = new (std::nothrow) CPUBuffer(
      device, size,
      FALCON_HAL_MEMORY_TYPE_HOST_LOCAL | FALCON_HAL_MEMORY_TYPE_HOST_VISIBLE,
      data, /*ownsMemory=*/false);
  if (!buffer)
    return descriptorAllocationFailed();
  *outBuffer = buffer;
  return nullptr;
}

void freeBuffer(falcon_hal_device_t *device, falcon_hal_buffer_t *buffer) {
  if (!buffer)
    return;
  CPUBuffer *cpuBuffer = cast(buffer);
  if (cpuBuffer->ownsMemory) {
    ::munmap(cpuBuffer->data, size_t(buffer->size == 0 ? kBufferAlignment : buffer->size));
    cast(device)->bufferBytes.fetch_sub(buffer->size,
                                        std::memory_order_relaxed);
  }
  delete cpuBuffer;
}

/// Checks that bytes [offset, offset + length) lie in `buffer`.
falcon_status_t checkRange(const char *operation, falcon_hal_buffer_t *buffer,
                           uint64_t offset, uint64_t length) {
  uint64_t end = 0;
  if (__builtin_add_overflow(offset, length, &end) || end > buffer->size)
    return makeStatus(FALCON_STATUS_OUT_OF_RANGE,
                      llvm::Twine(operation) + ": bytes [" +
                          llvm::Twine(offset) + ", " + llvm::Twine(offset) +
                          " + " + llvm::Twine(length) +
                          ") are outside the buffer of " +
                          llvm::Twine(buffer->size) + " bytes");
  return nullptr;
}

falcon_status_t mapBuffer(falcon_hal_device_t *device,
                          falcon_hal_buffer_t *buffer, uint64_t offset,
                          uint64_t length, falcon_hal_memory_access_t access,
                          void **outData) {
  *outData = nullptr;
  if (!buffer)
    return makeNullArgumentStatus("mapBuffer", "buffer");
  if (buffer->device != device)
    return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                      "mapBuffer: the buffer belongs to another device");
  if (!(buffer->memoryType & FALCON_HAL_MEMORY_TYPE_HOST_VISIBLE))
    return makeStatus(FALCON_STATUS_FAILED_PRECONDITION,
                      "mapBuffer: a " + describeMemoryType(buffer->memoryType) +
                          " buffer is not host-visible; copy it through a "
                          "queue instead");
  if (access == 0 || (access & ~uint32_t(FALCON_HAL_MEMORY_ACCESS_READ |
                                         FALCON_HAL_MEMORY_ACCESS_WRITE)))
    return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                      "mapBuffer: access 0x" + llvm::Twine::utohexstr(access) +
                          " is not a non-empty set of read/write bits");
  FALCON_RETURN_IF_ERROR(checkRange("mapBuffer", buffer, offset, length));
  CPUBuffer *cpuBuffer = cast(buffer);
  if (cpuBuffer->mapped)
    return makeStatus(FALCON_STATUS_FAILED_PRECONDITION,
                      "mapBuffer: the buffer is mapped already");
  cpuBuffer->mapped = true;
  *outData = static_cast<char *>(cpuBuffer->data) + offset;
  return nullptr;
}

falcon_status_t unmapBuffer(falcon_hal_device_t *,
                            falcon_hal_buffer_t *buffer) {
  if (!buffer)
    return makeNullArgumentStatus("unmapBuffer", "buffer");
  CPUBuffer *cpuBuffer = cast(buffer);
  if (!cpuBuffer->mapped)
    return makeStatus(FALCON_STATUS_FAILED_PRECONDITION,
                      "unmapBuffer: the buffer is not mapped");
  cpuBuffer->mapped = false;
  return nullptr;
}

falcon_status_t
queryAllocatorStatistics(falcon_hal_device_t *device,
                         falcon_hal_allocator_statistics_t *outStatistics) {
  CPUDevice *cpuDevice = cast(device);
  outStatistics->bufferBytes =
      cpuDevice->bufferBytes.load(std::memory_order_relaxed);
  outStatistics->bufferPeakBytes =
      cpuDevice->bufferPeakBytes.load(std::memory_order_relaxed);
  outStatistics->workspaceBytes = cpuDevice->workspace->getBytes();
  outStatistics->workspacePeakBytes = cpuDevice->workspace->getPeakBytes();
  outStatistics->workspaceLimitBytes = cpuDevice->workspace->getLimit();
  outStatistics->executableCollectives = cpuDevice->workspace->getCollectives();
  outStatistics->executableCollectiveNanoseconds =
      cpuDevice->workspace->getCollectiveNanoseconds();
  return nullptr;
}

falcon_status_t setWorkspaceLimit(falcon_hal_device_t *device,
                                  uint64_t limitBytes) {
  cast(device)->workspace->setLimit(limitBytes);
  return nullptr;
}

falcon_status_t setExecutableChannel(falcon_hal_device_t *device,
                                     falcon_comm_channel_t *channel) {
  cast(device)->workspace->setChannel(channel, device);
  return nullptr;
}

//===----------------------------------------------------------------------===//
// Executables
//===----------------------------------------------------------------------===//

/// The import table of every loaded library that has one. dlopen hands out
/// one copy of a library per process, so two devices loading the same file
/// share its table: the first device to load it binds the table to its
/// workspace, the others' executables keep that workspace alive and are
/// accounted to it, and the table is cleared when the last executable of
/// the file is unloaded.
struct ImportBinding {
  std::shared_ptr<Workspace> workspace;
  int executableCount;
};

std::mutex &getImportBindingMutex() {
  static std::mutex mutex;
  return mutex;
}

std::unordered_map<falcon_runtime_imports_t *, ImportBinding> &
getImportBindings() {
  static std::unordered_map<falcon_runtime_imports_t *, ImportBinding> bindings;
  return bindings;
}

falcon_status_t bindImports(CPUDevice *device, CPUExecutable &executable) {
  auto *table = static_cast<falcon_runtime_imports_t *>(
      dlsym(executable.libraryHandle, FALCON_RUNTIME_IMPORTS_SYMBOL));
  if (!table)
    return nullptr;
  std::lock_guard<std::mutex> lock(getImportBindingMutex());
  auto &bindings = getImportBindings();
  auto found = bindings.find(table);
  if (found != bindings.end()) {
    ++found->second.executableCount;
    executable.workspace = found->second.workspace;
  } else {
    if (table->version != 0)
      return makeStatus(FALCON_STATUS_FAILED_PRECONDITION,
                        executable.path + ": its " +
                            FALCON_RUNTIME_IMPORTS_SYMBOL +
                            " table is filled already, by another runtime in "
                            "this process");
    device->workspace->bind(*table);
    bindings.emplace(table, ImportBinding{device->workspace, 1});
    executable.workspace = device->workspace;
  }
  executable.imports = table;
  return nullptr;
}

void unbindImports(CPUExecutable &executable) {
  if (!executable.imports)
    return;
  std::lock_guard<std::mutex> lock(getImportBindingMutex());
  auto &bindings = getImportBindings();
  auto found = bindings.find(executable.imports);
  if (found != bindings.end() && --found->second.executableCount == 0) {
    // The library may stay mapped (another dlopen handle): a zero table
    // tells the next loader it is free, and the library that it is unbound.
    std::memset(executable.imports, 0, sizeof(falcon_runtime_imports_t));
    bindings.erase(found);
  }
  executable.imports = nullptr;
  executable.workspace.reset();
}

void unloadExecutable(falcon_hal_device_t *,
                      falcon_hal_executable_t *executable) {
  if (!executable)
    return;
  CPUExecutable *cpuExecutable = cast(executable);
  unbindImports(*cpuExecutable);
  dlclose(cpuExecutable->libraryHandle);
  delete cpuExecutable;
}

falcon_status_t loadExecutable(falcon_hal_device_t *device,
                               const falcon_hal_executable_params_t *params,
                               falcon_hal_executable_t **outExecutable) {
  *outExecutable = nullptr;
  if (!params || !params->path)
    return makeNullArgumentStatus("loadExecutable", "path");
  if (params->exportCount > 0 && !params->exportNames)
    return makeNullArgumentStatus("loadExecutable", "exportNames");
  const char *path = params->path;
  // dlopen's message for a missing file is terse; say plainly what is wrong.
  struct stat info;
  if (stat(path, &info) != 0) {
    int error = errno;
    return makeStatus(
        error == ENOENT ? FALCON_STATUS_NOT_FOUND : FALCON_STATUS_UNAVAILABLE,
        llvm::Twine(path) +
            ": cannot load host library: " + std::strerror(error));
  }
  // RTLD_LOCAL keeps the symbols of two artifacts apart; RTLD_NOW reports a
  // missing dependency here rather than at the first call.
  void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    llvm::StringRef reason = dlerror();
    if (reason.empty())
      reason = "unknown error";
    // A library compiled with falcon-compile --sanitize needs the
    // sanitizer's runtime in the process.
    llvm::StringRef hint =
        reason.contains("__asan_") || reason.contains("__ubsan_")
            ? " (compiled with --sanitize: run it in a process with the sanitizer runtime, "
              "e.g. LD_PRELOAD=libclang_rt.asan-x86_64.so; docs/reliability.md)"
            : "";
    return makeStatus(FALCON_STATUS_UNAVAILABLE,
                      llvm::Twine(path) + ": cannot load host library: " + reason + hint);
  }
  std::unique_ptr<CPUExecutable> executable(new (std::nothrow) CPUExecutable{
      handle, path, {}, {}, nullptr, nullptr, nullptr});
  if (!executable) {
    dlclose(handle);
    return descriptorAllocationFailed();
  }
  // From here on the executable owns the handle; unloadExecutable releases
  // whatever was set up when a step fails.
  auto fail = [&](falcon_status_t status) {
    unloadExecutable(device, reinterpret_cast<falcon_hal_executable_t *>(
                                 executable.release()));
    return status;
  };
  for (size_t index = 0; index < params->exportCount; ++index) {
    const char *name = params->exportNames[index];
    if (!name)
      return fail(makeNullArgumentStatus("loadExecutable", "an export name"));
    void *symbol = dlsym(handle, name);
    if (!symbol)
      return fail(makeStatus(FALCON_STATUS_FAILED_PRECONDITION,
                             llvm::Twine(path) + ": entry point '" + name +
                                 "' not found in the host library"));
    executable->exportNames.emplace_back(name);
    executable->exports.push_back(symbol);
  }
  executable->setNumThreads =
      reinterpret_cast<void (*)(int)>(dlsym(handle, "omp_set_num_threads"));
  if (falcon_status_t status = bindImports(cast(device), *executable))
    return fail(status);
  *outExecutable =
      reinterpret_cast<falcon_hal_executable_t *>(executable.release());
  return nullptr;
}

falcon_status_t lookupExport(falcon_hal_device_t *,
                             falcon_hal_executable_t *executable,
                             const char *name, uint32_t *outOrdinal) {
  *outOrdinal = 0;
  if (!name)
    return makeNullArgumentStatus("lookupExport", "name");
  CPUExecutable *cpuExecutable = cast(executable);
  auto found = llvm::find(cpuExecutable->exportNames, name);
  if (found == cpuExecutable->exportNames.end())
    return makeStatus(FALCON_STATUS_NOT_FOUND,
                      cpuExecutable->path + ": no export '" + name +
                          "' was resolved when the executable was loaded");
  *outOrdinal = uint32_t(found - cpuExecutable->exportNames.begin());
  return nullptr;
}

falcon_status_t readExecutableConstants(falcon_hal_device_t *,
                                        falcon_hal_executable_t *executable,
                                        const char *name, int64_t *out,
                                        size_t count) {
  if (!name)
    return makeNullArgumentStatus("readExecutableConstants", "name");
  auto *cpuExecutable = cast(executable);
  const void *symbol = dlsym(cpuExecutable->libraryHandle, name);
  if (!symbol)
    return makeStatus(FALCON_STATUS_NOT_FOUND,
                      llvm::Twine("the host library exports no '") + name +
                          "'");
  std::memcpy(out, symbol, count * sizeof(int64_t));
  return nullptr;
}

//===----------------------------------------------------------------------===//
// Launch
//===----------------------------------------------------------------------===//

/// MLIR's C-interface descriptor of a ranked memref (StridedMemRefType) of
/// any rank up to kHALMaxRank: the sizes and then the strides follow
/// `offset` as consecutive int64s, which is the layout of every rank's
/// descriptor prefix.
struct MemRefDescriptor {
  void *allocated;
  void *aligned;
  int64_t offset;
  int64_t sizesAndStrides[2 * kHALMaxRank];
};

// MLIR's lowering of memref.get_global puts this in `allocated` to mark
// memory that must not be freed.
void *const kNotAllocatedMarker = reinterpret_cast<void *>(0xdeadbeef);

/// Calls `function` with the `Count` integer-class words of `words`. An
/// export's parameters are memref descriptor pointers and int64 scalars,
/// which the SysV x86-64 and AAPCS64 calling conventions (the only ones this
/// file builds for) pass exactly like uintptr_t: integer registers, then
/// 8-byte stack slots. So one function type per parameter count calls any
/// export, without a per-signature trampoline or libffi.
// The export is called through a type of the same ABI, not its own, which
// UBSan's -fsanitize=function (clang) would flag: that is the point here.
#if defined(__clang__)
#define FALCON_NO_SANITIZE_FUNCTION __attribute__((no_sanitize("function")))
#else
#define FALCON_NO_SANITIZE_FUNCTION
#endif
template <size_t... Index>
FALCON_NO_SANITIZE_FUNCTION void
callWithWords(void *function, const uintptr_t *words, std::index_sequence<Index...>) {
  using Function = void (*)(decltype((void)Index, uintptr_t())...);
  reinterpret_cast<Function>(function)(words[Index]...);
}

template <size_t Count> void callWords(void *function, const uintptr_t *words) {
  callWithWords(function, words, std::make_index_sequence<Count>());
}

using WordCaller = void (*)(void *, const uintptr_t *);

template <size_t... Count>
constexpr std::array<WordCaller, sizeof...(Count)>
makeWordCallers(std::index_sequence<Count...>) {
  return {&callWords<Count>...};
}

constexpr auto kWordCallers =
    makeWordCallers(std::make_index_sequence<kHALMaxArguments + 1>());

/// "argument 2 ('input_ids')" for messages.
std::string describeArgument(const falcon_hal_launch_params_t &params,
                             size_t index) {
  std::string text = "argument " + std::to_string(index);
  if (const char *name = params.arguments[index].name)
    text += std::string(" ('") + name + "')";
  return text;
}

std::string formatShape(const int64_t *shape, int32_t rank) {
  std::string text = "[";
  for (int32_t dim = 0; dim < rank; ++dim) {
    if (dim)
      text += ", ";
    text += std::to_string(shape[dim]);
  }
  return text + "]";
}

/// Checks a tensor argument against its buffer; its byte size in `outBytes`.
falcon_status_t checkTensorArgument(falcon_hal_queue_t *queue,
                                    const falcon_hal_argument_t &argument,
                                    const std::string &where,
                                    uint64_t &outBytes) {
  falcon_hal_buffer_t *buffer = argument.buffer.buffer;
  if (!buffer)
    return makeStatus(FALCON_STATUS_INVALID_ARGUMENT, where + " has no buffer");
  if (buffer->device != queue->device)
    return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                      where + ": the buffer belongs to another device");
  if (cast(buffer)->mapped)
    return makeStatus(FALCON_STATUS_FAILED_PRECONDITION,
                      where + ": the buffer is mapped; unmap it first");
  if (argument.rank < 0 || argument.rank > kHALMaxRank)
    return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                      where + ": rank " + llvm::Twine(argument.rank) +
                          " is not in [0, " + llvm::Twine(kHALMaxRank) + "]");
  uint64_t bytes = getElementTypeSize(argument.elementType);
  if (bytes == 0)
    return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                      where + ": unknown element type " +
                          llvm::Twine(uint32_t(argument.elementType)));
  for (int32_t dim = 0; dim < argument.rank; ++dim) {
    if (argument.shape[dim] < 0 ||
        __builtin_mul_overflow(bytes, uint64_t(argument.shape[dim]), &bytes))
      return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                        where + ": shape " +
                            formatShape(argument.shape, argument.rank) +
                            " is negative or overflows");
  }
  uint64_t end = 0;
  if (__builtin_add_overflow(argument.buffer.offset, bytes, &end) ||
      end > buffer->size)
    return makeStatus(FALCON_STATUS_OUT_OF_RANGE,
                      where + ": " + getElementTypeName(argument.elementType) +
                          " " + formatShape(argument.shape, argument.rank) +
                          " needs " + llvm::Twine(bytes) + " bytes at offset " +
                          llvm::Twine(argument.buffer.offset) +
                          " but the buffer has " + llvm::Twine(buffer->size));
  outBytes = bytes;
  return nullptr;
}

/// A dense row-major descriptor of `argument` over its buffer.
MemRefDescriptor makeDescriptor(const falcon_hal_argument_t &argument) {
  MemRefDescriptor descriptor = {};
  char *data = static_cast<char *>(cast(argument.buffer.buffer)->data) +
               argument.buffer.offset;
  descriptor.allocated = data;
  descriptor.aligned = data;
  descriptor.offset = 0;
  int64_t stride = 1;
  for (int32_t dim = argument.rank - 1; dim >= 0; --dim) {
    descriptor.sizesAndStrides[dim] = argument.shape[dim];
    descriptor.sizesAndStrides[argument.rank + dim] = stride;
    stride *= argument.shape[dim];
  }
  return descriptor;
}

/// Copies the memref `returned` (any strides) into `argument`'s buffer,
/// dense row-major. Its shape was checked.
void copyResult(const MemRefDescriptor &returned,
                const falcon_hal_argument_t &argument) {
  const int32_t rank = argument.rank;
  const size_t elementSize = getElementTypeSize(argument.elementType);
  const int64_t *strides = returned.sizesAndStrides + rank;
  int64_t count = 1;
  for (int32_t dim = 0; dim < rank; ++dim)
    count *= argument.shape[dim];
  if (count == 0)
    return;
  const char *source = static_cast<const char *>(returned.aligned) +
                       returned.offset * int64_t(elementSize);
  char *target = static_cast<char *>(cast(argument.buffer.buffer)->data) +
                 argument.buffer.offset;
  // Walks the indices of every dimension but the last, row-major.
  int64_t index[kHALMaxRank] = {};
  const int64_t rowLength = rank == 0 ? 1 : argument.shape[rank - 1];
  const int64_t rowStride = rank == 0 ? 1 : strides[rank - 1];
  for (int64_t row = 0; row < count / rowLength; ++row) {
    int64_t sourceOffset = 0;
    for (int32_t dim = 0; dim + 1 < rank; ++dim)
      sourceOffset += index[dim] * strides[dim];
    const char *from = source + sourceOffset * int64_t(elementSize);
    char *to = target + row * rowLength * int64_t(elementSize);
    if (rowStride == 1) {
      std::memcpy(to, from, size_t(rowLength) * elementSize);
    } else {
      for (int64_t column = 0; column < rowLength; ++column)
        std::memcpy(to + column * int64_t(elementSize),
                    from + column * rowStride * int64_t(elementSize),
                    elementSize);
    }
    for (int32_t dim = rank - 2; dim >= 0; --dim) {
      if (++index[dim] < argument.shape[dim])
        break;
      index[dim] = 0;
    }
  }
}

void deferError(CPUQueue *queue, falcon_status_t status) {
  if (!queue->deferredError)
    queue->deferredError = status;
  else
    falcon_status_free(status);
}

falcon_status_t launch(falcon_hal_queue_t *queue,
                       const falcon_hal_launch_params_t *params) {
  if (!params || !params->executable)
    return makeNullArgumentStatus("launch", "executable");
  CPUExecutable *executable = cast(params->executable);
  if (params->exportOrdinal >= executable->exports.size())
    return makeStatus(
        FALCON_STATUS_NOT_FOUND,
        executable->path + ": export ordinal " +
            llvm::Twine(params->exportOrdinal) + " is out of range (" +
            llvm::Twine(uint64_t(executable->exports.size())) + " exports)");
  const std::string &exportName =
      executable->exportNames[params->exportOrdinal];
  if (params->argumentCount > kHALMaxArguments)
    return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                      "launch of '" + exportName +
                          "': " + llvm::Twine(uint64_t(params->argumentCount)) +
                          " arguments, at most " +
                          llvm::Twine(uint64_t(kHALMaxArguments)) +
                          " are supported");
  if (params->argumentCount > 0 && !params->arguments)
    return makeNullArgumentStatus("launch", "arguments");

  MemRefDescriptor descriptors[kHALMaxArguments];
  uintptr_t words[kHALMaxArguments] = {};
  for (size_t index = 0; index < params->argumentCount; ++index) {
    const falcon_hal_argument_t &argument = params->arguments[index];
    std::string where =
        "launch of '" + exportName + "': " + describeArgument(*params, index);
    switch (argument.kind) {
    case FALCON_HAL_ARGUMENT_INT64:
      words[index] = uintptr_t(argument.value);
      continue;
    case FALCON_HAL_ARGUMENT_BUFFER:
    case FALCON_HAL_ARGUMENT_RESULT: {
      uint64_t bytes = 0;
      FALCON_RETURN_IF_ERROR(
          checkTensorArgument(queue, argument, where, bytes));
      // A result starts empty: the export fills it with memory of its own.
      descriptors[index] = argument.kind == FALCON_HAL_ARGUMENT_BUFFER
                               ? makeDescriptor(argument)
                               : MemRefDescriptor{};
      words[index] = reinterpret_cast<uintptr_t>(&descriptors[index]);
      continue;
    }
    }
    return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                      where + ": unknown argument kind " +
                          llvm::Twine(uint32_t(argument.kind)));
  }

  // The setting is per calling thread in OpenMP, so it is made on every call.
  int32_t threadCount = cast(queue->device)->threadCount;
  if (threadCount > 0 && executable->setNumThreads)
    executable->setNumThreads(threadCount);
  // A library bound to the workspace runs inside Workspace::invoke: an
  // allocation it cannot have ends the call as RESOURCE_EXHAUSTED (the
  // results it allocated are freed) instead of crashing on a null pointer.
  WordCaller caller = kWordCallers[params->argumentCount];
  void *function = executable->exports[params->exportOrdinal];
  if (!executable->workspace) {
    caller(function, words);
  } else if (std::string failure = executable->workspace->invoke(caller, function, words);
             !failure.empty()) {
    return makeStatus(FALCON_STATUS_RESOURCE_EXHAUSTED,
                      "launch of '" + exportName + "': " + failure);
  }

  // Every result is taken over and freed, whatever else went wrong.
  CPUQueue *cpuQueue = cast(queue);
  for (size_t index = 0; index < params->argumentCount; ++index) {
    const falcon_hal_argument_t &argument = params->arguments[index];
    if (argument.kind != FALCON_HAL_ARGUMENT_RESULT)
      continue;
    const MemRefDescriptor &returned = descriptors[index];
    bool sameShape = std::equal(argument.shape, argument.shape + argument.rank,
                                returned.sizesAndStrides);
    if (returned.aligned && sameShape) {
      copyResult(returned, argument);
    } else {
      std::string name =
          argument.name ? argument.name : "result " + std::to_string(index);
      deferError(
          cpuQueue,
          makeStatus(FALCON_STATUS_INTERNAL,
                     "the host library returned " + name + " of shape " +
                         formatShape(returned.sizesAndStrides, argument.rank) +
                         ", expected " +
                         formatShape(argument.shape, argument.rank) +
                         (returned.aligned ? "" : " (null data)")));
    }
    // A library bound to the import table allocates its results through it
    // (falcon/Support/RuntimeImports.h); others malloc them.
    if (returned.allocated && returned.allocated != kNotAllocatedMarker) {
      if (executable->workspace)
        executable->workspace->release(returned.allocated);
      else
        std::free(returned.allocated);
    }
  }
  return nullptr;
}

//===----------------------------------------------------------------------===//
// Queues and events
//===----------------------------------------------------------------------===//

falcon_status_t createQueue(falcon_hal_device_t *device,
                            falcon_hal_queue_t **outQueue) {
  auto *queue = new (std::nothrow) CPUQueue(device);
  *outQueue = queue;
  return queue ? nullptr : descriptorAllocationFailed();
}

void destroyQueue(falcon_hal_device_t *, falcon_hal_queue_t *queue) {
  if (!queue)
    return;
  falcon_status_free(cast(queue)->deferredError);
  delete cast(queue);
}

/// Checks a buffer operand of a transfer: this queue's device, not mapped,
/// the range inside.
falcon_status_t checkTransferOperand(falcon_hal_queue_t *queue,
                                     const char *operation,
                                     falcon_hal_buffer_ref_t operand,
                                     uint64_t length) {
  if (!operand.buffer)
    return makeNullArgumentStatus(operation, "buffer");
  if (operand.buffer->device != queue->device)
    return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                      llvm::Twine(operation) +
                          ": the buffer belongs to another device");
  if (cast(operand.buffer)->mapped)
    return makeStatus(FALCON_STATUS_FAILED_PRECONDITION,
                      llvm::Twine(operation) +
                          ": the buffer is mapped; unmap it first");
  return checkRange(operation, operand.buffer, operand.offset, length);
}

char *addressOf(falcon_hal_buffer_ref_t operand) {
  return static_cast<char *>(cast(operand.buffer)->data) + operand.offset;
}

falcon_status_t copyBuffer(falcon_hal_queue_t *queue,
                           falcon_hal_buffer_ref_t source,
                           falcon_hal_buffer_ref_t target, uint64_t length) {
  FALCON_RETURN_IF_ERROR(
      checkTransferOperand(queue, "copyBuffer", source, length));
  FALCON_RETURN_IF_ERROR(
      checkTransferOperand(queue, "copyBuffer", target, length));
  // The ranges are in bounds, so the sums cannot overflow.
  if (source.buffer == target.buffer &&
      source.offset < target.offset + length &&
      target.offset < source.offset + length)
    return makeStatus(
        FALCON_STATUS_INVALID_ARGUMENT,
        "copyBuffer: source bytes [" + llvm::Twine(source.offset) + ", " +
            llvm::Twine(source.offset + length) + ") overlap target bytes [" +
            llvm::Twine(target.offset) + ", " +
            llvm::Twine(target.offset + length) + ")");
  std::memcpy(addressOf(target), addressOf(source), size_t(length));
  return nullptr;
}

falcon_status_t copyHostToBuffer(falcon_hal_queue_t *queue, const void *source,
                                 falcon_hal_buffer_ref_t target,
                                 uint64_t length) {
  if (!source && length > 0)
    return makeNullArgumentStatus("copyHostToBuffer", "source");
  FALCON_RETURN_IF_ERROR(
      checkTransferOperand(queue, "copyHostToBuffer", target, length));
  if (length > 0)
    std::memcpy(addressOf(target), source, size_t(length));
  return nullptr;
}

falcon_status_t copyBufferToHost(falcon_hal_queue_t *queue,
                                 falcon_hal_buffer_ref_t source, void *target,
                                 uint64_t length) {
  if (!target && length > 0)
    return makeNullArgumentStatus("copyBufferToHost", "target");
  FALCON_RETURN_IF_ERROR(
      checkTransferOperand(queue, "copyBufferToHost", source, length));
  if (length > 0)
    std::memcpy(target, addressOf(source), size_t(length));
  return nullptr;
}

falcon_status_t fillBuffer(falcon_hal_queue_t *queue,
                           falcon_hal_buffer_ref_t target, uint64_t length,
                           const void *pattern, size_t patternLength) {
  if (!pattern)
    return makeNullArgumentStatus("fillBuffer", "pattern");
  if (patternLength != 1 && patternLength != 2 && patternLength != 4 &&
      patternLength != 8)
    return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                      "fillBuffer: the pattern is " +
                          llvm::Twine(uint64_t(patternLength)) +
                          " bytes; 1, 2, 4 or 8 are supported");
  if (length % patternLength != 0)
    return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                      "fillBuffer: length " + llvm::Twine(length) +
                          " is not a multiple of the " +
                          llvm::Twine(uint64_t(patternLength)) +
                          "-byte pattern");
  FALCON_RETURN_IF_ERROR(
      checkTransferOperand(queue, "fillBuffer", target, length));
  char *data = addressOf(target);
  if (patternLength == 1) {
    std::memset(data, *static_cast<const unsigned char *>(pattern),
                size_t(length));
    return nullptr;
  }
  for (uint64_t offset = 0; offset < length; offset += patternLength)
    std::memcpy(data + offset, pattern, patternLength);
  return nullptr;
}

falcon_status_t checkEvent(falcon_hal_device_t *device, const char *operation,
                           falcon_hal_event_t *event) {
  if (!event)
    return makeNullArgumentStatus(operation, "event");
  if (cast(event)->device != device)
    return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                      llvm::Twine(operation) +
                          ": the event belongs to another device");
  return nullptr;
}

falcon_status_t checkRecorded(falcon_hal_event_t *event,
                              const char *operation) {
  if (!cast(event)->recorded)
    return makeStatus(FALCON_STATUS_FAILED_PRECONDITION,
                      llvm::Twine(operation) +
                          ": the event was never recorded, so nothing would "
                          "signal it");
  return nullptr;
}

falcon_status_t recordEvent(falcon_hal_queue_t *queue,
                            falcon_hal_event_t *event) {
  FALCON_RETURN_IF_ERROR(checkEvent(queue->device, "recordEvent", event));
  // The work before this point ran inline and is done.
  cast(event)->recorded = true;
  return nullptr;
}

falcon_status_t waitEvent(falcon_hal_queue_t *queue,
                          falcon_hal_event_t *event) {
  FALCON_RETURN_IF_ERROR(checkEvent(queue->device, "waitEvent", event));
  return checkRecorded(event, "waitEvent");
}

falcon_status_t finish(falcon_hal_queue_t *queue) {
  CPUQueue *cpuQueue = cast(queue);
  falcon_status_t status = cpuQueue->deferredError;
  cpuQueue->deferredError = nullptr;
  return status;
}

falcon_status_t createEvent(falcon_hal_device_t *device,
                            falcon_hal_event_t **outEvent) {
  auto *event = new (std::nothrow) CPUEvent{device, /*recorded=*/false};
  *outEvent = reinterpret_cast<falcon_hal_event_t *>(event);
  return event ? nullptr : descriptorAllocationFailed();
}

void destroyEvent(falcon_hal_device_t *, falcon_hal_event_t *event) {
  delete cast(event);
}

falcon_status_t queryEvent(falcon_hal_device_t *device,
                           falcon_hal_event_t *event, bool *outSignaled) {
  *outSignaled = false;
  FALCON_RETURN_IF_ERROR(checkEvent(device, "queryEvent", event));
  *outSignaled = cast(event)->recorded;
  return nullptr;
}

falcon_status_t synchronizeEvent(falcon_hal_device_t *device,
                                 falcon_hal_event_t *event) {
  FALCON_RETURN_IF_ERROR(checkEvent(device, "synchronizeEvent", event));
  return checkRecorded(event, "synchronizeEvent");
}

const falcon_hal_device_vtable_t cpuDeviceVtable = {
    destroyDevice,
    allocateBuffer,
    wrapHostMemory,
    freeBuffer,
    mapBuffer,
    unmapBuffer,
    queryAllocatorStatistics,
    setWorkspaceLimit,
    loadExecutable,
    unloadExecutable,
    lookupExport,
    readExecutableConstants,
    createQueue,
    destroyQueue,
    launch,
    copyBuffer,
    copyHostToBuffer,
    copyBufferToHost,
    fillBuffer,
    recordEvent,
    waitEvent,
    finish,
    createEvent,
    destroyEvent,
    queryEvent,
    synchronizeEvent,
    setExecutableChannel,
};

} // namespace

falcon_status_t falcon::runtime::hal::cpu::createCPUDevice(
    const falcon_hal_device_params_t &params, falcon_hal_device_t **outDevice) {
  *outDevice = nullptr;
  auto *device = new (std::nothrow) CPUDevice();
  if (!device)
    return makeStatus(FALCON_STATUS_RESOURCE_EXHAUSTED,
                      "cannot allocate the CPU device");
  device->vtable = &cpuDeviceVtable;
  device->name = "cpu";
  device->threadCount = params.threadCount;
  device->workspace = std::make_shared<Workspace>();
  *outDevice = device;
  return nullptr;
}
