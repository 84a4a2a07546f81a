//===- Channel.cpp - checks shared by every channel -------------*- C++ -*-===//

#include "comm/Channel.h"

#include "core/Status.h"

using namespace falcon::runtime;

falcon_status_t falcon::runtime::comm::checkCount(const char *operation,
                                                  int64_t count) {
  if (count < 0)
    return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                      llvm::Twine(operation) +
                          ": count must not be negative, found " +
                          llvm::Twine(count));
  return nullptr;
}

falcon_status_t falcon::runtime::comm::getByteCount(const char *operation, int64_t count,
                                                    falcon_hal_element_type_t elementType,
                                                    uint64_t &outBytes) {
  FALCON_RETURN_IF_ERROR(checkCount(operation, count));
  size_t elementSize = hal::getElementTypeSize(elementType);
  if (elementSize == 0 ||
      __builtin_mul_overflow(uint64_t(count), uint64_t(elementSize), &outBytes))
    return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                      llvm::Twine(operation) + ": " + llvm::Twine(count) +
                          " elements of type " + hal::getElementTypeName(elementType) +
                          " have no byte size");
  return nullptr;
}

falcon_status_t falcon::runtime::comm::checkReducibleType(
    const char *operation, falcon_hal_element_type_t elementType) {
  switch (elementType) {
  case FALCON_HAL_ELEMENT_TYPE_F32:
  case FALCON_HAL_ELEMENT_TYPE_BF16:
  case FALCON_HAL_ELEMENT_TYPE_F16:
    return nullptr;
  default:
    return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                      llvm::Twine(operation) +
                          ": reductions support f32, bf16 and f16, found " +
                          hal::getElementTypeName(elementType));
  }
}

falcon_status_t
falcon::runtime::comm::checkRank(const falcon_comm_channel_t *channel,
                                 const char *operation, const char *what,
                                 int32_t rank) {
  if (rank < 0 || rank >= channel->worldSize)
    return makeStatus(FALCON_STATUS_OUT_OF_RANGE,
                      llvm::Twine(operation) + ": " + what + " rank " +
                          llvm::Twine(rank) +
                          " is out of range for world size " +
                          llvm::Twine(channel->worldSize));
  return nullptr;
}
