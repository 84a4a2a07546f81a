//===- Device.cpp - device registry -----------------------------*- C++ -*-===//
//
// Maps a device name to the backend that implements it. Only the in-process
// CPU device is built here; GPU backends register themselves the same way
// once they exist.
//
//===----------------------------------------------------------------------===//

#include "hal/Device.h"

#include "core/Status.h"
#include "hal/cpu/CPUDevice.h"

#include "llvm/ADT/StringRef.h"

using namespace falcon::runtime;

falcon_status_t
falcon::runtime::hal::createDevice(const char *name,
                                   falcon_hal_device_t **outDevice) {
  *outDevice = nullptr;
  llvm::StringRef deviceName = name ? name : "cpu";
  if (deviceName == "cpu")
    return cpu::createCPUDevice(outDevice);
  return makeStatus(FALCON_STATUS_UNAVAILABLE,
                    "device '" + deviceName +
                        "' is not available in this build (available: cpu)");
}
