//===- CPUDevice.cpp - in-process CPU device --------------------*- C++ -*-===//
//
// The CPU backend of the HAL. The host library is loaded with dlopen (never
// linked), so one process can hold several artifacts, and the entry point is
// called with the memref descriptors of docs/artifact-format.md.
//
//===----------------------------------------------------------------------===//

#include "hal/cpu/CPUDevice.h"

#include "core/Status.h"

#include "llvm/ADT/Twine.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <iterator>
#include <memory>
#include <new>
#include <sys/stat.h>

using namespace falcon::runtime;

namespace {

/// MLIR's C-interface descriptor of a ranked memref (StridedMemRefType).
template <int Rank> struct MemRefDescriptor {
  void *allocated;
  void *aligned;
  int64_t offset;
  int64_t sizes[Rank];
  int64_t strides[Rank];
};

/// The entry point. The logits are MLIR's returned memref (their shape is
/// dynamic): the callee fills `*logits` with a buffer it malloc()ed, and the
/// caller frees `allocated`.
using ForwardFunction = void (*)(MemRefDescriptor<3> *logits,
                                 MemRefDescriptor<2> *inputIds,
                                 MemRefDescriptor<2> *positionIds,
                                 int64_t pastLength,
                                 MemRefDescriptor<5> *keyCache,
                                 MemRefDescriptor<5> *valueCache,
                                 MemRefDescriptor<1> *weights);

// MLIR's lowering of memref.get_global puts this in `allocated` to mark
// memory that must not be freed.
void *const kNotAllocatedMarker = reinterpret_cast<void *>(0xdeadbeef);

/// A dense row-major descriptor of `sizes` over `data`.
template <int Rank>
MemRefDescriptor<Rank> makeDescriptor(void *data,
                                      const int64_t (&sizes)[Rank]) {
  MemRefDescriptor<Rank> descriptor;
  descriptor.allocated = data;
  descriptor.aligned = data;
  descriptor.offset = 0;
  int64_t stride = 1;
  for (int dim = Rank - 1; dim >= 0; --dim) {
    descriptor.sizes[dim] = sizes[dim];
    descriptor.strides[dim] = stride;
    stride *= sizes[dim];
  }
  return descriptor;
}

struct CPUModule {
  void *libraryHandle;
  ForwardFunction forward;
  /// The OpenMP runtime's omp_set_num_threads as the host library sees it
  /// (null for a library without parallel loops).
  void (*setNumThreads)(int);
};

// Alignment of every buffer: one cache line, and what the compiled code may
// assume for vector loads.
constexpr size_t kBufferAlignment = 64;

void destroyDevice(falcon_hal_device_t *device) { delete device; }

falcon_status_t allocateBuffer(falcon_hal_device_t *device, size_t size,
                               falcon_hal_buffer_t **outBuffer) {
  *outBuffer = nullptr;
  // A zero-byte buffer still gets a unique, non-null pointer: the compiled
  // code never reads it, but NULL data would look like a failed allocation.
  size_t bytes = size == 0 ? kBufferAlignment : size;
  void *data = nullptr;
  if (posix_memalign(&data, kBufferAlignment, bytes) != 0)
    return makeStatus(FALCON_STATUS_RESOURCE_EXHAUSTED,
                      "cannot allocate a buffer of " + llvm::Twine(size) +
                          " bytes");
  auto *buffer = new (std::nothrow) falcon_hal_buffer_t{device, data, size,
                                                        /*ownsMemory=*/true};
  if (!buffer) {
    std::free(data);
    return makeStatus(FALCON_STATUS_RESOURCE_EXHAUSTED,
                      "cannot allocate a buffer descriptor");
  }
  std::memset(data, 0, bytes);
  *outBuffer = buffer;
  return nullptr;
}

falcon_status_t wrapHostMemory(falcon_hal_device_t *device, void *data,
                               size_t size, falcon_hal_buffer_t **outBuffer) {
  *outBuffer = new (std::nothrow)
      falcon_hal_buffer_t{device, data, size, /*ownsMemory=*/false};
  if (!*outBuffer)
    return makeStatus(FALCON_STATUS_RESOURCE_EXHAUSTED,
                      "cannot allocate a buffer descriptor");
  return nullptr;
}

void freeBuffer(falcon_hal_device_t *, falcon_hal_buffer_t *buffer) {
  if (!buffer)
    return;
  if (buffer->ownsMemory)
    std::free(buffer->hostData);
  delete buffer;
}

falcon_status_t loadModule(falcon_hal_device_t *, const char *path,
                           const char *entryPoint,
                           falcon_hal_module_t **outModule) {
  *outModule = nullptr;
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
    const char *reason = dlerror();
    return makeStatus(FALCON_STATUS_UNAVAILABLE,
                      llvm::Twine(path) + ": cannot load host library: " +
                          (reason ? reason : "unknown error"));
  }
  dlerror();
  void *symbol = dlsym(handle, entryPoint);
  if (!symbol) {
    dlclose(handle);
    return makeStatus(FALCON_STATUS_FAILED_PRECONDITION,
                      llvm::Twine(path) + ": entry point '" + entryPoint +
                          "' not found in the host library");
  }
  auto *setNumThreads = reinterpret_cast<void (*)(int)>(
      dlsym(handle, "omp_set_num_threads"));
  auto *module = new (std::nothrow) CPUModule{
      handle, reinterpret_cast<ForwardFunction>(symbol), setNumThreads};
  if (!module) {
    dlclose(handle);
    return makeStatus(FALCON_STATUS_RESOURCE_EXHAUSTED,
                      "cannot allocate a module descriptor");
  }
  *outModule = reinterpret_cast<falcon_hal_module_t *>(module);
  return nullptr;
}

falcon_status_t readModuleConstants(falcon_hal_device_t *, falcon_hal_module_t *module,
                                    const char *name, int64_t *out, size_t count) {
  auto *cpuModule = reinterpret_cast<CPUModule *>(module);
  const void *symbol = dlsym(cpuModule->libraryHandle, name);
  if (!symbol)
    return makeStatus(FALCON_STATUS_NOT_FOUND,
                      llvm::Twine("the host library exports no '") + name + "'");
  std::memcpy(out, symbol, count * sizeof(int64_t));
  return nullptr;
}

void unloadModule(falcon_hal_device_t *, falcon_hal_module_t *module) {
  if (!module)
    return;
  auto *cpuModule = reinterpret_cast<CPUModule *>(module);
  dlclose(cpuModule->libraryHandle);
  delete cpuModule;
}

falcon_status_t invokeForward(falcon_hal_device_t *,
                              falcon_hal_module_t *module,
                              const falcon_hal_forward_args_t *args) {
  auto *cpuModule = reinterpret_cast<CPUModule *>(module);
  const int64_t tokenSizes[2] = {args->batchSize, args->sequenceLength};
  const int64_t cacheSizes[5] = {args->layers, args->batchSize, args->kvHeads,
                                 args->cacheCapacity, args->headDim};
  const int64_t weightSizes[1] = {static_cast<int64_t>(args->weights->size)};
  const int64_t logitSizes[3] = {args->batchSize, args->sequenceLength,
                                 args->vocabSize};
  MemRefDescriptor<2> inputIds =
      makeDescriptor(args->inputIds->hostData, tokenSizes);
  MemRefDescriptor<2> positionIds =
      makeDescriptor(args->positionIds->hostData, tokenSizes);
  MemRefDescriptor<5> keyCache =
      makeDescriptor(args->keyCache->hostData, cacheSizes);
  MemRefDescriptor<5> valueCache =
      makeDescriptor(args->valueCache->hostData, cacheSizes);
  MemRefDescriptor<1> weights =
      makeDescriptor(args->weights->hostData, weightSizes);
  MemRefDescriptor<3> logits = {};
  // The setting is per calling thread in OpenMP, so it is made on every call.
  if (args->numThreads > 0 && cpuModule->setNumThreads)
    cpuModule->setNumThreads(args->numThreads);
  cpuModule->forward(&logits, &inputIds, &positionIds, args->pastLength,
                     &keyCache, &valueCache, &weights);

  // Take ownership of the returned buffer first, so that every path below
  // frees it.
  std::unique_ptr<void, decltype(&std::free)> owned(
      logits.allocated == kNotAllocatedMarker ? nullptr : logits.allocated,
      &std::free);
  if (!logits.aligned ||
      !std::equal(std::begin(logitSizes), std::end(logitSizes),
                  std::begin(logits.sizes)))
    return makeStatus(
        FALCON_STATUS_INTERNAL,
        "the host library returned logits of shape [" +
            llvm::Twine(logits.sizes[0]) + ", " + llvm::Twine(logits.sizes[1]) +
            ", " + llvm::Twine(logits.sizes[2]) + "], expected [" +
            llvm::Twine(logitSizes[0]) + ", " + llvm::Twine(logitSizes[1]) +
            ", " + llvm::Twine(logitSizes[2]) + "]" +
            (logits.aligned ? "" : " (null data)"));
  // Honour offset and strides: a returned memref need not be dense.
  const float *source =
      static_cast<const float *>(logits.aligned) + logits.offset;
  auto *destination = static_cast<float *>(args->logits->hostData);
  const int64_t vocabSize = logitSizes[2];
  for (int64_t row = 0; row < logitSizes[0]; ++row) {
    for (int64_t position = 0; position < logitSizes[1]; ++position) {
      const float *from =
          source + row * logits.strides[0] + position * logits.strides[1];
      float *to = destination + (row * logitSizes[1] + position) * vocabSize;
      if (logits.strides[2] == 1) {
        std::memcpy(to, from, size_t(vocabSize) * sizeof(float));
        continue;
      }
      for (int64_t id = 0; id < vocabSize; ++id)
        to[id] = from[id * logits.strides[2]];
    }
  }
  return nullptr;
}

const falcon_hal_device_vtable_t cpuDeviceVtable = {
    destroyDevice, allocateBuffer, wrapHostMemory, freeBuffer,
    loadModule,    unloadModule,   readModuleConstants, invokeForward,
};

} // namespace

falcon_status_t
falcon::runtime::hal::cpu::createCPUDevice(falcon_hal_device_t **outDevice) {
  *outDevice = new (std::nothrow) falcon_hal_device_t{&cpuDeviceVtable, "cpu"};
  if (!*outDevice)
    return makeStatus(FALCON_STATUS_RESOURCE_EXHAUSTED,
                      "cannot allocate the CPU device");
  return nullptr;
}
