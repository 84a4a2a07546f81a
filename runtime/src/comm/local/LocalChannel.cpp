//===- LocalChannel.cpp - the single-process channel ------------*- C++ -*-===//
//
// The data moves through the queue's own copies, so the operands may be
// device memory that the host cannot address.
//
//===----------------------------------------------------------------------===//

#include "comm/local/LocalChannel.h"

#include "core/Status.h"

#include <deque>
#include <mutex>
#include <new>

using namespace falcon::runtime;
using namespace falcon::runtime::comm;

namespace {

/// A sent message waiting for its recv: a private copy of the data, since
/// the sender may reuse its buffer once send returns.
struct Message {
  falcon_hal_buffer_t *buffer;
  int64_t count;
  falcon_hal_element_type_t elementType;
};

struct LocalChannel : falcon_comm_channel_t {
  std::mutex mutex;
  std::deque<Message> mailbox;
};

LocalChannel *cast(falcon_comm_channel_t *channel) {
  return static_cast<LocalChannel *>(channel);
}

void destroy(falcon_comm_channel_t *channel) {
  for (const Message &message : cast(channel)->mailbox)
    hal::freeBuffer(message.buffer);
  delete cast(channel);
}

/// The byte size of `count` elements of `elementType`, after the checks
/// every operation makes.
falcon_status_t getQueuedByteCount(const char *operation, falcon_hal_queue_t *queue,
                                   int64_t count, falcon_hal_element_type_t elementType,
                                   uint64_t &outBytes) {
  if (!queue)
    return makeNullArgumentStatus(operation, "queue");
  return getByteCount(operation, count, elementType, outBytes);
}

/// An operand that no copy will touch still has to be valid.
falcon_status_t checkOperand(const char *operation,
                             falcon_hal_buffer_ref_t operand, uint64_t bytes) {
  if (!operand.buffer)
    return makeNullArgumentStatus(operation, "buffer");
  uint64_t end = 0;
  if (__builtin_add_overflow(operand.offset, bytes, &end) ||
      end > operand.buffer->size)
    return makeStatus(FALCON_STATUS_OUT_OF_RANGE,
                      llvm::Twine(operation) + ": " + llvm::Twine(bytes) +
                          " bytes at offset " + llvm::Twine(operand.offset) +
                          " are outside the buffer of " +
                          llvm::Twine(operand.buffer->size) + " bytes");
  return nullptr;
}

/// source to target on `queue`, or nothing when they are the same bytes.
falcon_status_t copyUnlessInPlace(const char *operation,
                                  falcon_hal_queue_t *queue,
                                  falcon_hal_buffer_ref_t source,
                                  falcon_hal_buffer_ref_t target,
                                  uint64_t bytes) {
  if (source.buffer == target.buffer && source.offset == target.offset)
    return checkOperand(operation, source, bytes);
  return queue->device->vtable->copyBuffer(queue, source, target, bytes);
}

falcon_status_t allReduce(falcon_comm_channel_t *, falcon_hal_queue_t *queue,
                          falcon_hal_buffer_ref_t source,
                          falcon_hal_buffer_ref_t target, int64_t count,
                          falcon_hal_element_type_t elementType,
                          falcon_comm_reduction_t reduction) {
  const char *operation = "allReduce";
  uint64_t bytes = 0;
  FALCON_RETURN_IF_ERROR(
      getQueuedByteCount(operation, queue, count, elementType, bytes));
  FALCON_RETURN_IF_ERROR(checkReducibleType(operation, elementType));
  if (reduction != FALCON_COMM_REDUCTION_SUM)
    return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                      "allReduce: unknown reduction " +
                          llvm::Twine(uint32_t(reduction)));
  // The sum over one rank is that rank's data.
  return copyUnlessInPlace(operation, queue, source, target, bytes);
}

falcon_status_t allGather(falcon_comm_channel_t *, falcon_hal_queue_t *queue,
                          falcon_hal_buffer_ref_t source,
                          falcon_hal_buffer_ref_t target, int64_t count,
                          falcon_hal_element_type_t elementType) {
  uint64_t bytes = 0;
  FALCON_RETURN_IF_ERROR(
      getQueuedByteCount("allGather", queue, count, elementType, bytes));
  // Rank 0's part is the whole result.
  return copyUnlessInPlace("allGather", queue, source, target, bytes);
}

falcon_status_t broadcast(falcon_comm_channel_t *channel,
                          falcon_hal_queue_t *queue,
                          falcon_hal_buffer_ref_t buffer, int64_t count,
                          falcon_hal_element_type_t elementType, int32_t root) {
  uint64_t bytes = 0;
  FALCON_RETURN_IF_ERROR(
      getQueuedByteCount("broadcast", queue, count, elementType, bytes));
  FALCON_RETURN_IF_ERROR(checkRank(channel, "broadcast", "root", root));
  // The root is this rank: its buffer already holds the data.
  return checkOperand("broadcast", buffer, bytes);
}

falcon_status_t send(falcon_comm_channel_t *channel, falcon_hal_queue_t *queue,
                     falcon_hal_buffer_ref_t source, int64_t count,
                     falcon_hal_element_type_t elementType, int32_t peer) {
  uint64_t bytes = 0;
  FALCON_RETURN_IF_ERROR(
      getQueuedByteCount("send", queue, count, elementType, bytes));
  FALCON_RETURN_IF_ERROR(checkRank(channel, "send", "peer", peer));
  falcon_hal_device_t *device = queue->device;
  falcon_hal_buffer_t *copy = nullptr;
  FALCON_RETURN_IF_ERROR(device->vtable->allocateBuffer(
      device, FALCON_HAL_MEMORY_TYPE_DEVICE_LOCAL, bytes, &copy));
  if (falcon_status_t status =
          device->vtable->copyBuffer(queue, source, {copy, 0}, bytes)) {
    hal::freeBuffer(copy);
    return status;
  }
  LocalChannel *local = cast(channel);
  std::lock_guard<std::mutex> lock(local->mutex);
  local->mailbox.push_back({copy, count, elementType});
  return nullptr;
}

falcon_status_t recv(falcon_comm_channel_t *channel, falcon_hal_queue_t *queue,
                     falcon_hal_buffer_ref_t target, int64_t count,
                     falcon_hal_element_type_t elementType, int32_t peer) {
  uint64_t bytes = 0;
  FALCON_RETURN_IF_ERROR(
      getQueuedByteCount("recv", queue, count, elementType, bytes));
  FALCON_RETURN_IF_ERROR(checkRank(channel, "recv", "peer", peer));
  LocalChannel *local = cast(channel);
  std::lock_guard<std::mutex> lock(local->mutex);
  if (local->mailbox.empty())
    return makeStatus(FALCON_STATUS_FAILED_PRECONDITION,
                      "recv: no message from rank " + llvm::Twine(peer) +
                          " is pending, and in a single process nothing "
                          "could send one while recv waits");
  const Message &message = local->mailbox.front();
  if (message.count != count || message.elementType != elementType)
    return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                      "recv: expects " + llvm::Twine(count) + " " +
                          hal::getElementTypeName(elementType) +
                          " but the pending message holds " +
                          llvm::Twine(message.count) + " " +
                          hal::getElementTypeName(message.elementType));
  falcon_hal_device_t *device = queue->device;
  FALCON_RETURN_IF_ERROR(
      device->vtable->copyBuffer(queue, {message.buffer, 0}, target, bytes));
  // The copy has to be done before its source goes away.
  falcon_status_t status = device->vtable->finish(queue);
  hal::freeBuffer(message.buffer);
  local->mailbox.pop_front();
  return status;
}

falcon_status_t barrier(falcon_comm_channel_t *, falcon_hal_queue_t *queue) {
  if (!queue)
    return makeNullArgumentStatus("barrier", "queue");
  // The only rank has arrived.
  return nullptr;
}

const falcon_comm_channel_vtable_t localChannelVtable = {
    destroy, allReduce, allGather, broadcast, send, recv, barrier,
};

} // namespace

falcon_status_t falcon::runtime::comm::local::createLocalChannel(
    falcon_comm_channel_t **outChannel) {
  *outChannel = nullptr;
  auto *channel = new (std::nothrow) LocalChannel();
  if (!channel)
    return makeStatus(FALCON_STATUS_RESOURCE_EXHAUSTED,
                      "cannot allocate the local channel");
  channel->vtable = &localChannelVtable;
  channel->rank = 0;
  channel->worldSize = 1;
  *outChannel = channel;
  return nullptr;
}
