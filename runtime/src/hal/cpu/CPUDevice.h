//===- CPUDevice.h - in-process CPU device ----------------------*- C++ -*-===//
//
// Runs the artifact's host library in this process: buffers are aligned host
// memory, executables are dlopen'ed shared libraries whose exports are called
// with MLIR's C-interface memref descriptors, and queues run their work on
// the calling thread, in order, before the enqueueing call returns.
//
//===----------------------------------------------------------------------===//

#ifndef FALCON_RUNTIME_HAL_CPU_CPUDEVICE_H
#define FALCON_RUNTIME_HAL_CPU_CPUDEVICE_H

#include "hal/Device.h"

namespace falcon::runtime::hal::cpu {

falcon_status_t createCPUDevice(const falcon_hal_device_params_t &params,
                                falcon_hal_device_t **outDevice);

} // namespace falcon::runtime::hal::cpu

#endif // FALCON_RUNTIME_HAL_CPU_CPUDEVICE_H
