//===- CPUDevice.h - in-process CPU device ----------------------*- C++ -*-===//
//
// Runs the artifact's host library in this process: buffers are aligned host
// memory, the module is dlopen'ed and the entry point is called with MLIR's
// C-interface memref descriptors.
//
//===----------------------------------------------------------------------===//

#ifndef FALCON_RUNTIME_HAL_CPU_CPUDEVICE_H
#define FALCON_RUNTIME_HAL_CPU_CPUDEVICE_H

#include "hal/Device.h"

namespace falcon::runtime::hal::cpu {

falcon_status_t createCPUDevice(falcon_hal_device_t **outDevice);

} // namespace falcon::runtime::hal::cpu

#endif // FALCON_RUNTIME_HAL_CPU_CPUDEVICE_H
