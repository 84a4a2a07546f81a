//===- Session.cpp - falcon_session_* ---------------------------*- C++ -*-===//
//
// A session owns a KV cache and the scratch buffers of one batch, and drives
// the compiled forward function: prefill, decode and the generation loop
// (rows of different lengths, sampling, stop tokens, a token callback). The
// only math here is choosing tokens (Sampler.h); everything else is the host
// library's.
//
// Every request is validated completely, and every buffer it needs is
// allocated, before the forward function runs: the compiled code cannot
// report errors, and an error must leave the session as it was.
//
//===----------------------------------------------------------------------===//

#include "core/Model.h"
#include "core/Sampler.h"
#include "core/Status.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/Twine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <new>
#include <numeric>
#include <string>
#include <vector>

using namespace falcon::runtime;

struct falcon_session_t {
  falcon_model_t *model = nullptr;
  int64_t batchSize = 0;
  int64_t capacity = 0;
  /// Tokens of each row in the cache: the past_lens of the next call. Rows
  /// differ after a batch of prompts of different lengths.
  std::vector<int64_t> rowLengths;
  /// Host-visible [batch] int64: rowLengths as the compiled code reads them.
  falcon_hal_buffer_t *pastLens = nullptr;
  /// Where this session's forward calls run: sessions of one model run
  /// concurrently.
  falcon_hal_queue_t *queue = nullptr;
  /// Device-local: only the compiled code touches the caches. One pair per
  /// micro-batch (a pipeline plan runs the rows of a batch in groups so
  /// that its stages overlap; each group has its own cache).
  std::vector<falcon_hal_buffer_t *> keyCaches, valueCaches;
  /// The rows of micro-batch m: [rowBegin[m], rowBegin[m + 1]).
  std::vector<int64_t> rowBegin;
  /// Time in the runtime's own collectives (send/recv between stages, the
  /// logits to rank 0, the tokens from it) over the session's life.
  double collectiveSeconds = 0;
  /// Scratch for input_ids, position_ids and logits, big enough for
  /// `scratchTokens` tokens per row; grown on demand, never shrunk. The ids
  /// are copied in by the queue, the positions (host-visible) written through
  /// a mapping, and the logits (host-visible) read through one.
  falcon_hal_buffer_t *inputIds = nullptr;
  falcon_hal_buffer_t *positionIds = nullptr;
  falcon_hal_buffer_t *logits = nullptr;
  /// Host-visible [batch, tokens] int64: the positions of each row whose
  /// logits the last stage computes (the entry point's logit_positions).
  falcon_hal_buffer_t *logitPositions = nullptr;
  /// A later pipeline stage's input: the previous stage's hidden states
  /// [batch, tokens, hidden] (host-visible: they arrive by recv).
  falcon_hal_buffer_t *hiddenIn = nullptr;
  int64_t scratchTokens = 0;
  /// The f16 precision guard (manifest "precision_guard"): host-visible
  /// uint8 [layers + 1], the entry point's precision_guard, and what the
  /// runtime writes into it before each call: 1 for the layers (and, last,
  /// the LM head) that run in bf16 since their f16 rounding overflowed.
  falcon_hal_buffer_t *precisionGuard = nullptr;
  std::vector<uint8_t> guardFallbacks;
  /// With several ranks: rank 0's logits of the last call, [batch, tokens,
  /// vocab], assembled from the last stage's vocabulary slices.
  std::vector<float> gatheredLogits;

  falcon_session_t() = default;
  falcon_session_t(const falcon_session_t &) = delete;
  falcon_session_t &operator=(const falcon_session_t &) = delete;
  ~falcon_session_t() {
    for (falcon_hal_buffer_t *buffer :
         {inputIds, positionIds, logits, logitPositions, hiddenIn, pastLens, precisionGuard})
      hal::freeBuffer(buffer);
    for (falcon_hal_buffer_t *buffer : keyCaches)
      hal::freeBuffer(buffer);
    for (falcon_hal_buffer_t *buffer : valueCaches)
      hal::freeBuffer(buffer);
    if (queue)
      queue->device->vtable->destroyQueue(queue->device, queue);
    falcon_model_release(model);
  }
};

namespace {

using Clock = std::chrono::steady_clock;

/// The longest row's length.
int64_t longestRow(const falcon_session_t *session) {
  return *std::max_element(session->rowLengths.begin(), session->rowLengths.end());
}

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// The product of non-negative `factors` in `out`; false on overflow.
bool checkedProduct(std::initializer_list<int64_t> factors, uint64_t &out) {
  uint64_t product = 1;
  for (int64_t factor : factors) {
    if (factor < 0 ||
        __builtin_mul_overflow(product, uint64_t(factor), &product))
      return false;
  }
  if (product > SIZE_MAX)
    return false;
  out = product;
  return true;
}

falcon_status_t checkBatchSize(const falcon_session_t *session,
                               const char *function, int64_t batchSize) {
  if (batchSize != session->batchSize)
    return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                      llvm::Twine(function) + ": batch size " +
                          llvm::Twine(batchSize) +
                          " does not match the session's batch size " +
                          llvm::Twine(session->batchSize));
  return nullptr;
}

/// Every id must be in [0, vocab_size): the compiled code indexes the
/// embedding table with it unchecked.
falcon_status_t checkTokenIds(const falcon_session_t *session,
                              const int64_t *tokenIds, int64_t batchSize,
                              int64_t sequenceLength) {
  int64_t vocabSize = session->model->manifest.vocabSize;
  for (int64_t row = 0; row < batchSize; ++row) {
    for (int64_t position = 0; position < sequenceLength; ++position) {
      int64_t id = tokenIds[row * sequenceLength + position];
      if (id >= 0 && id < vocabSize)
        continue;
      std::string where = "position " + std::to_string(position);
      if (batchSize != 1)
        where = "batch row " + std::to_string(row) + ", " + where;
      return makeStatus(FALCON_STATUS_OUT_OF_RANGE,
                        "token id " + llvm::Twine(id) + " at " + where +
                            " is out of range for vocab size " +
                            llvm::Twine(vocabSize));
    }
  }
  return nullptr;
}

/// Checks that a caller's output buffer holds `required` elements.
falcon_status_t checkOutputCapacity(const char *function, const char *what,
                                    size_t capacity, uint64_t required) {
  if (capacity < required)
    return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                      llvm::Twine(function) + ": " + what + " has room for " +
                          llvm::Twine(uint64_t(capacity)) +
                          " elements but the result has " +
                          llvm::Twine(required));
  return nullptr;
}

/// Makes the scratch buffers hold `sequenceLength` tokens per row. The old
/// buffers are replaced only once all new ones exist.
falcon_status_t ensureScratch(falcon_session_t *session,
                              int64_t sequenceLength) {
  if (sequenceLength <= session->scratchTokens)
    return nullptr;
  const falcon_model_t &model = *session->model;
  const ManifestRank &rank = model.rank();
  uint64_t tokenBytes = 0, outputBytes = 0, hiddenBytes = 0, gatheredCount = 0;
  if (!checkedProduct(
          {session->batchSize, sequenceLength, int64_t(sizeof(int64_t))},
          tokenBytes) ||
      !checkedProduct({session->batchSize, sequenceLength,
                       rank.outputFeatures(model.manifest.hiddenSize), int64_t(sizeof(float))},
                      outputBytes) ||
      !checkedProduct({session->batchSize, sequenceLength, model.manifest.hiddenSize,
                       int64_t(sizeof(float))},
                      hiddenBytes) ||
      !checkedProduct({session->batchSize, sequenceLength, model.manifest.vocabSize},
                      gatheredCount))
    return makeStatus(FALCON_STATUS_RESOURCE_EXHAUSTED,
                      "buffers for " + llvm::Twine(sequenceLength) +
                          " tokens per row overflow the address space");
  if (!rank.inputHidden)
    hiddenBytes = 0;
  falcon_hal_device_t *device = model.device;
  falcon_hal_buffer_t *buffers[5] = {nullptr, nullptr, nullptr, nullptr, nullptr};
  const uint64_t sizes[5] = {tokenBytes, tokenBytes, outputBytes, hiddenBytes, tokenBytes};
  constexpr falcon_hal_memory_type_t kHostVisible =
      FALCON_HAL_MEMORY_TYPE_HOST_LOCAL | FALCON_HAL_MEMORY_TYPE_HOST_VISIBLE;
  const falcon_hal_memory_type_t memoryTypes[5] = {
      FALCON_HAL_MEMORY_TYPE_DEVICE_LOCAL, kHostVisible, kHostVisible, kHostVisible,
      kHostVisible};
  for (int index = 0; index < 5; ++index) {
    if (sizes[index] == 0)
      continue;
    if (falcon_status_t status = device->vtable->allocateBuffer(
            device, memoryTypes[index], sizes[index], &buffers[index])) {
      for (falcon_hal_buffer_t *buffer : buffers)
        hal::freeBuffer(buffer);
      return status;
    }
  }
  // Rank 0 of several holds the assembled logits.
  if (model.worldSize() > 1 && model.rankIndex == 0) {
    try {
      session->gatheredLogits.resize(gatheredCount);
    } catch (const std::bad_alloc &) {
      for (falcon_hal_buffer_t *buffer : buffers)
        hal::freeBuffer(buffer);
      return makeStatus(FALCON_STATUS_RESOURCE_EXHAUSTED,
                        "cannot allocate the logits of " + llvm::Twine(sequenceLength) +
                            " tokens per row");
    }
  }
  hal::freeBuffer(session->inputIds);
  hal::freeBuffer(session->positionIds);
  hal::freeBuffer(session->logits);
  hal::freeBuffer(session->hiddenIn);
  hal::freeBuffer(session->logitPositions);
  session->inputIds = buffers[0];
  session->positionIds = buffers[1];
  session->logits = buffers[2];
  session->hiddenIn = buffers[3];
  session->logitPositions = buffers[4];
  session->scratchTokens = sequenceLength;
  return nullptr;
}

/// Moves the last stage's vocabulary slices of `count` tokens' logits to
/// rank 0, which assembles them in gatheredLogits.
falcon_status_t gatherLogits(falcon_session_t *session, int64_t count) {
  falcon_model_t &model = *session->model;
  const Manifest &manifest = model.manifest;
  falcon_comm_channel_t *world = model.worldChannel;
  const ManifestRank &self = model.rank();
  int64_t vocab = manifest.vocabSize;
  if (model.rankIndex != 0) {
    if (!self.isLastStage())
      return nullptr;
    return world->vtable->send(world, session->queue, {session->logits, 0},
                               count * self.vocabSize, FALCON_HAL_ELEMENT_TYPE_F32, 0);
  }
  falcon_hal_device_t *device = model.device;
  std::vector<float> slice;
  for (int64_t index = 0; index < model.worldSize(); ++index) {
    const ManifestRank &rank = manifest.ranks[index];
    if (!rank.isLastStage())
      continue;
    slice.resize(size_t(count * rank.vocabSize));
    if (index == 0) {
      FALCON_RETURN_IF_ERROR(device->vtable->copyBufferToHost(
          session->queue, {session->logits, 0}, slice.data(), slice.size() * sizeof(float)));
      FALCON_RETURN_IF_ERROR(device->vtable->finish(session->queue));
    } else {
      FALCON_RETURN_IF_ERROR(hal::withHostBuffer(
          device, slice.data(), slice.size() * sizeof(float), [&](falcon_hal_buffer_ref_t ref) {
            return world->vtable->recv(world, session->queue, ref, count * rank.vocabSize,
                                       FALCON_HAL_ELEMENT_TYPE_F32, int32_t(index));
          }));
    }
    for (int64_t token = 0; token < count; ++token)
      std::memcpy(session->gatheredLogits.data() + token * vocab + rank.vocabOffset,
                  slice.data() + token * rank.vocabSize, size_t(rank.vocabSize) * sizeof(float));
  }
  return nullptr;
}

/// Which positions of a forward call get logits: every one ([batch,
/// sequenceLength, vocab]), or each row's last real token ([batch, 1,
/// vocab]: all a prefill needs for the next token; the final LayerNorm and
/// the LM head then run on one row per batch row).
enum class LogitRows { All, Last };

/// After a forward call with the precision guard: the first entry whose f16
/// rounding overflowed (bit 1) is switched to bf16 in guardFallbacks and
/// `switched` set (the call must run again); none: `switched` stays false.
/// An entry that overflows in bf16 too is an error.
falcon_status_t checkPrecisionGuard(falcon_session_t *session, bool &switched) {
  falcon_hal_device_t *device = session->model->device;
  void *mapped = nullptr;
  const size_t entries = session->guardFallbacks.size();
  FALCON_RETURN_IF_ERROR(device->vtable->mapBuffer(device, session->precisionGuard, 0, entries,
                                                   FALCON_HAL_MEMORY_ACCESS_READ, &mapped));
  // A layer's overflow makes every later one's input non-finite: only the
  // first is known to overflow.
  const auto *states = static_cast<const uint8_t *>(mapped);
  const size_t index = size_t(
      std::find_if(states, states + entries, [](uint8_t state) { return (state & 2) != 0; }) -
      states);
  FALCON_RETURN_IF_ERROR(device->vtable->unmapBuffer(device, session->precisionGuard));
  switched = false;
  if (index == entries)
    return nullptr;
  std::string what = index + 1 == entries ? std::string("the LM head's inputs")
                                          : "layer " + std::to_string(index) + "'s activations";
  if (session->guardFallbacks[index])
    return makeStatus(FALCON_STATUS_DATA_LOSS,
                      "precision guard: " + what +
                          " are not finite even in bf16 (the weights or the input give "
                          "infinities or NaN)");
  session->guardFallbacks[index] = 1;
  switched = true;
  return nullptr;
}

/// Runs the forward function on validated `tokenIds` [batch, sequenceLength]
/// and advances the cache: row b by rowTokens[b] tokens (a row shorter than
/// sequenceLength is padded; its padding lands in cache rows that its next
/// tokens overwrite), or every row by sequenceLength when rowTokens is empty.
/// Row b's tokens sit at positions rowLengths[b] + s. The logits of the
/// positions `which` names are left in session->logits.
falcon_status_t runForward(falcon_session_t *session, const int64_t *tokenIds,
                           int64_t sequenceLength, LogitRows which,
                           llvm::ArrayRef<int64_t> rowTokens = {},
                           bool gatherLogitsToRankZero = true) {
  const Manifest &manifest = session->model->manifest;
  falcon_hal_device_t *device = session->model->device;
  const falcon_hal_device_vtable_t &vtable = *device->vtable;
  int64_t count = session->batchSize * sequenceLength;
  uint64_t tokenBytes = uint64_t(count) * sizeof(int64_t);
  FALCON_RETURN_IF_ERROR(vtable.copyHostToBuffer(
      session->queue, tokenIds, {session->inputIds, 0}, tokenBytes));
  void *mapped = nullptr;
  FALCON_RETURN_IF_ERROR(
      vtable.mapBuffer(device, session->positionIds, 0, tokenBytes,
                       FALCON_HAL_MEMORY_ACCESS_WRITE, &mapped));
  auto *positions = static_cast<int64_t *>(mapped);
  for (int64_t row = 0; row < session->batchSize; ++row)
    for (int64_t position = 0; position < sequenceLength; ++position)
      positions[row * sequenceLength + position] = session->rowLengths[row] + position;
  FALCON_RETURN_IF_ERROR(vtable.unmapBuffer(device, session->positionIds));
  uint64_t rowBytes = uint64_t(session->batchSize) * sizeof(int64_t);
  FALCON_RETURN_IF_ERROR(vtable.mapBuffer(device, session->pastLens, 0, rowBytes,
                                          FALCON_HAL_MEMORY_ACCESS_WRITE, &mapped));
  std::memcpy(mapped, session->rowLengths.data(), rowBytes);
  FALCON_RETURN_IF_ERROR(vtable.unmapBuffer(device, session->pastLens));
  const int64_t logitsPerRow = which == LogitRows::All ? sequenceLength : 1;
  FALCON_RETURN_IF_ERROR(vtable.mapBuffer(device, session->logitPositions, 0,
                                          rowBytes * uint64_t(logitsPerRow),
                                          FALCON_HAL_MEMORY_ACCESS_WRITE, &mapped));
  auto *logitPositions = static_cast<int64_t *>(mapped);
  for (int64_t row = 0; row < session->batchSize; ++row)
    for (int64_t index = 0; index < logitsPerRow; ++index)
      logitPositions[row * logitsPerRow + index] =
          which == LogitRows::All ? index
                                  : (rowTokens.empty() ? sequenceLength : rowTokens[row]) - 1;
  FALCON_RETURN_IF_ERROR(vtable.unmapBuffer(device, session->logitPositions));

  // The scratch buffers may be larger than this call; the arguments carry
  // the exact shape, and the prefix of a buffer is a dense row-major array of
  // that shape. The order is the entry point's (docs/artifact-format.md,
  // "Host ABI").
  falcon_model_t &model = *session->model;
  const ManifestRank &rank = model.rank();
  falcon_comm_channel_t *world = model.worldChannel;
  const int64_t tp = manifest.tensorParallel;
  // The caches hold the element type the code was compiled for (the
  // manifest's kv_cache.dtype, checked against the library's geometry).
  const falcon_hal_element_type_t cacheElement =
      manifest.cacheDType == "bf16"  ? FALCON_HAL_ELEMENT_TYPE_BF16
      : manifest.cacheDType == "f16" ? FALCON_HAL_ELEMENT_TYPE_F16
                                     : FALCON_HAL_ELEMENT_TYPE_F32;
  falcon_hal_buffer_t *weights = session->model->weightsBuffer;
  const int64_t outputFeatures = rank.outputFeatures(manifest.hiddenSize);
  const int64_t hidden = manifest.hiddenSize;
  // The last stage returns the logits of the chosen positions, the others
  // every position's hidden states.
  const int64_t outputsPerRow = rank.isLastStage() ? logitsPerRow : sequenceLength;
  // Micro-batch by micro-batch: a stage hands one group of rows on and
  // starts the next while the following stage works on the first.
  for (size_t micro = 0; micro + 1 < session->rowBegin.size(); ++micro) {
    const int64_t firstRow = session->rowBegin[micro];
    const int64_t rows = session->rowBegin[micro + 1] - firstRow;
    const int64_t microCount = rows * sequenceLength;
    const uint64_t firstToken = uint64_t(firstRow * sequenceLength);
    const int64_t tokenShape[] = {rows, sequenceLength};
    const int64_t rowShape[] = {rows};
    const int64_t cacheShape[] = {rank.numLayers, rows, rank.numKVHeads, session->capacity,
                                  manifest.cacheHeadDim};
    const int64_t outputShape[] = {rows, outputsPerRow, outputFeatures};
    const int64_t logitPositionShape[] = {rows, logitsPerRow};
    const int64_t hiddenShape[] = {rows, sequenceLength, hidden};
    const falcon_hal_buffer_ref_t hiddenIn = {session->hiddenIn,
                                              firstToken * hidden * sizeof(float)};
    const falcon_hal_buffer_ref_t output = {
        session->logits, uint64_t(firstRow * outputsPerRow * outputFeatures) * sizeof(float)};
    // A later stage starts from the previous stage's hidden states (the
    // same tensor slot of the stage before).
    if (rank.inputHidden) {
      Clock::time_point start = Clock::now();
      FALCON_RETURN_IF_ERROR(world->vtable->recv(world, session->queue, hiddenIn,
                                                 microCount * hidden,
                                                 FALCON_HAL_ELEMENT_TYPE_F32,
                                                 int32_t(model.rankIndex - tp)));
      session->collectiveSeconds += secondsSince(start);
    }
    // The scratch buffers may be larger than this call; the arguments
    // carry the exact shape, and a buffer's range is a dense row-major
    // array of that shape. The order is the entry point's
    // (docs/artifact-format.md, "Host ABI").
    std::vector<falcon_hal_argument_t> arguments = {
        hal::makeBufferArgument(FALCON_HAL_ARGUMENT_RESULT, "logits", output,
                                FALCON_HAL_ELEMENT_TYPE_F32, outputShape),
        rank.inputHidden
            ? hal::makeBufferArgument(FALCON_HAL_ARGUMENT_BUFFER, "hidden_in", hiddenIn,
                                      FALCON_HAL_ELEMENT_TYPE_F32, hiddenShape)
            : hal::makeBufferArgument(FALCON_HAL_ARGUMENT_BUFFER, "input_ids",
                                      {session->inputIds, firstToken * sizeof(int64_t)},
                                      FALCON_HAL_ELEMENT_TYPE_I64, tokenShape),
        hal::makeBufferArgument(FALCON_HAL_ARGUMENT_BUFFER, "position_ids",
                                {session->positionIds, firstToken * sizeof(int64_t)},
                                FALCON_HAL_ELEMENT_TYPE_I64, tokenShape),
        hal::makeBufferArgument(FALCON_HAL_ARGUMENT_BUFFER, "past_lens",
                                {session->pastLens, uint64_t(firstRow) * sizeof(int64_t)},
                                FALCON_HAL_ELEMENT_TYPE_I64, rowShape),
        hal::makeBufferArgument(FALCON_HAL_ARGUMENT_BUFFER, "key_cache",
                                {session->keyCaches[micro], 0}, cacheElement, cacheShape),
        hal::makeBufferArgument(FALCON_HAL_ARGUMENT_BUFFER, "value_cache",
                                {session->valueCaches[micro], 0}, cacheElement, cacheShape),
        hal::makeBufferArgument(
            FALCON_HAL_ARGUMENT_BUFFER, "logit_positions",
            {session->logitPositions, uint64_t(firstRow * logitsPerRow) * sizeof(int64_t)},
            FALCON_HAL_ELEMENT_TYPE_I64, logitPositionShape),
    };
    const int64_t guardShape[] = {int64_t(session->guardFallbacks.size())};
    if (session->precisionGuard)
      arguments.push_back(hal::makeBufferArgument(FALCON_HAL_ARGUMENT_BUFFER, "precision_guard",
                                                  {session->precisionGuard, 0},
                                                  FALCON_HAL_ELEMENT_TYPE_U8, guardShape));
    arguments.push_back(hal::makeBufferArgument(FALCON_HAL_ARGUMENT_BUFFER, "weights",
                                                {weights, 0}, FALCON_HAL_ELEMENT_TYPE_U8,
                                                {int64_t(weights->size)}));
    falcon_hal_launch_params_t launch = {session->model->executable,
                                         session->model->forwardOrdinal, arguments.data(),
                                         arguments.size()};
    // With the precision guard, a call whose f16 rounding overflowed runs
    // again with that layer in bf16; it rewrites the same cache positions.
    for (bool again = true; again;) {
      again = false;
      if (session->precisionGuard)
        FALCON_RETURN_IF_ERROR(vtable.copyHostToBuffer(
            session->queue, session->guardFallbacks.data(), {session->precisionGuard, 0},
            session->guardFallbacks.size()));
      FALCON_RETURN_IF_ERROR(vtable.launch(session->queue, &launch));
      FALCON_RETURN_IF_ERROR(vtable.finish(session->queue));
      if (session->precisionGuard)
        FALCON_RETURN_IF_ERROR(checkPrecisionGuard(session, again));
    }
    // Hidden states on to the next stage.
    if (world && !rank.isLastStage()) {
      Clock::time_point start = Clock::now();
      FALCON_RETURN_IF_ERROR(world->vtable->send(world, session->queue, output,
                                                 microCount * hidden,
                                                 FALCON_HAL_ELEMENT_TYPE_F32,
                                                 int32_t(model.rankIndex + tp)));
      session->collectiveSeconds += secondsSince(start);
    }
  }
  // The logits slices to rank 0.
  if (world && gatherLogitsToRankZero) {
    Clock::time_point start = Clock::now();
    FALCON_RETURN_IF_ERROR(gatherLogits(session, session->batchSize * logitsPerRow));
    session->collectiveSeconds += secondsSince(start);
  }
  for (int64_t row = 0; row < session->batchSize; ++row)
    session->rowLengths[row] += rowTokens.empty() ? sequenceLength : rowTokens[row];
  // Weights written or truncated under the mapping: say so rather than
  // return results of other weights.
  return session->model->weights->checkUnchanged();
}

/// Maps the first `count` logits of the last forward call for reading; the
/// caller unmaps them with unmapLogits before the next call. With several
/// ranks, rank 0 holds them (the others get null).
falcon_status_t mapLogits(falcon_session_t *session, uint64_t count,
                          const float **outLogits) {
  if (session->model->worldSize() > 1) {
    *outLogits = session->model->rankIndex == 0 ? session->gatheredLogits.data() : nullptr;
    return nullptr;
  }
  falcon_hal_device_t *device = session->model->device;
  void *mapped = nullptr;
  FALCON_RETURN_IF_ERROR(device->vtable->mapBuffer(
      device, session->logits, 0, count * sizeof(float),
      FALCON_HAL_MEMORY_ACCESS_READ, &mapped));
  *outLogits = static_cast<const float *>(mapped);
  return nullptr;
}

falcon_status_t unmapLogits(falcon_session_t *session) {
  if (session->model->worldSize() > 1)
    return nullptr;
  falcon_hal_device_t *device = session->model->device;
  return device->vtable->unmapBuffer(device, session->logits);
}

/// Copies the first `count` logits of the last forward call to `out` (only
/// on rank 0 of several).
falcon_status_t readLogits(falcon_session_t *session, uint64_t count,
                           float *out) {
  const float *logits = nullptr;
  FALCON_RETURN_IF_ERROR(mapLogits(session, count, &logits));
  if (logits)
    std::memcpy(out, logits, size_t(count) * sizeof(float));
  return unmapLogits(session);
}

/// Rank 0's `bytes` at `data` to every rank (several ranks; one: nothing
/// to do).
falcon_status_t broadcastFromRankZero(falcon_session_t *session, void *data, uint64_t bytes) {
  falcon_comm_channel_t *world = session->model->worldChannel;
  if (!world)
    return nullptr;
  Clock::time_point start = Clock::now();
  falcon_status_t status = hal::withHostBuffer(
      session->model->device, data, bytes, [&](falcon_hal_buffer_ref_t ref) {
        return world->vtable->broadcast(world, session->queue, ref, int64_t(bytes),
                                        FALCON_HAL_ELEMENT_TYPE_U8, 0);
      });
  session->collectiveSeconds += secondsSince(start);
  return status;
}

/// The greedy tokens of a multi-rank plan without gathering the logits:
/// each last-stage rank takes the argmax of its vocabulary slice at token
/// `row * tokensPerRow + positions[row]` of every row, and rank 0 merges
/// them into `tokens` (the largest logit, the lowest id on ties, a NaN wins:
/// the same choice as argmax over the whole row).
falcon_status_t pickTokensFromSlices(falcon_session_t *session, int64_t tokensPerRow,
                                     llvm::ArrayRef<int64_t> positions, int64_t *tokens) {
  falcon_model_t &model = *session->model;
  const Manifest &manifest = model.manifest;
  const ManifestRank &self = model.rank();
  falcon_comm_channel_t *world = model.worldChannel;
  falcon_hal_device_t *device = model.device;
  struct Choice {
    float value;
    int32_t padding;
    int64_t id;
  };
  const int64_t rows = session->batchSize;
  std::vector<Choice> mine(static_cast<size_t>(rows)), theirs(static_cast<size_t>(rows));
  if (self.isLastStage()) {
    void *mapped = nullptr;
    uint64_t count = uint64_t(rows * tokensPerRow * self.vocabSize);
    FALCON_RETURN_IF_ERROR(device->vtable->mapBuffer(device, session->logits, 0,
                                                     count * sizeof(float),
                                                     FALCON_HAL_MEMORY_ACCESS_READ, &mapped));
    const float *logits = static_cast<const float *>(mapped);
    for (int64_t row = 0; row < rows; ++row) {
      const float *slice = logits + (row * tokensPerRow + positions[row]) * self.vocabSize;
      int64_t local = argmaxLowestId({slice, size_t(self.vocabSize)});
      mine[size_t(row)] = {slice[local], 0, self.vocabOffset + local};
    }
    FALCON_RETURN_IF_ERROR(device->vtable->unmapBuffer(device, session->logits));
  }
  uint64_t bytes = uint64_t(rows) * sizeof(Choice);
  Clock::time_point start = Clock::now();
  if (model.rankIndex != 0) {
    if (self.isLastStage()) {
      FALCON_RETURN_IF_ERROR(hal::withHostBuffer(
          device, mine.data(), bytes, [&](falcon_hal_buffer_ref_t ref) {
            return world->vtable->send(world, session->queue, ref, int64_t(bytes),
                                       FALCON_HAL_ELEMENT_TYPE_U8, 0);
          }));
    }
  } else {
    std::vector<Choice> best;
    // The last stage's slots in slot order: increasing vocabulary offsets.
    for (int64_t index = 0; index < model.worldSize(); ++index) {
      if (!manifest.ranks[index].isLastStage())
        continue;
      if (index == 0) {
        theirs = mine;
      } else {
        FALCON_RETURN_IF_ERROR(hal::withHostBuffer(
            device, theirs.data(), bytes, [&](falcon_hal_buffer_ref_t ref) {
              return world->vtable->recv(world, session->queue, ref, int64_t(bytes),
                                         FALCON_HAL_ELEMENT_TYPE_U8, int32_t(index));
            }));
      }
      if (best.empty()) {
        best = theirs;
        continue;
      }
      for (int64_t row = 0; row < rows; ++row) {
        const Choice &current = best[size_t(row)], &candidate = theirs[size_t(row)];
        if (!std::isnan(current.value) &&
            (std::isnan(candidate.value) || candidate.value > current.value))
          best[size_t(row)] = candidate;
      }
    }
    for (int64_t row = 0; row < rows; ++row)
      tokens[row] = best[size_t(row)].id;
  }
  session->collectiveSeconds += secondsSince(start);
  return nullptr;
}

/// "cache length N plus " when the row's cache is not empty: capacity errors
/// then say what the prompt is added to.
std::string cachedPrefix(int64_t length) {
  if (length == 0)
    return "";
  return "cache length " + std::to_string(length) + " plus ";
}

/// "row R: " in a batch of several rows.
std::string rowPrefix(const falcon_session_t *session, int64_t row) {
  if (session->batchSize == 1)
    return "";
  return "row " + std::to_string(row) + ": ";
}

/// Common checks of prefill, decode and generate.
falcon_status_t checkCall(const falcon_session_t *session, const char *function,
                          const int64_t *tokenIds, int64_t batchSize,
                          const char *tokenArgument = "token_ids") {
  if (!session)
    return makeNullArgumentStatus(function, "session");
  if (!tokenIds)
    return makeNullArgumentStatus(function, tokenArgument);
  return checkBatchSize(session, function, batchSize);
}

SamplingParams toSamplingParams(const falcon_sampling_options_t &options) {
  SamplingParams params;
  params.temperature = options.temperature;
  params.topK = options.top_k;
  params.topP = options.top_p;
  params.minP = options.min_p;
  params.repetitionPenalty = options.repetition_penalty;
  params.seed = options.seed;
  return params;
}

/// The generation loop behind falcon_session_generate and
/// falcon_session_generate_greedy. `promptLengths` has one entry per row;
/// `lengthName` is the caller's name of maxPromptLength.
falcon_status_t generate(falcon_session_t *session, const char *function,
                         const int64_t *promptIds, llvm::ArrayRef<int64_t> promptLengths,
                         int64_t maxPromptLength, const char *lengthName,
                         const falcon_generate_options_t &options,
                         const falcon_generate_outputs_t &outputs) {
  const int64_t batchSize = session->batchSize;
  const int64_t maxNewTokens = options.max_new_tokens;
  if (maxPromptLength <= 0)
    return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                      llvm::Twine(function) + ": " + lengthName + " must be positive, found " +
                          llvm::Twine(maxPromptLength));
  if (maxNewTokens < 0)
    return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                      llvm::Twine(function) + ": max_new_tokens must not be negative, found " +
                          llvm::Twine(maxNewTokens));
  SamplingParams params = toSamplingParams(options.sampling);
  if (std::string problem = validateSamplingParams(params); !problem.empty())
    return makeStatus(FALCON_STATUS_INVALID_ARGUMENT, llvm::Twine(function) + ": " + problem);
  if (options.stop_token_count < 0 || (options.stop_token_count > 0 && !options.stop_token_ids))
    return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                      llvm::Twine(function) + ": stop_token_ids must hold stop_token_count (" +
                          llvm::Twine(options.stop_token_count) + ") ids");
  llvm::ArrayRef<int64_t> stopIds(options.stop_token_ids, size_t(options.stop_token_count));
  const int64_t vocabSize = session->model->manifest.vocabSize;
  // Rows of different lengths (in the cache or in the prompts): errors name
  // the row.
  const bool mixed = llvm::any_of(promptLengths, [&](int64_t length) {
    return length != maxPromptLength;
  });
  const bool named = mixed || llvm::any_of(session->rowLengths, [&](int64_t length) {
                       return length != session->rowLengths[0];
                     });
  // Written without sums that could overflow for absurd requests.
  for (int64_t row = 0; row < batchSize; ++row) {
    int64_t promptLength = promptLengths[row];
    if (promptLength <= 0 || promptLength > maxPromptLength)
      return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                        llvm::Twine(function) + ": prompt_lengths[" + llvm::Twine(row) +
                            "] must be in [1, " + llvm::Twine(maxPromptLength) + "], found " +
                            llvm::Twine(promptLength));
    int64_t room = session->capacity - session->rowLengths[row];
    if (maxPromptLength > room || promptLength > room ||
        maxNewTokens > room - promptLength)
      return makeStatus(
          FALCON_STATUS_OUT_OF_RANGE,
          (named ? rowPrefix(session, row) : std::string()) + cachedPrefix(session->rowLengths[row]) + "prompt (" +
              llvm::Twine(promptLength) + " tokens" +
              (promptLength < maxPromptLength
                   ? ", padded to " + llvm::Twine(maxPromptLength)
                   : llvm::Twine("")) +
              ") plus " + llvm::Twine(maxNewTokens) +
              " new tokens exceeds the KV-cache capacity of " + llvm::Twine(session->capacity));
    for (int64_t position = 0; position < promptLength; ++position) {
      int64_t id = promptIds[row * maxPromptLength + position];
      if (id >= 0 && id < vocabSize)
        continue;
      return makeStatus(FALCON_STATUS_OUT_OF_RANGE,
                        "token id " + llvm::Twine(id) + " at " +
                            (batchSize != 1 ? "batch row " + llvm::Twine(row) + ", "
                                            : llvm::Twine("")) +
                            "position " + llvm::Twine(position) +
                            " is out of range for vocab size " + llvm::Twine(vocabSize));
    }
  }
  uint64_t idCount = 0, logitCount = 0, stepLogitCount = 0;
  if (!checkedProduct({batchSize, maxNewTokens}, idCount) ||
      !checkedProduct({batchSize, maxPromptLength, vocabSize}, logitCount) ||
      !checkedProduct({batchSize, maxNewTokens, vocabSize}, stepLogitCount))
    return makeStatus(FALCON_STATUS_RESOURCE_EXHAUSTED,
                      llvm::Twine(function) + ": results overflow the address space");
  if (idCount > 0) {
    if (!outputs.ids)
      return makeNullArgumentStatus(function, "out_ids");
    FALCON_RETURN_IF_ERROR(checkOutputCapacity(function, "out_ids", outputs.ids_capacity, idCount));
  }
  if (outputs.prompt_logits)
    FALCON_RETURN_IF_ERROR(checkOutputCapacity(function, "out_prompt_logits",
                                               outputs.prompt_logits_capacity, logitCount));
  if (outputs.step_logits)
    FALCON_RETURN_IF_ERROR(checkOutputCapacity(function, "out_step_logits",
                                               outputs.step_logits_capacity, stepLogitCount));
  // Everything the loop needs, allocated up front: one scratch allocation
  // covers the prefill and every decode step.
  FALCON_RETURN_IF_ERROR(ensureScratch(session, maxPromptLength));
  std::vector<int64_t> paddedPrompt, tokens, finished, lastPositions;
  std::vector<std::vector<int64_t>> history;
  std::vector<Sampler> samplers;
  try {
    // Padding is whatever the caller left there: replaced by a valid id.
    paddedPrompt.assign(promptIds, promptIds + batchSize * maxPromptLength);
    for (int64_t row = 0; row < batchSize; ++row)
      std::fill(paddedPrompt.begin() + row * maxPromptLength + promptLengths[row],
                paddedPrompt.begin() + (row + 1) * maxPromptLength, 0);
    // Per row: the token chosen last, whether it finished (then shared with
    // the tokens, so that every rank stops the same rows), where its prompt
    // ends in the prefill, its ids so far (the repetition penalty's).
    tokens.assign(size_t(2 * batchSize), 0);
    finished.assign(size_t(batchSize), 0);
    for (int64_t row = 0; row < batchSize; ++row) {
      lastPositions.push_back(promptLengths[row] - 1);
      if (params.repetitionPenalty != 1.0) {
        history.emplace_back(promptIds + row * maxPromptLength,
                             promptIds + row * maxPromptLength + promptLengths[row]);
        history.back().reserve(size_t(promptLengths[row] + maxNewTokens));
      }
      samplers.emplace_back(params);
    }
  } catch (const std::bad_alloc &) {
    return makeStatus(FALCON_STATUS_RESOURCE_EXHAUSTED, llvm::Twine(function) + ": out of memory");
  }
  if (outputs.ids)
    std::fill(outputs.ids, outputs.ids + idCount, -1);
  if (outputs.lengths)
    std::fill(outputs.lengths, outputs.lengths + batchSize, 0);

  // From here on only a misbehaving host library can make a step fail.
  falcon_model_t &model = *session->model;
  falcon_generate_stats_t stats = {};
  falcon_hal_allocator_statistics_t before = {};
  FALCON_RETURN_IF_ERROR(model.device->vtable->queryAllocatorStatistics(model.device, &before));
  double transferBefore = session->collectiveSeconds;
  Clock::time_point start = Clock::now();
  // With several ranks, the logits reach rank 0 when it needs them (it asked
  // for them, or the sampler reads the whole row: the other ranks pass no
  // output buffers and sample nothing); otherwise, for plain greedy
  // decoding, the last stage's ranks pick among their own slices.
  // Rank 0 also decides whether the prefill returns every position's logits
  // (only it has the caller's buffers; every stage must compute the same).
  int64_t decisions[2] = {outputs.prompt_logits || outputs.step_logits || !params.greedy() ||
                              params.repetitionPenalty != 1.0,
                          outputs.prompt_logits != nullptr};
  FALCON_RETURN_IF_ERROR(broadcastFromRankZero(session, decisions, sizeof(decisions)));
  const int64_t gather = decisions[0];
  const bool multiRank = model.worldSize() > 1;
  const bool sliced = multiRank && !gather;
  llvm::SmallVector<int64_t> advance;
  if (mixed)
    advance.assign(promptLengths.begin(), promptLengths.end());
  // The prefill's logits at every position only when the caller wants them;
  // otherwise those of each row's last token alone.
  const LogitRows prefillLogits = decisions[1] ? LogitRows::All : LogitRows::Last;
  FALCON_RETURN_IF_ERROR(runForward(session, paddedPrompt.data(), maxPromptLength,
                                    prefillLogits, advance, !sliced));
  stats.prefill_tokens = std::accumulate(promptLengths.begin(), promptLengths.end(), int64_t(0));
  stats.prefill_seconds = secondsSince(start);
  if (outputs.prompt_logits)
    FALCON_RETURN_IF_ERROR(readLogits(session, logitCount, outputs.prompt_logits));

  // Chooses each unfinished row's next token from the last forward call's
  // logits (row b's at token row * tokensPerRow + positions[b]), streams it
  // and shares it: rank 0 decides, every rank follows.
  int64_t *next = tokens.data(), *done = tokens.data() + batchSize;
  auto chooseTokens = [&](int64_t step, int64_t tokensPerRow,
                          llvm::ArrayRef<int64_t> positions) -> falcon_status_t {
    const float *logits = nullptr;
    if (sliced)
      FALCON_RETURN_IF_ERROR(pickTokensFromSlices(session, tokensPerRow, positions, next));
    else
      FALCON_RETURN_IF_ERROR(
          mapLogits(session, uint64_t(batchSize * tokensPerRow * vocabSize), &logits));
    bool rankZero = model.rankIndex == 0;
    for (int64_t row = 0; rankZero && row < batchSize; ++row) {
      if (finished[row])
        continue;
      if (logits) {
        const float *rowLogits = logits + (row * tokensPerRow + positions[row]) * vocabSize;
        llvm::ArrayRef<float> values(rowLogits, size_t(vocabSize));
        next[row] = samplers[row].next(
            values, history.empty() ? llvm::ArrayRef<int64_t>() : llvm::ArrayRef<int64_t>(history[row]));
        if (outputs.step_logits)
          std::memcpy(outputs.step_logits + (row * maxNewTokens + step) * vocabSize, rowLogits,
                      size_t(vocabSize) * sizeof(float));
      }
      done[row] = step + 1 == maxNewTokens || llvm::is_contained(stopIds, next[row]);
      if (options.token_callback && options.token_callback(options.user_data, row, next[row]))
        done[row] = 1;
    }
    if (logits)
      FALCON_RETURN_IF_ERROR(unmapLogits(session));
    FALCON_RETURN_IF_ERROR(
        broadcastFromRankZero(session, tokens.data(), tokens.size() * sizeof(int64_t)));
    for (int64_t row = 0; row < batchSize; ++row) {
      if (finished[row])
        continue;
      if (!rankZero && options.token_callback)
        options.token_callback(options.user_data, row, next[row]);
      if (outputs.ids)
        outputs.ids[row * maxNewTokens + step] = next[row];
      if (outputs.lengths)
        outputs.lengths[row] = step + 1;
      if (!history.empty())
        history[row].push_back(next[row]);
      finished[row] = done[row];
    }
    return nullptr;
  };
  const llvm::SmallVector<int64_t> firstPosition(size_t(batchSize), 0);
  if (maxNewTokens > 0) {
    if (prefillLogits == LogitRows::All)
      FALCON_RETURN_IF_ERROR(chooseTokens(0, maxPromptLength, lastPositions));
    else
      FALCON_RETURN_IF_ERROR(chooseTokens(0, 1, firstPosition));
    // The prefill ends when its tokens are known everywhere (with several
    // ranks, rank 0's forward part ends before the last stage's).
    stats.prefill_seconds = secondsSince(start);
    start = Clock::now();
    int64_t step = 1;
    for (; step < maxNewTokens && llvm::is_contained(finished, 0); ++step) {
      // A finished row decodes its last token again; its results are
      // dropped.
      FALCON_RETURN_IF_ERROR(runForward(session, next, 1, LogitRows::Last, {}, !sliced));
      FALCON_RETURN_IF_ERROR(chooseTokens(step, 1, firstPosition));
    }
    stats.decode_tokens = batchSize * (step - 1);
    stats.decode_seconds = secondsSince(start);
  }
  falcon_hal_allocator_statistics_t memory = {};
  FALCON_RETURN_IF_ERROR(model.device->vtable->queryAllocatorStatistics(model.device, &memory));
  stats.workspace_peak_bytes = memory.workspacePeakBytes;
  stats.buffer_peak_bytes = memory.bufferPeakBytes;
  stats.all_reduces = int64_t(memory.executableCollectives - before.executableCollectives);
  stats.all_reduce_seconds =
      double(memory.executableCollectiveNanoseconds - before.executableCollectiveNanoseconds) *
      1e-9;
  stats.transfer_seconds = session->collectiveSeconds - transferBefore;
  if (outputs.stats)
    *outputs.stats = stats;
  return nullptr;
}

} // namespace

void falcon_session_options_initialize(falcon_session_options_t *out_options) {
  if (!out_options)
    return;
  out_options->batch_size = 1;
  out_options->cache_capacity = 0;
  out_options->micro_batches = 0;
}

falcon_status_t falcon_session_create(falcon_model_t *model,
                                      const falcon_session_options_t *options,
                                      falcon_session_t **out_session) {
  const char *function = "falcon_session_create";
  if (!out_session)
    return makeNullArgumentStatus(function, "out_session");
  *out_session = nullptr;
  if (!model)
    return makeNullArgumentStatus(function, "model");
  falcon_session_options_t defaults;
  falcon_session_options_initialize(&defaults);
  if (!options)
    options = &defaults;

  const Manifest &manifest = model->manifest;
  if (options->batch_size <= 0)
    return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                      llvm::Twine(function) +
                          ": batch_size must be positive, found " +
                          llvm::Twine(options->batch_size));
  int64_t capacity = options->cache_capacity;
  if (capacity == 0)
    capacity = manifest.maxPositionEmbeddings;
  if (capacity < 0)
    return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                      llvm::Twine(function) +
                          ": cache_capacity must not be negative, found " +
                          llvm::Twine(capacity));
  // Positions past max_position_embeddings are allowed: Falcon has no
  // position table (RoPE and ALiBi are functions of the position, and dynamic
  // NTK scaling exists for exactly those), and the compiled code sizes
  // nothing by it.

  // Pipeline plans split a batch into micro-batches so that the stages
  // overlap (default: one per stage, at most one per row).
  if (options->micro_batches < 0)
    return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                      llvm::Twine(function) + ": micro_batches must not be negative, found " +
                          llvm::Twine(options->micro_batches));
  int64_t microBatchCount =
      options->micro_batches > 0 ? options->micro_batches : manifest.pipelineParallel;

  uint64_t cacheBytes = 0;
  // The rank's share of the cache: its stage's layers, its KV heads.
  if (!checkedProduct({model->rank().numLayers, options->batch_size,
                       model->rank().numKVHeads, capacity, manifest.cacheHeadDim,
                       manifest.cacheElementBytes},
                      cacheBytes))
    return makeStatus(FALCON_STATUS_RESOURCE_EXHAUSTED,
                      "a KV cache for batch size " +
                          llvm::Twine(options->batch_size) + " and capacity " +
                          llvm::Twine(capacity) +
                          " overflows the address space");

  std::unique_ptr<falcon_session_t> session(new (std::nothrow)
                                                falcon_session_t());
  if (!session)
    return makeStatus(FALCON_STATUS_RESOURCE_EXHAUSTED,
                      "cannot allocate a session");
  falcon_model_retain(model);
  session->model = model;
  session->batchSize = options->batch_size;
  session->capacity = capacity;
  try {
    session->rowLengths.assign(size_t(options->batch_size), 0);
  } catch (const std::bad_alloc &) {
    return makeStatus(FALCON_STATUS_RESOURCE_EXHAUSTED, "cannot allocate a session");
  }
  falcon_hal_device_t *device = model->device;
  FALCON_RETURN_IF_ERROR(device->vtable->createQueue(device, &session->queue));
  FALCON_RETURN_IF_ERROR(device->vtable->allocateBuffer(
      device, FALCON_HAL_MEMORY_TYPE_HOST_LOCAL | FALCON_HAL_MEMORY_TYPE_HOST_VISIBLE,
      uint64_t(options->batch_size) * sizeof(int64_t), &session->pastLens));
  if (int64_t entries = model->manifest.precisionGuardEntries) {
    session->guardFallbacks.assign(size_t(entries), 0);
    FALCON_RETURN_IF_ERROR(device->vtable->allocateBuffer(
        device, FALCON_HAL_MEMORY_TYPE_HOST_LOCAL | FALCON_HAL_MEMORY_TYPE_HOST_VISIBLE,
        uint64_t(entries), &session->precisionGuard));
  }
  // Micro-batches: the rows split as evenly as they can, each group with
  // its own cache (its share of cacheBytes).
  int64_t microBatches = std::min(microBatchCount, options->batch_size);
  uint64_t rowBytes = cacheBytes / uint64_t(options->batch_size);
  for (int64_t micro = 0; micro <= microBatches; ++micro)
    session->rowBegin.push_back(micro * (options->batch_size / microBatches) +
                                std::min(micro, options->batch_size % microBatches));
  for (int64_t micro = 0; micro < microBatches; ++micro) {
    uint64_t bytes =
        rowBytes * uint64_t(session->rowBegin[micro + 1] - session->rowBegin[micro]);
    for (auto *caches : {&session->keyCaches, &session->valueCaches}) {
      falcon_hal_buffer_t *buffer = nullptr;
      FALCON_RETURN_IF_ERROR(device->vtable->allocateBuffer(
          device, FALCON_HAL_MEMORY_TYPE_DEVICE_LOCAL, bytes, &buffer));
      caches->push_back(buffer);
    }
  }
  *out_session = session.release();
  return nullptr;
}

void falcon_session_release(falcon_session_t *session) { delete session; }

falcon_status_t falcon_session_reset(falcon_session_t *session) {
  if (!session)
    return makeNullArgumentStatus("falcon_session_reset", "session");
  // Cache rows at or past a row's length are never read, so the cache needs
  // no clearing.
  std::fill(session->rowLengths.begin(), session->rowLengths.end(), 0);
  return nullptr;
}

falcon_status_t falcon_session_query_info(const falcon_session_t *session,
                                          falcon_session_info_t *out_info) {
  if (!session)
    return makeNullArgumentStatus("falcon_session_query_info", "session");
  if (!out_info)
    return makeNullArgumentStatus("falcon_session_query_info", "out_info");
  out_info->batch_size = session->batchSize;
  out_info->cache_capacity = session->capacity;
  out_info->length = longestRow(session);
  return nullptr;
}

falcon_status_t falcon_session_query_length(const falcon_session_t *session,
                                            int64_t *out_length) {
  if (!session)
    return makeNullArgumentStatus("falcon_session_query_length", "session");
  if (!out_length)
    return makeNullArgumentStatus("falcon_session_query_length", "out_length");
  *out_length = longestRow(session);
  return nullptr;
}

falcon_status_t falcon_session_query_precision_fallbacks(const falcon_session_t *session,
                                                        size_t capacity, uint8_t *out_fallbacks,
                                                        size_t *out_count) {
  const char *function = "falcon_session_query_precision_fallbacks";
  if (!session)
    return makeNullArgumentStatus(function, "session");
  if (!out_count)
    return makeNullArgumentStatus(function, "out_count");
  const std::vector<uint8_t> &fallbacks = session->guardFallbacks;
  *out_count = fallbacks.size();
  if (fallbacks.empty())
    return nullptr;
  if (!out_fallbacks)
    return makeNullArgumentStatus(function, "out_fallbacks");
  FALCON_RETURN_IF_ERROR(
      checkOutputCapacity(function, "out_fallbacks", capacity, uint64_t(fallbacks.size())));
  std::copy(fallbacks.begin(), fallbacks.end(), out_fallbacks);
  return nullptr;
}

falcon_status_t falcon_session_query_row_lengths(const falcon_session_t *session,
                                                 size_t capacity, int64_t *out_lengths) {
  const char *function = "falcon_session_query_row_lengths";
  if (!session)
    return makeNullArgumentStatus(function, "session");
  if (!out_lengths)
    return makeNullArgumentStatus(function, "out_lengths");
  FALCON_RETURN_IF_ERROR(
      checkOutputCapacity(function, "out_lengths", capacity, uint64_t(session->batchSize)));
  std::copy(session->rowLengths.begin(), session->rowLengths.end(), out_lengths);
  return nullptr;
}

falcon_status_t
falcon_session_prefill(falcon_session_t *session, const int64_t *token_ids,
                       int64_t batch_size, int64_t sequence_length,
                       size_t logits_capacity, float *out_logits) {
  const char *function = "falcon_session_prefill";
  FALCON_RETURN_IF_ERROR(checkCall(session, function, token_ids, batch_size));
  if (sequence_length <= 0)
    return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                      llvm::Twine(function) +
                          ": sequence_length must be positive, found " +
                          llvm::Twine(sequence_length));
  if (sequence_length > session->capacity - longestRow(session))
    return makeStatus(FALCON_STATUS_OUT_OF_RANGE,
                      cachedPrefix(longestRow(session)) + "prompt (" +
                          llvm::Twine(sequence_length) +
                          " tokens) exceeds the KV-cache capacity of " +
                          llvm::Twine(session->capacity));
  FALCON_RETURN_IF_ERROR(
      checkTokenIds(session, token_ids, batch_size, sequence_length));
  uint64_t logitCount = 0;
  if (!checkedProduct(
          {batch_size, sequence_length, session->model->manifest.vocabSize},
          logitCount))
    return makeStatus(FALCON_STATUS_RESOURCE_EXHAUSTED,
                      llvm::Twine(function) +
                          ": logits overflow the address space");
  if (out_logits)
    FALCON_RETURN_IF_ERROR(checkOutputCapacity(function, "out_logits",
                                               logits_capacity, logitCount));
  FALCON_RETURN_IF_ERROR(ensureScratch(session, sequence_length));
  // Every stage computes what rank 0's caller asked for.
  int64_t all = out_logits != nullptr;
  FALCON_RETURN_IF_ERROR(broadcastFromRankZero(session, &all, sizeof(all)));
  FALCON_RETURN_IF_ERROR(runForward(session, token_ids, sequence_length,
                                    all ? LogitRows::All : LogitRows::Last));
  if (out_logits)
    return readLogits(session, logitCount, out_logits);
  return nullptr;
}

falcon_status_t falcon_session_decode(falcon_session_t *session,
                                      const int64_t *token_ids,
                                      int64_t batch_size,
                                      size_t logits_capacity,
                                      float *out_logits) {
  const char *function = "falcon_session_decode";
  FALCON_RETURN_IF_ERROR(checkCall(session, function, token_ids, batch_size));
  if (longestRow(session) >= session->capacity)
    return makeStatus(FALCON_STATUS_OUT_OF_RANGE,
                      "decode: the KV cache is full (capacity " +
                          llvm::Twine(session->capacity) + " tokens)");
  FALCON_RETURN_IF_ERROR(checkTokenIds(session, token_ids, batch_size, 1));
  uint64_t logitCount = 0;
  if (!checkedProduct({batch_size, session->model->manifest.vocabSize},
                      logitCount))
    return makeStatus(FALCON_STATUS_RESOURCE_EXHAUSTED,
                      llvm::Twine(function) +
                          ": logits overflow the address space");
  if (out_logits)
    FALCON_RETURN_IF_ERROR(checkOutputCapacity(function, "out_logits",
                                               logits_capacity, logitCount));
  FALCON_RETURN_IF_ERROR(ensureScratch(session, 1));
  FALCON_RETURN_IF_ERROR(runForward(session, token_ids, 1, LogitRows::Last));
  if (out_logits)
    return readLogits(session, logitCount, out_logits);
  return nullptr;
}

void falcon_sampling_options_initialize(falcon_sampling_options_t *out_options) {
  if (!out_options)
    return;
  out_options->temperature = 0.0;
  out_options->top_k = 0;
  out_options->top_p = 1.0;
  out_options->min_p = 0.0;
  out_options->repetition_penalty = 1.0;
  out_options->seed = 0;
}

void falcon_generate_options_initialize(falcon_generate_options_t *out_options) {
  if (!out_options)
    return;
  out_options->max_new_tokens = 16;
  falcon_sampling_options_initialize(&out_options->sampling);
  out_options->stop_token_ids = nullptr;
  out_options->stop_token_count = 0;
  out_options->token_callback = nullptr;
  out_options->user_data = nullptr;
}

falcon_status_t falcon_session_generate(falcon_session_t *session, const int64_t *prompt_ids,
                                        const int64_t *prompt_lengths, int64_t batch_size,
                                        int64_t max_prompt_length,
                                        const falcon_generate_options_t *options,
                                        const falcon_generate_outputs_t *outputs) {
  const char *function = "falcon_session_generate";
  FALCON_RETURN_IF_ERROR(checkCall(session, function, prompt_ids, batch_size, "prompt_ids"));
  if (!outputs)
    return makeNullArgumentStatus(function, "outputs");
  falcon_generate_options_t defaults;
  falcon_generate_options_initialize(&defaults);
  if (!options)
    options = &defaults;
  llvm::SmallVector<int64_t> lengths(size_t(batch_size), max_prompt_length);
  if (prompt_lengths)
    lengths.assign(prompt_lengths, prompt_lengths + batch_size);
  return generate(session, function, prompt_ids, lengths, max_prompt_length,
                  "max_prompt_length", *options, *outputs);
}

falcon_status_t falcon_session_generate_greedy(
    falcon_session_t *session, const int64_t *prompt_ids, int64_t batch_size,
    int64_t prompt_length, int64_t max_new_tokens, size_t ids_capacity,
    size_t prompt_logits_capacity, size_t step_logits_capacity,
    int64_t *out_ids, float *out_prompt_logits, float *out_step_logits,
    falcon_generate_stats_t *out_stats) {
  const char *function = "falcon_session_generate_greedy";
  FALCON_RETURN_IF_ERROR(checkCall(session, function, prompt_ids, batch_size, "prompt_ids"));
  falcon_generate_options_t options;
  falcon_generate_options_initialize(&options);
  options.max_new_tokens = max_new_tokens;
  falcon_generate_outputs_t outputs = {out_ids,           ids_capacity,
                                       nullptr,           out_prompt_logits,
                                       prompt_logits_capacity, out_step_logits,
                                       step_logits_capacity,   out_stats};
  llvm::SmallVector<int64_t> lengths(size_t(batch_size), prompt_length);
  return generate(session, function, prompt_ids, lengths, prompt_length, "prompt_length",
                  options, outputs);
}
