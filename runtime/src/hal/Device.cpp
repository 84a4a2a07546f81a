//===- Device.cpp - device registry -----------------------------*- C++ -*-===//
//
// Maps a device name to the backend that implements it. Only the in-process
// CPU device is built here; GPU backends register themselves the same way
// once they exist (their entry in getDeviceNames, their create function).
//
//===----------------------------------------------------------------------===//

#include "hal/Device.h"

#include "core/Status.h"
#include "hal/cpu/CPUDevice.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringRef.h"

using namespace falcon::runtime;

llvm::ArrayRef<const char *> falcon::runtime::hal::getDeviceNames() {
  static const char *const names[] = {"cpu"};
  return names;
}

falcon_status_t
falcon::runtime::hal::createDevice(const falcon_hal_device_params_t &params,
                                   falcon_hal_device_t **outDevice) {
  *outDevice = nullptr;
  llvm::StringRef deviceName = params.name ? params.name : "cpu";
  if (deviceName == "cpu")
    return cpu::createCPUDevice(params, outDevice);
  return makeStatus(FALCON_STATUS_UNAVAILABLE,
                    "device '" + deviceName +
                        "' is not available in this build (available: cpu)");
}

size_t
falcon::runtime::hal::getElementTypeSize(falcon_hal_element_type_t type) {
  switch (type) {
  case FALCON_HAL_ELEMENT_TYPE_F32:
  case FALCON_HAL_ELEMENT_TYPE_I32:
    return 4;
  case FALCON_HAL_ELEMENT_TYPE_F16:
  case FALCON_HAL_ELEMENT_TYPE_BF16:
    return 2;
  case FALCON_HAL_ELEMENT_TYPE_I64:
    return 8;
  case FALCON_HAL_ELEMENT_TYPE_U8:
    return 1;
  }
  // An out-of-range enum value from a caller: 0 makes every size check fail
  // loudly instead of computing with a guess.
  return 0;
}

const char *
falcon::runtime::hal::getElementTypeName(falcon_hal_element_type_t type) {
  switch (type) {
  case FALCON_HAL_ELEMENT_TYPE_F32:
    return "f32";
  case FALCON_HAL_ELEMENT_TYPE_F16:
    return "f16";
  case FALCON_HAL_ELEMENT_TYPE_BF16:
    return "bf16";
  case FALCON_HAL_ELEMENT_TYPE_I64:
    return "i64";
  case FALCON_HAL_ELEMENT_TYPE_I32:
    return "i32";
  case FALCON_HAL_ELEMENT_TYPE_U8:
    return "u8";
  }
  return "unknown";
}

falcon_hal_argument_t falcon::runtime::hal::makeBufferArgument(
    falcon_hal_argument_kind_t kind, const char *name,
    falcon_hal_buffer_ref_t buffer, falcon_hal_element_type_t elementType,
    llvm::ArrayRef<int64_t> shape) {
  falcon_hal_argument_t argument = {};
  argument.kind = kind;
  argument.name = name;
  argument.buffer = buffer;
  argument.elementType = elementType;
  // A rank past kHALMaxRank is kept as it is, for launch to refuse.
  argument.rank = int32_t(shape.size());
  llvm::copy(shape.take_front(kHALMaxRank), argument.shape);
  return argument;
}

falcon_hal_argument_t falcon::runtime::hal::makeInt64Argument(const char *name,
                                                              int64_t value) {
  falcon_hal_argument_t argument = {};
  argument.kind = FALCON_HAL_ARGUMENT_INT64;
  argument.name = name;
  argument.value = value;
  return argument;
}

falcon_status_t falcon::runtime::hal::withHostBuffer(
    falcon_hal_device_t *device, void *data, uint64_t bytes,
    llvm::function_ref<falcon_status_t(falcon_hal_buffer_ref_t)> use) {
  falcon_hal_buffer_t *wrapped = nullptr;
  if (falcon_status_t status = device->vtable->wrapHostMemory(device, data, bytes, &wrapped))
    return status;
  falcon_status_t status = use({wrapped, 0});
  freeBuffer(wrapped);
  return status;
}
