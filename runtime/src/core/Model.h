//===- Model.h - falcon_model_t ---------------------------------*- C++ -*-===//
//
// The opened artifact, shared by every session created from it.
//
//===----------------------------------------------------------------------===//

#ifndef FALCON_RUNTIME_CORE_MODEL_H
#define FALCON_RUNTIME_CORE_MODEL_H

#include "core/Manifest.h"
#include "core/WeightStore.h"
#include "comm/Channel.h"
#include "hal/Device.h"

#include <atomic>
#include <memory>
#include <string>

struct falcon_model_t {
  std::atomic<int64_t> referenceCount{1};
  std::string artifactDir;
  falcon::runtime::Manifest manifest;
  /// This process's rank in the manifest's plan (falcon_model_options_t).
  int64_t rankIndex = 0;
  /// Its entry in the plan: its host library, entry point and weights.
  const falcon::runtime::ManifestRank &rank() const { return manifest.ranks[rankIndex]; }
  std::unique_ptr<falcon::runtime::WeightStore> weights;
  /// How long mapping and verifying them took.
  double weightsOpenSeconds = 0;
  /// Created with falcon_model_options_t::device and num_threads.
  falcon_hal_device_t *device = nullptr;
  /// The mapped weights.bin as a device buffer (wraps, does not own).
  falcon_hal_buffer_t *weightsBuffer = nullptr;
  /// The host library, with the manifest's entry point resolved.
  falcon_hal_executable_t *executable = nullptr;
  uint32_t forwardOrdinal = 0;
  /// With more than one rank: every rank of the plan (send/recv between
  /// stages, the logits to rank 0, the next tokens), and this rank's
  /// stage's tensor-parallel group (the compiled code's all-reduces).
  falcon_comm_channel_t *worldChannel = nullptr;
  falcon_comm_channel_t *tensorChannel = nullptr;
  int64_t worldSize() const { return manifest.tensorParallel * manifest.pipelineParallel; }

  falcon_model_t() = default;
  falcon_model_t(const falcon_model_t &) = delete;
  falcon_model_t &operator=(const falcon_model_t &) = delete;
  /// Releases whatever was set up, in reverse order; also the cleanup of a
  /// half-opened model.
  ~falcon_model_t();
};

#endif // FALCON_RUNTIME_CORE_MODEL_H
