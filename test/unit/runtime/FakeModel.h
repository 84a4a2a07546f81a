/*===- FakeModel.h - geometry and math of the fake host library -*- C -*-===*\
|*                                                                          *|
|* Shared by FakeModel.c (the fake artifact's host library) and the tests,   *|
|* which predict its output independently of the runtime.                   *|
|*                                                                          *|
\*===----------------------------------------------------------------------===*/

#ifndef FALCON_TEST_UNIT_RUNTIME_FAKEMODEL_H
#define FALCON_TEST_UNIT_RUNTIME_FAKEMODEL_H

#include <stdint.h>

/* The geometry the fake was "compiled" for; the manifest must agree. */
#define FAKE_VOCAB_SIZE 256
#define FAKE_LAYERS 2
#define FAKE_KV_HEADS 2
#define FAKE_HEAD_DIM 4
#define FAKE_MAX_POSITIONS 64

/* The workspace block the fake forward allocates and frees through the
 * runtime import table when it is filled. */
#define FAKE_SCRATCH_BYTES 4096

/* weights.bin byte 1 set to this makes every logit equal (argmax ties). */
#define FAKE_TIE_MARKER 0xEE
/* weights.bin byte 2 set to this makes the fake return logits one column
 * short: a misbehaving host library. */
#define FAKE_BAD_SHAPE_MARKER 0xBD

/* What the fake writes into the key and value caches for the token `id` at
 * cache row `position`, in layer `layer`, kv head `head`, dimension `dim`.
 * Values are small integers, exact in float. */
static inline float fakeKey(int64_t id, int64_t layer, int64_t head,
                            int64_t dim) {
  return (float)(1000 * ((layer * FAKE_KV_HEADS + head) * FAKE_HEAD_DIM + dim) +
                 id);
}
static inline float fakeValue(int64_t position, int64_t layer, int64_t head,
                              int64_t dim) {
  return (float)(1000 * position +
                 (layer * FAKE_KV_HEADS + head) * FAKE_HEAD_DIM + dim);
}

/* The token the fake predicts at `position`, given the sum of the ids at rows
 * 0..position (read back from the cache) and the weights' salt. */
static inline int64_t fakeTarget(int64_t idSum, int64_t position,
                                 int64_t salt) {
  /* Quadratic in the position: a linear term would give the greedy sequence
   * a fixed point (t * 31 + 7 == 0 mod 256 for t = 231), after which a
   * wrong past_len could go unnoticed. */
  return (idSum * 31 + position * position * 7 + salt) % FAKE_VOCAB_SIZE;
}

/* logits[v] for a prediction of `target`: 0 at the target, distinct negative
 * values elsewhere, so the argmax is unique. */
static inline float fakeLogit(int64_t vocabId, int64_t target) {
  return -(float)((vocabId - target + FAKE_VOCAB_SIZE) % FAKE_VOCAB_SIZE);
}

#endif /* FALCON_TEST_UNIT_RUNTIME_FAKEMODEL_H */
