//===- Device.h - the runtime's device interface (HAL) ----------*- C++ -*-===//
//
// A device is a vtable of the few things the runtime needs from a backend:
// buffers, loading the compiled module (the artifact's host library) and
// invoking its forward entry point. Core code talks only to this interface;
// vendor code lives under hal/<backend>/ (after IREE's HAL).
//
//===----------------------------------------------------------------------===//

#ifndef FALCON_RUNTIME_HAL_DEVICE_H
#define FALCON_RUNTIME_HAL_DEVICE_H

#include "falcon/runtime.h"

#include <cstddef>
#include <cstdint>

struct falcon_hal_device_t;

/// A block of device memory. Every buffer of this version is host-visible:
/// `hostData` is where the host reads and writes it.
struct falcon_hal_buffer_t {
  falcon_hal_device_t *device;
  void *hostData;
  size_t size;
  /// False for buffers that wrap memory owned by someone else (the mapped
  /// weights); freeing those releases only the descriptor.
  bool ownsMemory;
};

/// A loaded module; the layout is private to the device that loaded it.
struct falcon_hal_module_t;

/// The arguments of one forward call (docs/artifact-format.md, "Host ABI").
/// Shapes: inputIds and positionIds int64 [batchSize, sequenceLength];
/// keyCache and valueCache float [layers, batchSize, kvHeads, cacheCapacity,
/// headDim]; weights uint8 [weights->size]. `logits` is where the device
/// leaves the float [batchSize, sequenceLength, vocabSize] result, dense
/// row-major, however the module itself hands it back.
struct falcon_hal_forward_args_t {
  falcon_hal_buffer_t *inputIds;
  falcon_hal_buffer_t *positionIds;
  int64_t pastLength;
  falcon_hal_buffer_t *keyCache;
  falcon_hal_buffer_t *valueCache;
  falcon_hal_buffer_t *weights;
  falcon_hal_buffer_t *logits;
  int64_t batchSize;
  int64_t sequenceLength;
  int64_t layers;
  int64_t kvHeads;
  int64_t cacheCapacity;
  int64_t headDim;
  int64_t vocabSize;
  /// Threads for the module's parallel loops; 0 leaves the default.
  int32_t numThreads;
};

struct falcon_hal_device_vtable_t {
  /// Frees the device; its buffers and modules must be gone already.
  void (*destroy)(falcon_hal_device_t *device);
  /// Allocates `size` bytes, zero-filled and 64-byte aligned.
  falcon_status_t (*allocateBuffer)(falcon_hal_device_t *device, size_t size,
                                    falcon_hal_buffer_t **outBuffer);
  /// Wraps host memory that outlives the buffer (no copy, no ownership).
  falcon_status_t (*wrapHostMemory)(falcon_hal_device_t *device, void *data,
                                    size_t size,
                                    falcon_hal_buffer_t **outBuffer);
  void (*freeBuffer)(falcon_hal_device_t *device, falcon_hal_buffer_t *buffer);
  /// Loads the module at `path` and resolves `entryPoint` in it.
  falcon_status_t (*loadModule)(falcon_hal_device_t *device, const char *path,
                                const char *entryPoint,
                                falcon_hal_module_t **outModule);
  void (*unloadModule)(falcon_hal_device_t *device,
                       falcon_hal_module_t *module);
  /// Copies `count` values of the int64 array `name` that the module exports
  /// (the geometry it was compiled for) to `out`; NOT_FOUND when it has none.
  falcon_status_t (*readModuleConstants)(falcon_hal_device_t *device,
                                         falcon_hal_module_t *module,
                                         const char *name, int64_t *out,
                                         size_t count);
  /// Runs the forward entry point. The caller has validated the arguments
  /// (shapes agree, pastLength + sequenceLength <= cacheCapacity, token ids
  /// in range) because the compiled code cannot report errors. An error
  /// means the module misbehaved (e.g. returned logits of the wrong shape);
  /// the KV-cache rows of this call are then undefined.
  falcon_status_t (*invokeForward)(falcon_hal_device_t *device,
                                   falcon_hal_module_t *module,
                                   const falcon_hal_forward_args_t *args);
};

/// The common header of every device; backends embed it first.
struct falcon_hal_device_t {
  const falcon_hal_device_vtable_t *vtable;
  const char *name;
};

namespace falcon::runtime::hal {

/// Creates the device named `name` ("cpu"). Unknown or unavailable devices
/// are an UNAVAILABLE status.
falcon_status_t createDevice(const char *name, falcon_hal_device_t **outDevice);

inline void destroyDevice(falcon_hal_device_t *device) {
  if (device)
    device->vtable->destroy(device);
}

inline void freeBuffer(falcon_hal_buffer_t *buffer) {
  if (buffer)
    buffer->device->vtable->freeBuffer(buffer->device, buffer);
}

} // namespace falcon::runtime::hal

#endif // FALCON_RUNTIME_HAL_DEVICE_H
