/*===- FakeModel.c - a fake artifact host library -----------*- C -*-===*\
|*                                                                      *|
|* Exports _mlir_ciface_forward with the host ABI of                     *|
|* docs/artifact-format.md and deterministic fake math, so the runtime   *|
|* can be tested without the compiler:                                   *|
|*  - every argument descriptor is checked (dense row-major, offset 0,   *|
|*    allocated == aligned, consistent shapes, position_ids[b][s] ==     *|
|*    past_lens[b] + s, ids in range); a violation is counted and the    *|
|*    logits are filled with NaN;                                        *|
|*  - rows past_lens[b] .. past_lens[b]+S-1 of both caches get           *|
|*    recognisable values (fakeKey/fakeValue), written through strides;  *|
|*  - rows 0 .. past_lens[b]-1 are checked to still hold what earlier    *|
|*    calls wrote, and the prediction at a position depends on the ids   *|
|*    of every earlier row read back from the key cache, so a decode     *|
|*    that does not see the prefill's rows gives different logits;       *|
|*  - the logits come back as a malloc()ed memref whose `aligned` is not *|
|*    `allocated` and whose `offset` is not 0, so a runtime that frees   *|
|*    or reads through the wrong pointer fails;                          *|
|*  - when the runtime filled its import table (falcon_runtime_imports), *|
|*    the logits and a scratch block come from the table's alloc, the    *|
|*    scratch goes back through its free, and the call is traced and     *|
|*    all-reduces the scratch, as compiled code will.                    *|
|*                                                                      *|
|* A second export, _mlir_ciface_fake_scale, is the HAL conformance      *|
|* suite's small launch target.                                          *|
|*                                                                      *|
\*===------------------------------------------------------------------===*/

#include "FakeModel.h"

#include "falcon/Support/RuntimeImports.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define EXPORT __attribute__((visibility("default")))

typedef struct {
  void *allocated, *aligned;
  int64_t offset, sizes[1], strides[1];
} MemRef1;
typedef struct {
  void *allocated, *aligned;
  int64_t offset, sizes[2], strides[2];
} MemRef2;
typedef struct {
  void *allocated, *aligned;
  int64_t offset, sizes[3], strides[3];
} MemRef3;
typedef struct {
  void *allocated, *aligned;
  int64_t offset, sizes[5], strides[5];
} MemRef5;

static int64_t callCount;
static int64_t abiErrorCount;
static int64_t lastPastLength = -1;
static int64_t lastSequenceLength = -1;
static int64_t lastLogitsPerRow = -1;
static int64_t lastCacheCapacity = -1;

/* The geometry falcon-compile exports (docs/artifact-format.md): vocab,
 * hidden, layers, heads, KV heads, head size, weights.bin bytes, KV-cache
 * element bytes, precision guard entries (none); the fake manifests
 * (FakeArtifact.cpp, fake_artifact.py) say the same. */
EXPORT const int64_t falcon_model_geometry[9] = {
    FAKE_VOCAB_SIZE, 16, FAKE_LAYERS, 4, FAKE_KV_HEADS, FAKE_HEAD_DIM, 1000, 4, 0};

/* Filled by the runtime when it loads the library; zero otherwise. */
EXPORT falcon_runtime_imports_t falcon_runtime_imports;

static int64_t failedAllocationCount;
static int64_t lastAllReduceResult = -1;

EXPORT int64_t fake_model_calls(void) { return callCount; }
EXPORT int64_t fake_model_imports_version(void) {
  return falcon_runtime_imports.version;
}
EXPORT int64_t fake_model_failed_allocations(void) {
  return failedAllocationCount;
}
EXPORT int64_t fake_model_last_all_reduce(void) { return lastAllReduceResult; }

/* Through the runtime's table when it is filled, as compiled code does. */
static void *allocate(size_t size) {
  void *block = falcon_runtime_imports.version
                    ? falcon_runtime_imports.alloc(
                          falcon_runtime_imports.context, size, 64)
                    : malloc(size);
  if (!block)
    ++failedAllocationCount;
  return block;
}

static void release(void *block) {
  if (falcon_runtime_imports.version)
    falcon_runtime_imports.free(falcon_runtime_imports.context, block);
  else
    free(block);
}
EXPORT int64_t fake_model_abi_errors(void) { return abiErrorCount; }

/* Stands in for the OpenMP runtime a compiled host library links: the
 * runtime sets the thread count through it (falcon_model_options_t). */
static int64_t numThreads = 0;
EXPORT void omp_set_num_threads(int threads) { numThreads = threads; }
EXPORT int64_t fake_model_num_threads(void) { return numThreads; }
EXPORT int64_t fake_model_last_past_len(void) { return lastPastLength; }
EXPORT int64_t fake_model_last_sequence_length(void) {
  return lastSequenceLength;
}
EXPORT int64_t fake_model_last_logits_per_row(void) {
  return lastLogitsPerRow;
}
EXPORT int64_t fake_model_last_cache_capacity(void) {
  return lastCacheCapacity;
}

/* Dense row-major, offset 0, allocated == aligned, non-null. */
static int isDense(void *allocated, void *aligned, int64_t offset,
                   const int64_t *sizes, const int64_t *strides, int rank) {
  int64_t expected = 1;
  if (!aligned || allocated != aligned || offset != 0)
    return 0;
  for (int dim = rank - 1; dim >= 0; --dim) {
    if (sizes[dim] < 0 || strides[dim] != expected)
      return 0;
    expected *= sizes[dim];
  }
  return 1;
}

#define IS_DENSE(m, rank)                                                      \
  isDense((m)->allocated, (m)->aligned, (m)->offset, (m)->sizes, (m)->strides, \
          rank)

static float *cacheAt(MemRef5 *cache, int64_t layer, int64_t row, int64_t head,
                      int64_t position, int64_t dim) {
  return (float *)cache->aligned + cache->offset + layer * cache->strides[0] +
         row * cache->strides[1] + head * cache->strides[2] +
         position * cache->strides[3] + dim * cache->strides[4];
}

static int checkArguments(MemRef2 *ids, MemRef2 *positions, MemRef1 *pastLens,
                          MemRef5 *keys, MemRef5 *values,
                          MemRef2 *logitPositions, MemRef1 *weights) {
  int64_t batch = ids->sizes[0], seq = ids->sizes[1];
  if (!IS_DENSE(ids, 2) || !IS_DENSE(positions, 2) || !IS_DENSE(pastLens, 1) ||
      !IS_DENSE(keys, 5) || !IS_DENSE(values, 5) ||
      !IS_DENSE(logitPositions, 2) || !IS_DENSE(weights, 1))
    return 0;
  if (batch < 1 || seq < 1 || positions->sizes[0] != batch ||
      positions->sizes[1] != seq || pastLens->sizes[0] != batch ||
      logitPositions->sizes[0] != batch || logitPositions->sizes[1] < 1)
    return 0;
  for (int64_t i = 0; i < batch * logitPositions->sizes[1]; ++i) {
    int64_t position = ((int64_t *)logitPositions->aligned)[i];
    if (position < 0 || position >= seq)
      return 0;
  }
  for (int dim = 0; dim < 5; ++dim)
    if (keys->sizes[dim] != values->sizes[dim])
      return 0;
  if (keys->sizes[0] != FAKE_LAYERS || keys->sizes[1] != batch ||
      keys->sizes[2] != FAKE_KV_HEADS || keys->sizes[4] != FAKE_HEAD_DIM)
    return 0;
  if (weights->sizes[0] < 2)
    return 0;
  for (int64_t b = 0; b < batch; ++b) {
    int64_t pastLen = ((int64_t *)pastLens->aligned)[b];
    if (pastLen < 0 || pastLen + seq > keys->sizes[3])
      return 0;
    for (int64_t s = 0; s < seq; ++s) {
      int64_t id = ((int64_t *)ids->aligned)[b * ids->strides[0] + s];
      int64_t position =
          ((int64_t *)positions->aligned)[b * positions->strides[0] + s];
      if (id < 0 || id >= FAKE_VOCAB_SIZE || position != pastLen + s)
        return 0;
    }
    /* Rows written by earlier calls must be intact. */
    for (int64_t row = 0; row < pastLen; ++row)
      for (int64_t l = 0; l < FAKE_LAYERS; ++l)
        for (int64_t k = 0; k < FAKE_KV_HEADS; ++k)
          for (int64_t d = 0; d < FAKE_HEAD_DIM; ++d) {
            float key = *cacheAt(keys, l, b, k, row, d);
            float base = fakeKey(0, l, k, d);
            if (key < base || key >= base + FAKE_VOCAB_SIZE ||
                key != floorf(key) ||
                *cacheAt(values, l, b, k, row, d) != fakeValue(row, l, k, d))
              return 0;
          }
  }
  return 1;
}

/* Fills `logits` the way MLIR returns a dynamically shaped memref: a
 * malloc()ed block the caller frees through `allocated`, here with `aligned`
 * past `allocated` and a non-zero `offset`. */
static int allocateLogits(MemRef3 *logits, int64_t batch, int64_t seq) {
  const int64_t offset = 5;
  size_t count = (size_t)(batch * seq * FAKE_VOCAB_SIZE);
  char *block = allocate((count + (size_t)offset) * sizeof(float) + 64);
  if (!block)
    return 0;
  logits->allocated = block;
  logits->aligned = (void *)(((uintptr_t)block + 64) & ~(uintptr_t)63);
  logits->offset = offset;
  logits->sizes[0] = batch;
  logits->sizes[1] = seq;
  logits->sizes[2] = FAKE_VOCAB_SIZE;
  logits->strides[0] = seq * FAKE_VOCAB_SIZE;
  logits->strides[1] = FAKE_VOCAB_SIZE;
  logits->strides[2] = 1;
  return 1;
}

EXPORT void _mlir_ciface_forward(MemRef3 *logits, MemRef2 *ids,
                                 MemRef2 *positions, MemRef1 *pastLens,
                                 MemRef5 *keys, MemRef5 *values,
                                 MemRef2 *logitPositions, MemRef1 *weights) {
  int64_t batch = ids->sizes[0], seq = ids->sizes[1];
  /* The positions whose logits are asked for, per row. */
  int64_t chosen = logitPositions->sizes[1];
  ++callCount;
  lastPastLength = pastLens->sizes[0] > 0 ? ((int64_t *)pastLens->aligned)[0] : -1;
  lastSequenceLength = seq;
  lastLogitsPerRow = chosen;
  lastCacheCapacity = keys->sizes[3];
  if (!checkArguments(ids, positions, pastLens, keys, values, logitPositions,
                      weights)) {
    ++abiErrorCount;
    /* Poison the logits so that tests fail loudly too. */
    if (batch >= 0 && chosen >= 0 && allocateLogits(logits, batch, chosen))
      for (int64_t i = 0; i < batch * chosen * FAKE_VOCAB_SIZE; ++i)
        ((float *)logits->aligned)[logits->offset + i] = NAN;
    return;
  }
  if (!allocateLogits(logits, batch, chosen))
    return;
  if (falcon_runtime_imports.version) {
    /* A workspace block held across the call, as a compiled forward holds
     * its intermediate tensors. */
    float *scratch = allocate(FAKE_SCRATCH_BYTES);
    falcon_runtime_imports.trace_begin(falcon_runtime_imports.context,
                                       "fake.forward");
    if (scratch) {
      for (int64_t i = 0; i < FAKE_SCRATCH_BYTES / (int64_t)sizeof(float); ++i)
        scratch[i] = (float)i;
      lastAllReduceResult = falcon_runtime_imports.all_reduce_sum_f32(
          falcon_runtime_imports.context, scratch,
          FAKE_SCRATCH_BYTES / (int64_t)sizeof(float));
      /* At world size 1 the sum over ranks is the data itself. */
      if (scratch[3] != 3.0f)
        lastAllReduceResult = -2;
      release(scratch);
    }
    falcon_runtime_imports.trace_end(falcon_runtime_imports.context);
  }

  const uint8_t *weightBytes = (const uint8_t *)weights->aligned;
  int64_t weightSize = weights->sizes[0];
  /* Reads both ends of the weights: a wrong pointer or size shows. */
  int64_t salt = weightBytes[0] + weightBytes[weightSize - 1];
  int ties = weightBytes[1] == FAKE_TIE_MARKER;
  if (weightBytes[2] == FAKE_BAD_SHAPE_MARKER)
    logits->sizes[2] = FAKE_VOCAB_SIZE - 1;

  for (int64_t b = 0; b < batch; ++b) {
    /* Causal: position s sees rows 0 .. pastLen+s, the earlier ones from the
     * cache alone. */
    int64_t pastLen = ((int64_t *)pastLens->aligned)[b];
    int64_t idSum = 0;
    for (int64_t row = 0; row < pastLen; ++row)
      idSum += (int64_t)(*cacheAt(keys, 0, b, 0, row, 0) - fakeKey(0, 0, 0, 0));
    for (int64_t s = 0; s < seq; ++s) {
      int64_t id = ((int64_t *)ids->aligned)[b * ids->strides[0] + s];
      int64_t position = pastLen + s;
      for (int64_t l = 0; l < FAKE_LAYERS; ++l)
        for (int64_t k = 0; k < FAKE_KV_HEADS; ++k)
          for (int64_t d = 0; d < FAKE_HEAD_DIM; ++d) {
            *cacheAt(keys, l, b, k, position, d) = fakeKey(id, l, k, d);
            *cacheAt(values, l, b, k, position, d) =
                fakeValue(position, l, k, d);
          }
      idSum +=
          (int64_t)(*cacheAt(keys, 0, b, 0, position, 0) - fakeKey(0, 0, 0, 0));
      int64_t target = fakeTarget(idSum, position, salt);
      for (int64_t r = 0; r < chosen; ++r) {
        if (((int64_t *)logitPositions->aligned)[b * chosen + r] != s)
          continue;
        float *row = (float *)logits->aligned + logits->offset +
                     b * logits->strides[0] + r * logits->strides[1];
        for (int64_t v = 0; v < FAKE_VOCAB_SIZE; ++v)
          row[v * logits->strides[2]] = ties ? 0.0f : fakeLogit(v, target);
      }
    }
  }
}

/* result = values * factor (f32 [n], returned with stride 2 through the
 * table or malloc), and values += 1 in place: a launch target with an input
 * the callee writes and a strided result. */
EXPORT void _mlir_ciface_fake_scale(MemRef1 *result, MemRef1 *values,
                                    int64_t factor) {
  int64_t count = values->sizes[0];
  float *input = (float *)values->aligned + values->offset;
  float *block = allocate((size_t)(2 * count + 1) * sizeof(float));
  result->allocated = block;
  result->aligned = block;
  result->offset = 1;
  result->sizes[0] = count;
  result->strides[0] = 2;
  for (int64_t i = 0; i < count; ++i) {
    float value = input[i * values->strides[0]];
    if (block)
      block[1 + 2 * i] = value * (float)factor;
    input[i * values->strides[0]] = value + 1.0f;
  }
}
