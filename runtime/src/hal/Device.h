//===- Device.h - the runtime's device interface (HAL) ----------*- C++ -*-===//
//
// A device is a vtable over what the runtime needs from a backend, in the
// shape of IREE's HAL:
//
//  - an allocator: buffers of a memory type (device-local, host-local,
//    host-visible), wrapped external host memory, map/unmap for host access,
//    and statistics (buffer bytes, and the workspace the compiled code
//    allocates through the runtime import table);
//  - executables: a file of compiled code with several named exports, each
//    resolved when the file is loaded, plus exported int64 constants;
//  - queues: launch (an export and its arguments), buffer copies and fills,
//    event record/wait, and finish;
//  - events: recorded on a queue, waited on by another queue or the host,
//    queried.
//
// Core code talks only to this interface; vendor code lives under
// hal/<backend>/.
//
// The interface is written for asynchronous devices with their own memory,
// although the one backend today (hal/cpu) is neither:
//  - A buffer's memory may not be addressable by the host (a CUdeviceptr).
//    The buffer header carries no pointer; the host reaches the memory only
//    through mapBuffer (host-visible buffers) or the queue's copies. The CPU
//    device refuses to map a buffer that was not allocated host-visible, so
//    core code that would break on a GPU breaks on the CPU too.
//  - Queue operations are stream-ordered and may run after the call returns
//    (a CUDA/HIP stream). The host may read a buffer written by the queue
//    only after finish or a waited event; host memory passed to
//    copyBufferToHost is written by then, and host memory passed to
//    copyHostToBuffer may be reused as soon as the call returns. Arguments are
//    validated when work is enqueued; failures of the work itself (a kernel
//    that misbehaved) are reported by the next finish.
//  - A CUDA/HIP backend maps these one to one: allocateBuffer to
//    cuMemAlloc/cuMemHostAlloc, mapBuffer to the host pointer of host-visible
//    memory, queues to streams, events to cuEvent*, launch to cuLaunchKernel
//    of the export's kernel, finish to cuStreamSynchronize. It loads its
//    driver with dlopen and reports UNAVAILABLE from createDevice when the
//    driver or a GPU is missing.
//
// Every fallible call returns a falcon_status_t; out-parameters are last and
// cleared on error. Objects are created and destroyed through their device
// and must not outlive it.
//
//===----------------------------------------------------------------------===//

#ifndef FALCON_RUNTIME_HAL_DEVICE_H
#define FALCON_RUNTIME_HAL_DEVICE_H

#include "falcon/runtime.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/STLFunctionalExtras.h"

#include <cstddef>
#include <cstdint>

struct falcon_hal_device_t;
struct falcon_comm_channel_t;

//===----------------------------------------------------------------------===//
// Element and memory types
//===----------------------------------------------------------------------===//

/// Element types of launch arguments and collective operations.
enum falcon_hal_element_type_t : uint32_t {
  FALCON_HAL_ELEMENT_TYPE_F32,
  FALCON_HAL_ELEMENT_TYPE_F16,
  FALCON_HAL_ELEMENT_TYPE_BF16,
  FALCON_HAL_ELEMENT_TYPE_I64,
  FALCON_HAL_ELEMENT_TYPE_I32,
  FALCON_HAL_ELEMENT_TYPE_U8,
};

/// Where a buffer's memory lives and who can touch it; a bit set.
enum falcon_hal_memory_type_bits_t : uint32_t {
  /// Fast for the device's kernels; the host may be unable to address it.
  FALCON_HAL_MEMORY_TYPE_DEVICE_LOCAL = 1u << 0,
  /// In host memory (pinned host memory on a GPU).
  FALCON_HAL_MEMORY_TYPE_HOST_LOCAL = 1u << 1,
  /// The host may map it (mapBuffer).
  FALCON_HAL_MEMORY_TYPE_HOST_VISIBLE = 1u << 2,
};
using falcon_hal_memory_type_t = uint32_t;

/// What the host does with a mapping; a bit set. A GPU backend downloads the
/// range for READ and uploads it at unmap for WRITE.
enum falcon_hal_memory_access_bits_t : uint32_t {
  FALCON_HAL_MEMORY_ACCESS_READ = 1u << 0,
  FALCON_HAL_MEMORY_ACCESS_WRITE = 1u << 1,
};
using falcon_hal_memory_access_t = uint32_t;

//===----------------------------------------------------------------------===//
// Objects
//===----------------------------------------------------------------------===//

/// The common header of a buffer; backends embed it first. It deliberately
/// holds no address: see mapBuffer.
struct falcon_hal_buffer_t {
  falcon_hal_device_t *device;
  uint64_t size;
  /// The types the buffer was allocated with (wrapped host memory:
  /// HOST_LOCAL | HOST_VISIBLE).
  falcon_hal_memory_type_t memoryType;
};

/// A (buffer, byte offset) pair: where an operand starts.
struct falcon_hal_buffer_ref_t {
  falcon_hal_buffer_t *buffer;
  uint64_t offset;
};

/// A loaded executable; the layout is private to the device that loaded it.
struct falcon_hal_executable_t;

/// The common header of a queue; backends embed it first.
struct falcon_hal_queue_t {
  falcon_hal_device_t *device;
};

/// A point in a queue's work; private to the device.
struct falcon_hal_event_t;

/// What a device was created with.
struct falcon_hal_device_params_t {
  /// "cpu"; NULL means "cpu".
  const char *name;
  /// Host threads the device's launched work may use; 0 leaves the default.
  /// Devices that run nothing on host threads ignore it.
  int32_t threadCount;
};

/// What the allocator holds now and held at most.
struct falcon_hal_allocator_statistics_t {
  /// Buffers allocated by the device (wrapped host memory is not counted).
  uint64_t bufferBytes;
  uint64_t bufferPeakBytes;
  /// Bytes the loaded executables hold through the runtime import table
  /// (falcon/Support/RuntimeImports.h): their workspace.
  uint64_t workspaceBytes;
  uint64_t workspacePeakBytes;
  /// The workspace limit; 0 means none.
  uint64_t workspaceLimitBytes;
  /// The executables' collectives (the import table's all-reduce) so far:
  /// their count and wall time.
  uint64_t executableCollectives;
  uint64_t executableCollectiveNanoseconds;
};

/// Loading an executable: the file and the exports to resolve in it.
struct falcon_hal_executable_params_t {
  const char *path;
  /// Every export is resolved at load time (a missing one fails the load);
  /// launches name them by ordinal, see lookupExport.
  const char *const *exportNames;
  size_t exportCount;
};

enum falcon_hal_argument_kind_t : uint32_t {
  /// An int64 scalar (`value`).
  FALCON_HAL_ARGUMENT_INT64,
  /// A tensor in a buffer: `elementType` [`shape`], dense row-major at
  /// `buffer.offset`. The export may read and write it.
  FALCON_HAL_ARGUMENT_BUFFER,
  /// A tensor the export returns (MLIR's returned memref): the device
  /// places it in `buffer` as a dense row-major `elementType` [`shape`] and
  /// fails the launch when the export returns another shape.
  FALCON_HAL_ARGUMENT_RESULT,
};

/// The most dimensions of a tensor argument, and arguments of a launch.
inline constexpr int32_t kHALMaxRank = 8;
inline constexpr size_t kHALMaxArguments = 16;

struct falcon_hal_argument_t {
  falcon_hal_argument_kind_t kind;
  /// For messages ("logits"); may be NULL.
  const char *name;
  int64_t value;
  falcon_hal_buffer_ref_t buffer;
  falcon_hal_element_type_t elementType;
  int32_t rank;
  int64_t shape[kHALMaxRank];
};

/// One launch: an export of a loaded executable and its arguments, in the
/// export's parameter order.
struct falcon_hal_launch_params_t {
  falcon_hal_executable_t *executable;
  uint32_t exportOrdinal;
  const falcon_hal_argument_t *arguments;
  size_t argumentCount;
};

//===----------------------------------------------------------------------===//
// The device vtable
//===----------------------------------------------------------------------===//

struct falcon_hal_device_vtable_t {
  /// Frees the device; its buffers, executables, queues and events must be
  /// gone already.
  void (*destroy)(falcon_hal_device_t *device);

  // Allocator.

  /// Allocates `size` zero-filled bytes of `memoryType` (non-empty bit set),
  /// 64-byte aligned for the device.
  falcon_status_t (*allocateBuffer)(falcon_hal_device_t *device,
                                    falcon_hal_memory_type_t memoryType,
                                    uint64_t size,
                                    falcon_hal_buffer_t **outBuffer);
  /// Wraps host memory that outlives the buffer: no copy, no ownership. The
  /// buffer is HOST_LOCAL | HOST_VISIBLE; a GPU backend registers (pins) the
  /// memory or answers UNIMPLEMENTED, and the caller then copies instead.
  falcon_status_t (*wrapHostMemory)(falcon_hal_device_t *device, void *data,
                                    uint64_t size,
                                    falcon_hal_buffer_t **outBuffer);
  /// Frees a buffer (unmapping it first); NULL is ignored. No queued work may
  /// still use it.
  void (*freeBuffer)(falcon_hal_device_t *device, falcon_hal_buffer_t *buffer);
  /// Maps bytes [offset, offset + length) of a HOST_VISIBLE buffer for the
  /// host. One mapping per buffer at a time; the queue must not use the
  /// buffer while it is mapped.
  falcon_status_t (*mapBuffer)(falcon_hal_device_t *device,
                               falcon_hal_buffer_t *buffer, uint64_t offset,
                               uint64_t length,
                               falcon_hal_memory_access_t access,
                               void **outData);
  falcon_status_t (*unmapBuffer)(falcon_hal_device_t *device,
                                 falcon_hal_buffer_t *buffer);
  falcon_status_t (*queryAllocatorStatistics)(
      falcon_hal_device_t *device,
      falcon_hal_allocator_statistics_t *outStatistics);
  /// Caps the workspace the executables may hold through the import table;
  /// 0 removes the cap. Allocations past it fail (alloc returns NULL).
  falcon_status_t (*setWorkspaceLimit)(falcon_hal_device_t *device,
                                       uint64_t limitBytes);

  // Executables.

  falcon_status_t (*loadExecutable)(
      falcon_hal_device_t *device, const falcon_hal_executable_params_t *params,
      falcon_hal_executable_t **outExecutable);
  /// Unloads an executable; NULL is ignored. No queued work may still use it.
  void (*unloadExecutable)(falcon_hal_device_t *device,
                           falcon_hal_executable_t *executable);
  /// The ordinal of the export `name` (its index in the load's exportNames);
  /// NOT_FOUND for a name that was not resolved at load.
  falcon_status_t (*lookupExport)(falcon_hal_device_t *device,
                                  falcon_hal_executable_t *executable,
                                  const char *name, uint32_t *outOrdinal);
  /// Copies `count` values of the int64 array `name` that the executable
  /// exports (the geometry it was compiled for); NOT_FOUND when it has none.
  falcon_status_t (*readExecutableConstants)(
      falcon_hal_device_t *device, falcon_hal_executable_t *executable,
      const char *name, int64_t *out, size_t count);

  // Queues.

  falcon_status_t (*createQueue)(falcon_hal_device_t *device,
                                 falcon_hal_queue_t **outQueue);
  /// Destroys a queue after finishing its work; NULL is ignored.
  void (*destroyQueue)(falcon_hal_device_t *device, falcon_hal_queue_t *queue);
  /// Runs an export. The compiled code cannot report errors, so the caller
  /// validates what the device cannot see (token ids in range, cache rows);
  /// the device checks the arguments against the buffers. A result of the
  /// wrong shape fails the work (reported by finish); the buffers the export
  /// wrote are then undefined.
  falcon_status_t (*launch)(falcon_hal_queue_t *queue,
                            const falcon_hal_launch_params_t *params);
  /// Copies `length` bytes between buffers of this device; the ranges must
  /// not overlap.
  falcon_status_t (*copyBuffer)(falcon_hal_queue_t *queue,
                                falcon_hal_buffer_ref_t source,
                                falcon_hal_buffer_ref_t target,
                                uint64_t length);
  falcon_status_t (*copyHostToBuffer)(falcon_hal_queue_t *queue,
                                      const void *source,
                                      falcon_hal_buffer_ref_t target,
                                      uint64_t length);
  falcon_status_t (*copyBufferToHost)(falcon_hal_queue_t *queue,
                                      falcon_hal_buffer_ref_t source,
                                      void *target, uint64_t length);
  /// Repeats the 1, 2, 4 or 8-byte `pattern` over `length` bytes (a multiple
  /// of the pattern's length).
  falcon_status_t (*fillBuffer)(falcon_hal_queue_t *queue,
                                falcon_hal_buffer_ref_t target, uint64_t length,
                                const void *pattern, size_t patternLength);
  /// Signals `event` once the queue's work so far is done.
  falcon_status_t (*recordEvent)(falcon_hal_queue_t *queue,
                                 falcon_hal_event_t *event);
  /// Makes the queue's later work wait for `event`, which must have been
  /// recorded (waiting for an event nothing will signal would hang).
  falcon_status_t (*waitEvent)(falcon_hal_queue_t *queue,
                               falcon_hal_event_t *event);
  /// Blocks until the queue's work is done; returns the first failure of
  /// that work since the last finish, after which the queue accepts work
  /// again (a backend whose failures poison the device keeps failing).
  falcon_status_t (*finish)(falcon_hal_queue_t *queue);

  // Events.

  falcon_status_t (*createEvent)(falcon_hal_device_t *device,
                                 falcon_hal_event_t **outEvent);
  void (*destroyEvent)(falcon_hal_device_t *device, falcon_hal_event_t *event);
  /// Whether the work before the event's last record is done; false for an
  /// event never recorded.
  falcon_status_t (*queryEvent)(falcon_hal_device_t *device,
                                falcon_hal_event_t *event, bool *outSignaled);
  /// Blocks the host until the event's last record is reached;
  /// FAILED_PRECONDITION for an event never recorded.
  falcon_status_t (*synchronizeEvent)(falcon_hal_device_t *device,
                                      falcon_hal_event_t *event);

  // Collectives.

  /// The channel the executables' own collectives (the import table's
  /// all-reduce: falcon.all_reduce in the compiled code) run on: the
  /// tensor-parallel group of this rank's stage. NULL (the default): a world
  /// of one rank. The channel must outlive the executables' calls.
  falcon_status_t (*setExecutableChannel)(falcon_hal_device_t *device,
                                          struct falcon_comm_channel_t *channel);
};

/// The common header of every device; backends embed it first.
struct falcon_hal_device_t {
  const falcon_hal_device_vtable_t *vtable;
  const char *name;
};

namespace falcon::runtime::hal {

/// The device names this build has, in a fixed order ("cpu" first). A name
/// listed here may still answer UNAVAILABLE at creation (no driver or GPU).
llvm::ArrayRef<const char *> getDeviceNames();

/// Creates the device `params->name`. Unknown or unavailable devices are an
/// UNAVAILABLE status.
falcon_status_t createDevice(const falcon_hal_device_params_t &params,
                             falcon_hal_device_t **outDevice);

/// Bytes per element of `type`, and its name ("f32").
size_t getElementTypeSize(falcon_hal_element_type_t type);
const char *getElementTypeName(falcon_hal_element_type_t type);

inline void destroyDevice(falcon_hal_device_t *device) {
  if (device)
    device->vtable->destroy(device);
}

inline void freeBuffer(falcon_hal_buffer_t *buffer) {
  if (buffer)
    buffer->device->vtable->freeBuffer(buffer->device, buffer);
}

/// Runs `use` on `bytes` of host memory at `data` wrapped as a buffer of
/// `device` (the operand of a channel operation, say), then frees the
/// wrapper; `use`'s status, or the wrap's.
falcon_status_t
withHostBuffer(falcon_hal_device_t *device, void *data, uint64_t bytes,
               llvm::function_ref<falcon_status_t(falcon_hal_buffer_ref_t)> use);

/// A tensor argument of a launch: `elementType` [`shape`] at `buffer`.
falcon_hal_argument_t makeBufferArgument(falcon_hal_argument_kind_t kind,
                                         const char *name,
                                         falcon_hal_buffer_ref_t buffer,
                                         falcon_hal_element_type_t elementType,
                                         llvm::ArrayRef<int64_t> shape);
falcon_hal_argument_t makeInt64Argument(const char *name, int64_t value);

} // namespace falcon::runtime::hal

#endif // FALCON_RUNTIME_HAL_DEVICE_H
