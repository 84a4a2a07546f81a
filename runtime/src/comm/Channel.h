//===- Channel.h - collective channels --------------------------*- C++ -*-===//
//
// A channel connects the `worldSize` ranks of one job (one process per rank,
// or one device per rank) for collective operations, after NCCL's
// communicator: every operation names the queue it is ordered on and HAL
// buffers as operands, so a device channel (NCCL, RCCL) enqueues the
// operation on that queue's stream, while a host channel (local, MPI) runs
// it after the queue's earlier work and completes it before returning.
//
// Backends: comm/local (one process, world size 1), later comm/mpi and the
// NCCL/RCCL channels next to the CUDA/HIP devices. Each implements the
// vtable below and is created by its own function; nothing else changes.
//
// All operations are collective except send/recv: every rank calls them in
// the same order with the same counts. Counts are elements of `elementType`;
// operands are (buffer, byte offset) pairs of the queue's device.
//
//===----------------------------------------------------------------------===//

#ifndef FALCON_RUNTIME_COMM_CHANNEL_H
#define FALCON_RUNTIME_COMM_CHANNEL_H

#include "hal/Device.h"

struct falcon_comm_channel_t;

enum falcon_comm_reduction_t : uint32_t {
  FALCON_COMM_REDUCTION_SUM,
};

struct falcon_comm_channel_vtable_t {
  /// Frees the channel; no operation may be pending on it.
  void (*destroy)(falcon_comm_channel_t *channel);
  /// target = reduce(source of every rank), `count` elements. Reductions
  /// support f32, bf16 and f16. source == target (same buffer and offset) is
  /// in place.
  falcon_status_t (*allReduce)(falcon_comm_channel_t *channel,
                               falcon_hal_queue_t *queue,
                               falcon_hal_buffer_ref_t source,
                               falcon_hal_buffer_ref_t target, int64_t count,
                               falcon_hal_element_type_t elementType,
                               falcon_comm_reduction_t reduction);
  /// target = the `count` elements of source of rank 0, then rank 1, ...
  /// (worldSize * count elements).
  falcon_status_t (*allGather)(falcon_comm_channel_t *channel,
                               falcon_hal_queue_t *queue,
                               falcon_hal_buffer_ref_t source,
                               falcon_hal_buffer_ref_t target, int64_t count,
                               falcon_hal_element_type_t elementType);
  /// Every rank's `buffer` gets the `count` elements of rank `root`'s.
  falcon_status_t (*broadcast)(falcon_comm_channel_t *channel,
                               falcon_hal_queue_t *queue,
                               falcon_hal_buffer_ref_t buffer, int64_t count,
                               falcon_hal_element_type_t elementType,
                               int32_t root);
  /// Sends `count` elements to rank `peer`, which receives them with a
  /// matching recv. The source may be reused once the call returns.
  falcon_status_t (*send)(falcon_comm_channel_t *channel,
                          falcon_hal_queue_t *queue,
                          falcon_hal_buffer_ref_t source, int64_t count,
                          falcon_hal_element_type_t elementType, int32_t peer);
  /// Receives `count` elements from rank `peer`'s matching send.
  falcon_status_t (*recv)(falcon_comm_channel_t *channel,
                          falcon_hal_queue_t *queue,
                          falcon_hal_buffer_ref_t target, int64_t count,
                          falcon_hal_element_type_t elementType, int32_t peer);
  /// Returns once every rank has reached the barrier (ordered on `queue`).
  falcon_status_t (*barrier)(falcon_comm_channel_t *channel,
                             falcon_hal_queue_t *queue);
};

/// The common header of every channel; backends embed it first.
struct falcon_comm_channel_t {
  const falcon_comm_channel_vtable_t *vtable;
  /// This process's rank, in [0, worldSize).
  int32_t rank;
  int32_t worldSize;
};

namespace falcon::runtime::comm {

inline void destroyChannel(falcon_comm_channel_t *channel) {
  if (channel)
    channel->vtable->destroy(channel);
}

/// The checks every backend makes before an operation: non-negative count,
/// an element type the operation supports, `rank` in [0, worldSize).
/// `operation` and `what` ("peer", "root") name them in messages.
falcon_status_t checkCount(const char *operation, int64_t count);
/// checkCount, then the bytes of `count` elements of `elementType` (an
/// error for a type without a size, or on overflow).
falcon_status_t getByteCount(const char *operation, int64_t count,
                             falcon_hal_element_type_t elementType, uint64_t &outBytes);
falcon_status_t checkReducibleType(const char *operation,
                                   falcon_hal_element_type_t elementType);
falcon_status_t checkRank(const falcon_comm_channel_t *channel,
                          const char *operation, const char *what,
                          int32_t rank);

} // namespace falcon::runtime::comm

#endif // FALCON_RUNTIME_COMM_CHANNEL_H
