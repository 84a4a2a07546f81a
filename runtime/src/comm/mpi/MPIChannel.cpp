//===- MPIChannel.cpp - collectives over MPI --------------------*- C++ -*-===//
//
// Operands are HAL buffers: host-visible ones are mapped and handed to MPI
// as they are; others are staged through host memory with the queue's
// copies (the host staging of a device without a device channel). Counts go
// to MPI in chunks that fit its int counts.
//
//===----------------------------------------------------------------------===//

#include "comm/mpi/MPIChannel.h"

#include "core/Status.h"

#include "llvm/ADT/Twine.h"

#include <algorithm>
#include <climits>
#include <new>
#include <vector>

using namespace falcon::runtime;
using namespace falcon::runtime::comm;

namespace {

struct MPIChannel : falcon_comm_channel_t {
  MPI_Comm communicator = MPI_COMM_NULL;
};

MPIChannel *cast(falcon_comm_channel_t *channel) {
  return static_cast<MPIChannel *>(channel);
}

falcon_status_t mpiError(const char *operation, int code) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(code, text, &length);
  return makeStatus(FALCON_STATUS_UNAVAILABLE,
                    llvm::Twine("MPI ") + operation + " failed: " + text);
}

#define FALCON_MPI_RETURN_IF_ERROR(operation, expr)                            \
  do {                                                                         \
    if (int code_ = (expr); code_ != MPI_SUCCESS)                              \
      return mpiError(operation, code_);                                       \
  } while (0)

/// Host memory holding an operand's bytes for the duration of an operation.
class HostView {
public:
  HostView(falcon_hal_queue_t *queue, falcon_hal_buffer_ref_t ref, uint64_t bytes)
      : queue(queue), ref(ref), bytes(bytes) {}
  HostView(const HostView &) = delete;
  HostView &operator=(const HostView &) = delete;
  ~HostView() {
    if (mapped)
      ref.buffer->device->vtable->unmapBuffer(ref.buffer->device, ref.buffer);
  }

  /// The bytes, read from the operand when `read`.
  falcon_status_t open(const char *operation, bool read, void **out) {
    if (!ref.buffer)
      return makeNullArgumentStatus(operation, "buffer");
    uint64_t end = 0;
    if (__builtin_add_overflow(ref.offset, bytes, &end) || end > ref.buffer->size)
      return makeStatus(FALCON_STATUS_OUT_OF_RANGE,
                        llvm::Twine(operation) + ": " + llvm::Twine(bytes) +
                            " bytes at offset " + llvm::Twine(ref.offset) +
                            " are outside the buffer of " + llvm::Twine(ref.buffer->size) +
                            " bytes");
    falcon_hal_device_t *device = ref.buffer->device;
    if (ref.buffer->memoryType & FALCON_HAL_MEMORY_TYPE_HOST_VISIBLE) {
      if (queue)
        FALCON_RETURN_IF_ERROR(device->vtable->finish(queue));
      if (bytes == 0) {
        *out = nullptr;
        return nullptr;
      }
      FALCON_RETURN_IF_ERROR(device->vtable->mapBuffer(
          device, ref.buffer, ref.offset, bytes,
          FALCON_HAL_MEMORY_ACCESS_READ | FALCON_HAL_MEMORY_ACCESS_WRITE, out));
      mapped = true;
      return nullptr;
    }
    if (!queue)
      return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                        llvm::Twine(operation) +
                            ": a device-local operand needs a queue to stage it");
    staging.resize(bytes);
    *out = staging.data();
    if (read && bytes)
      FALCON_RETURN_IF_ERROR(
          device->vtable->copyBufferToHost(queue, ref, staging.data(), bytes));
    if (read)
      FALCON_RETURN_IF_ERROR(device->vtable->finish(queue));
    return nullptr;
  }

  /// Writes staged bytes back to the operand.
  falcon_status_t close() {
    if (mapped || staging.empty())
      return nullptr;
    falcon_hal_device_t *device = ref.buffer->device;
    FALCON_RETURN_IF_ERROR(
        device->vtable->copyHostToBuffer(queue, staging.data(), ref, bytes));
    return device->vtable->finish(queue);
  }

private:
  falcon_hal_queue_t *queue;
  falcon_hal_buffer_ref_t ref;
  uint64_t bytes;
  bool mapped = false;
  std::vector<uint8_t> staging;
};

/// Runs `call(offset, chunk)` over [0, total) in chunks MPI's int counts hold.
template <typename Call>
falcon_status_t inChunks(const char *operation, uint64_t total, uint64_t unit, Call call) {
  const uint64_t chunk = uint64_t(INT_MAX) / unit * unit;
  for (uint64_t offset = 0; offset < total; offset += chunk)
    FALCON_MPI_RETURN_IF_ERROR(operation, call(offset, std::min(chunk, total - offset)));
  return nullptr;
}

void destroy(falcon_comm_channel_t *channel) {
  if (cast(channel)->communicator != MPI_COMM_NULL)
    MPI_Comm_free(&cast(channel)->communicator);
  delete cast(channel);
}

falcon_status_t allReduce(falcon_comm_channel_t *channel, falcon_hal_queue_t *queue,
                          falcon_hal_buffer_ref_t source, falcon_hal_buffer_ref_t target,
                          int64_t count, falcon_hal_element_type_t elementType,
                          falcon_comm_reduction_t reduction) {
  const char *operation = "allReduce";
  uint64_t bytes = 0;
  FALCON_RETURN_IF_ERROR(getByteCount(operation, count, elementType, bytes));
  FALCON_RETURN_IF_ERROR(checkReducibleType(operation, elementType));
  if (elementType != FALCON_HAL_ELEMENT_TYPE_F32 || reduction != FALCON_COMM_REDUCTION_SUM)
    return makeStatus(FALCON_STATUS_UNIMPLEMENTED,
                      "allReduce: the MPI channel sums f32 only (bf16/f16 reductions "
                      "need a device channel)");
  bool inPlace = source.buffer == target.buffer && source.offset == target.offset;
  void *in = nullptr, *out = nullptr;
  HostView sourceView(queue, source, bytes), targetView(queue, target, bytes);
  if (!inPlace)
    FALCON_RETURN_IF_ERROR(sourceView.open(operation, /*read=*/true, &in));
  FALCON_RETURN_IF_ERROR(targetView.open(operation, /*read=*/inPlace, &out));
  // The sum is taken in double: the f32 partials of a few ranks add up
  // (almost always) exactly, so every rank gets the same bits whatever order
  // MPI's algorithm adds them in, and the reduction adds no rounding of its
  // own beyond the one back to f32. In chunks, to bound the staging.
  constexpr int64_t kChunk = 1 << 20;
  std::vector<double> sums(size_t(std::min<int64_t>(count, kChunk)));
  const float *from = static_cast<const float *>(inPlace ? out : in);
  float *to = static_cast<float *>(out);
  for (int64_t first = 0; first < count; first += kChunk) {
    int64_t chunk = std::min<int64_t>(kChunk, count - first);
    for (int64_t i = 0; i < chunk; ++i)
      sums[size_t(i)] = double(from[first + i]);
    FALCON_MPI_RETURN_IF_ERROR("MPI_Allreduce",
                               MPI_Allreduce(MPI_IN_PLACE, sums.data(), int(chunk), MPI_DOUBLE,
                                             MPI_SUM, cast(channel)->communicator));
    for (int64_t i = 0; i < chunk; ++i)
      to[first + i] = float(sums[size_t(i)]);
  }
  return targetView.close();
}

falcon_status_t allGather(falcon_comm_channel_t *channel, falcon_hal_queue_t *queue,
                          falcon_hal_buffer_ref_t source, falcon_hal_buffer_ref_t target,
                          int64_t count, falcon_hal_element_type_t elementType) {
  const char *operation = "allGather";
  uint64_t bytes = 0, total = 0;
  FALCON_RETURN_IF_ERROR(getByteCount(operation, count, elementType, bytes));
  if (bytes > uint64_t(INT_MAX) ||
      __builtin_mul_overflow(bytes, uint64_t(channel->worldSize), &total))
    return makeStatus(FALCON_STATUS_OUT_OF_RANGE,
                      "allGather: " + llvm::Twine(bytes) + " bytes per rank are too many");
  HostView sourceView(queue, source, bytes), targetView(queue, target, total);
  void *in = nullptr, *out = nullptr;
  FALCON_RETURN_IF_ERROR(sourceView.open(operation, /*read=*/true, &in));
  FALCON_RETURN_IF_ERROR(targetView.open(operation, /*read=*/false, &out));
  FALCON_MPI_RETURN_IF_ERROR("MPI_Allgather",
                             MPI_Allgather(in, int(bytes), MPI_BYTE, out, int(bytes),
                                           MPI_BYTE, cast(channel)->communicator));
  return targetView.close();
}

falcon_status_t broadcast(falcon_comm_channel_t *channel, falcon_hal_queue_t *queue,
                          falcon_hal_buffer_ref_t buffer, int64_t count,
                          falcon_hal_element_type_t elementType, int32_t root) {
  const char *operation = "broadcast";
  uint64_t bytes = 0;
  FALCON_RETURN_IF_ERROR(getByteCount(operation, count, elementType, bytes));
  FALCON_RETURN_IF_ERROR(checkRank(channel, operation, "root", root));
  HostView view(queue, buffer, bytes);
  void *data = nullptr;
  FALCON_RETURN_IF_ERROR(view.open(operation, /*read=*/channel->rank == root, &data));
  FALCON_RETURN_IF_ERROR(inChunks("MPI_Bcast", bytes, 1, [&](uint64_t offset, uint64_t chunk) {
    return MPI_Bcast(static_cast<char *>(data) + offset, int(chunk), MPI_BYTE, root,
                     cast(channel)->communicator);
  }));
  return view.close();
}

falcon_status_t send(falcon_comm_channel_t *channel, falcon_hal_queue_t *queue,
                     falcon_hal_buffer_ref_t source, int64_t count,
                     falcon_hal_element_type_t elementType, int32_t peer) {
  const char *operation = "send";
  uint64_t bytes = 0;
  FALCON_RETURN_IF_ERROR(getByteCount(operation, count, elementType, bytes));
  FALCON_RETURN_IF_ERROR(checkRank(channel, operation, "peer", peer));
  HostView view(queue, source, bytes);
  void *data = nullptr;
  FALCON_RETURN_IF_ERROR(view.open(operation, /*read=*/true, &data));
  return inChunks("MPI_Send", bytes, 1, [&](uint64_t offset, uint64_t chunk) {
    return MPI_Send(static_cast<char *>(data) + offset, int(chunk), MPI_BYTE, peer,
                    /*tag=*/0, cast(channel)->communicator);
  });
}

falcon_status_t recv(falcon_comm_channel_t *channel, falcon_hal_queue_t *queue,
                     falcon_hal_buffer_ref_t target, int64_t count,
                     falcon_hal_element_type_t elementType, int32_t peer) {
  const char *operation = "recv";
  uint64_t bytes = 0;
  FALCON_RETURN_IF_ERROR(getByteCount(operation, count, elementType, bytes));
  FALCON_RETURN_IF_ERROR(checkRank(channel, operation, "peer", peer));
  HostView view(queue, target, bytes);
  void *data = nullptr;
  FALCON_RETURN_IF_ERROR(view.open(operation, /*read=*/false, &data));
  FALCON_RETURN_IF_ERROR(inChunks("MPI_Recv", bytes, 1, [&](uint64_t offset, uint64_t chunk) {
    return MPI_Recv(static_cast<char *>(data) + offset, int(chunk), MPI_BYTE, peer,
                    /*tag=*/0, cast(channel)->communicator, MPI_STATUS_IGNORE);
  }));
  return view.close();
}

falcon_status_t barrier(falcon_comm_channel_t *channel, falcon_hal_queue_t *queue) {
  if (queue)
    FALCON_RETURN_IF_ERROR(queue->device->vtable->finish(queue));
  FALCON_MPI_RETURN_IF_ERROR("MPI_Barrier", MPI_Barrier(cast(channel)->communicator));
  return nullptr;
}

const falcon_comm_channel_vtable_t mpiChannelVtable = {
    destroy, allReduce, allGather, broadcast, send, recv, barrier,
};

} // namespace

falcon_status_t falcon::runtime::comm::mpi::ensureInitialized() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized)
    return nullptr;
  int provided = 0;
  FALCON_MPI_RETURN_IF_ERROR("MPI_Init_thread",
                             MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided));
  return nullptr;
}

falcon_status_t falcon::runtime::comm::mpi::createMPIChannel(MPI_Comm communicator,
                                                             falcon_comm_channel_t **outChannel) {
  *outChannel = nullptr;
  auto *channel = new (std::nothrow) MPIChannel();
  if (!channel)
    return makeStatus(FALCON_STATUS_RESOURCE_EXHAUSTED, "cannot allocate the MPI channel");
  channel->vtable = &mpiChannelVtable;
  if (int code = MPI_Comm_dup(communicator, &channel->communicator); code != MPI_SUCCESS) {
    delete channel;
    return mpiError("MPI_Comm_dup", code);
  }
  // Errors come back as codes (and become statuses) instead of aborting.
  MPI_Comm_set_errhandler(channel->communicator, MPI_ERRORS_RETURN);
  int rank = 0, size = 0;
  MPI_Comm_rank(channel->communicator, &rank);
  MPI_Comm_size(channel->communicator, &size);
  channel->rank = rank;
  channel->worldSize = size;
  *outChannel = channel;
  return nullptr;
}

falcon_status_t falcon::runtime::comm::mpi::splitMPIChannel(falcon_comm_channel_t *channel,
                                                            int color, int key,
                                                            falcon_comm_channel_t **outChannel) {
  *outChannel = nullptr;
  MPI_Comm split = MPI_COMM_NULL;
  FALCON_MPI_RETURN_IF_ERROR("MPI_Comm_split",
                             MPI_Comm_split(cast(channel)->communicator, color, key, &split));
  falcon_status_t status = createMPIChannel(split, outChannel);
  MPI_Comm_free(&split);
  return status;
}
