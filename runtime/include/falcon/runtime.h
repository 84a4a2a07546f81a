/*===- runtime.h - falcon-mlir runtime C API ----------------------*- C -*-===*\
|*                                                                            *|
|* Opens an artifact written by falcon-compile (docs/artifact-format.md) and  *|
|* runs it: prefill, decode and greedy generation over a KV cache.            *|
|*                                                                            *|
\*===----------------------------------------------------------------------===*/

/* Conventions (after IREE's runtime API):
 *
 *  - Every fallible call returns a falcon_status_t. NULL means success; any
 *    other value is an error the caller owns and must pass to
 *    falcon_status_free(). The message names the file, key, value or limit
 *    that is wrong. No call aborts or exits the process on bad input.
 *  - Outputs are `out_*` parameters and come last. On error, `out_*` handles
 *    are set to NULL and nothing the call allocated is left behind.
 *  - Handles are opaque. `*_open` / `*_create` return an object with one
 *    reference that the caller owns; `*_retain` adds one, `*_release` drops
 *    one and frees the object with the last. Releasing NULL is a no-op.
 *  - Option structs are filled with defaults by `*_options_initialize()`;
 *    passing NULL for options means the defaults.
 *  - Functions that cannot fail (status accessors, `*_release`) return plain
 *    values.
 *
 * Thread safety: a model may be shared by any number of threads and sessions.
 * A session must be used by one thread at a time; separate sessions of one
 * model may run concurrently.
 */

#ifndef FALCON_RUNTIME_H
#define FALCON_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define FALCON_API_EXPORT __declspec(dllexport)
#else
#define FALCON_API_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/*===----------------------------------------------------------------------===*
 * Version
 *===----------------------------------------------------------------------===*/

/* The version of this library, "MAJOR.MINOR.PATCH" (e.g. "0.4.0"; the
 * SONAME is libfalcon_runtime.so.MAJOR). A static string; never fails. */
FALCON_API_EXPORT const char *falcon_runtime_version(void);

/*===----------------------------------------------------------------------===*
 * Status
 *===----------------------------------------------------------------------===*/

/* Error codes; the numbering follows absl/IREE so that the values are
 * familiar. */
typedef enum falcon_status_code_e {
  FALCON_STATUS_OK = 0,
  /* A caller-supplied value is invalid (NULL pointer, bad batch size, ...). */
  FALCON_STATUS_INVALID_ARGUMENT = 3,
  /* A file of the artifact does not exist. */
  FALCON_STATUS_NOT_FOUND = 5,
  /* Memory could not be allocated. */
  FALCON_STATUS_RESOURCE_EXHAUSTED = 8,
  /* The artifact is malformed or inconsistent (manifest JSON, missing keys,
   * weights.bin size, entry point missing from the host library). */
  FALCON_STATUS_FAILED_PRECONDITION = 9,
  /* A token id outside [0, vocab_size), or a request that does not fit the
   * KV-cache capacity. */
  FALCON_STATUS_OUT_OF_RANGE = 11,
  /* A format version or dtype this runtime does not implement. */
  FALCON_STATUS_UNIMPLEMENTED = 12,
  /* An unexpected system failure (mmap, ...). */
  FALCON_STATUS_INTERNAL = 13,
  /* A device or host library that cannot be loaded. */
  FALCON_STATUS_UNAVAILABLE = 14,
  /* weights.bin does not match its checksum. */
  FALCON_STATUS_DATA_LOSS = 15,
} falcon_status_code_t;

/* NULL on success; otherwise an owned error object. */
typedef struct falcon_status_object_t *falcon_status_t;

/* The code of `status`; FALCON_STATUS_OK for NULL. */
FALCON_API_EXPORT falcon_status_code_t
falcon_status_code(falcon_status_t status);

/* The message of `status` ("OK" for NULL). The string is owned by the status
 * and valid until falcon_status_free(). */
FALCON_API_EXPORT const char *falcon_status_message(falcon_status_t status);

/* A constant name for `code`, e.g. "OUT_OF_RANGE"; "UNKNOWN" for any other
 * value. Takes an int so that any value a caller passes is defined behaviour
 * (a falcon_status_code_t argument converts implicitly). */
FALCON_API_EXPORT const char *falcon_status_code_string(int code);

/* Frees `status`; NULL is a no-op. */
FALCON_API_EXPORT void falcon_status_free(falcon_status_t status);

/*===----------------------------------------------------------------------===*
 * Model: an opened artifact directory
 *===----------------------------------------------------------------------===*/

typedef struct falcon_model_t falcon_model_t;

/* The most threads a model may be opened with. */
#define FALCON_MAX_THREADS 1024

typedef struct falcon_model_options_t {
  /* Device to run on. Only "cpu" exists in this build; anything else is
   * FALCON_STATUS_UNAVAILABLE. Default "cpu". The string is copied. */
  const char *device;
  /* Verify the checksum of weights.bin (XXH3-64 over 64 MiB chunks, on every
   * hardware thread) when opening (reads the whole file once). Default true;
   * the size is always checked. */
  bool verify_checksum;
  /* Threads the compiled code's parallel loops use (OpenMP); 0 (the default)
   * leaves OpenMP's own choice (OMP_NUM_THREADS, else every core). Must be
   * in [0, FALCON_MAX_THREADS]; with 0, OMP_NUM_THREADS, when set, must be a
   * comma-separated list of counts in [1, FALCON_MAX_THREADS] (OpenMP would
   * abort the process on other values). */
  int32_t num_threads;
  /* Called while the checksum of a weights.bin of 1 GiB or more is
   * verified, with the bytes verified so far and the file size (the last
   * call has both equal), on the thread that called falcon_model_open; the
   * runtime itself never prints. NULL (the default): no calls. */
  void (*verify_progress)(void *user_data, uint64_t done_bytes,
                          uint64_t total_bytes);
  /* Passed to verify_progress. Default NULL. */
  void *verify_progress_user_data;
  /* This process's rank in the artifact's parallel plan and the number of
   * ranks running it (tp x pp of the manifest's plan; rank r is stage r / tp,
   * tensor slot r % tp). Defaults 0 and 1. With world_size > 1 the ranks
   * talk over MPI: every rank opens the model and then makes the same
   * session calls with the same arguments, in the same order (SPMD). */
  int32_t rank;
  int32_t world_size;
  /* With world_size > 1: a pointer to the MPI_Comm (from <mpi.h>) whose
   * ranks run the plan, rank for rank; the runtime duplicates it. NULL (the
   * default): MPI_COMM_WORLD, initializing MPI if the program has not (as
   * under `mpirun -np N falcon-run ...`). */
  const void *mpi_communicator;
  /* The most bytes the compiled code may hold at once for its own work
   * (activations, attention blocks, logits: the workspace); a call that
   * would need more fails with FALCON_STATUS_RESOURCE_EXHAUSTED naming the
   * bytes, as does one the machine's memory cannot hold. 0 (the default):
   * no limit but the machine's. */
  uint64_t workspace_limit_bytes;
} falcon_model_options_t;

FALCON_API_EXPORT void
falcon_model_options_initialize(falcon_model_options_t *out_options);

/* Opens the artifact directory `artifact_dir`: parses manifest.json, maps
 * weights.bin read-only and checks its size and checksum against the
 * manifest, loads the host library and resolves the entry point. `options`
 * may be NULL. The caller owns the returned reference. */
FALCON_API_EXPORT falcon_status_t falcon_model_open(
    const char *artifact_dir, const falcon_model_options_t *options,
    falcon_model_t **out_model);

FALCON_API_EXPORT void falcon_model_retain(falcon_model_t *model);

/* Drops a reference; the last one (sessions hold one each) unmaps the weights
 * and unloads the host library. */
FALCON_API_EXPORT void falcon_model_release(falcon_model_t *model);

typedef struct falcon_model_info_t {
  /* manifest "model"; "" when absent. Owned by the model. */
  const char *name;
  /* manifest "config". */
  int64_t vocab_size;
  int64_t hidden_size;
  int64_t num_layers;
  int64_t num_attention_heads;
  int64_t num_kv_heads;
  int64_t head_dim;
  int64_t max_position_embeddings;
  bool alibi;
  /* manifest "kv_cache": the cache geometry the entry point expects. */
  int64_t kv_cache_layers;
  int64_t kv_cache_heads;
  int64_t kv_cache_head_dim;
  /* manifest "weights". */
  uint64_t weights_size;
  uint64_t weights_checksum;
  /* Seconds falcon_model_open spent mapping this rank's weights and
   * verifying their checksum. */
  double weights_open_seconds;
} falcon_model_info_t;

FALCON_API_EXPORT falcon_status_t falcon_model_query_info(
    const falcon_model_t *model, falcon_model_info_t *out_info);

/*===----------------------------------------------------------------------===*
 * Session: a KV cache for a fixed batch size and capacity
 *===----------------------------------------------------------------------===*/

typedef struct falcon_session_t falcon_session_t;

typedef struct falcon_session_options_t {
  /* Rows processed together; every call passes exactly this many. Default 1.
   */
  int64_t batch_size;
  /* Tokens per row the KV cache holds, at least 1; it may exceed
   * max_position_embeddings (Falcon has no position table). 0 (the default)
   * means max_position_embeddings. */
  int64_t cache_capacity;
  /* A pipeline plan runs each call's rows in this many groups (at most one
   * per row), so that stage s works on group g + 1 while stage s + 1 works
   * on group g; each group has its own share of the KV cache. 0 (the
   * default): one per pipeline stage. The results do not depend on it. */
  int64_t micro_batches;
} falcon_session_options_t;

FALCON_API_EXPORT void
falcon_session_options_initialize(falcon_session_options_t *out_options);

/* Allocates a KV cache of [layers, batch_size, kv_heads, cache_capacity,
 * head_dim] floats for keys and for values. The session retains `model`.
 * `options` may be NULL. The caller owns the returned reference. */
FALCON_API_EXPORT falcon_status_t falcon_session_create(
    falcon_model_t *model, const falcon_session_options_t *options,
    falcon_session_t **out_session);

FALCON_API_EXPORT void falcon_session_release(falcon_session_t *session);

/* Empties the KV cache (length 0) without freeing it. */
FALCON_API_EXPORT falcon_status_t
falcon_session_reset(falcon_session_t *session);

typedef struct falcon_session_info_t {
  int64_t batch_size;
  int64_t cache_capacity;
  /* Tokens of the longest row currently in the cache. Rows differ after
   * falcon_session_generate with prompts of different lengths
   * (falcon_session_query_row_lengths gives each). */
  int64_t length;
} falcon_session_info_t;

FALCON_API_EXPORT falcon_status_t falcon_session_query_info(
    const falcon_session_t *session, falcon_session_info_t *out_info);

/* Tokens of the longest row currently in the cache. */
FALCON_API_EXPORT falcon_status_t falcon_session_query_length(
    const falcon_session_t *session, int64_t *out_length);

/* Tokens of each row currently in the cache: `out_lengths` has room for
 * `capacity` >= batch_size values and receives [batch_size]. */
FALCON_API_EXPORT falcon_status_t falcon_session_query_row_lengths(
    const falcon_session_t *session, size_t capacity, int64_t *out_lengths);

/* The f16 precision guard (an artifact compiled with --dtype f16): a call
 * whose f16 rounding of a layer's activations overflowed runs again with that
 * layer in bf16, and the layer stays in bf16 for the session's later calls.
 * `*out_count` receives num_layers + 1 (the layers, then the LM head's input),
 * or 0 for an artifact without the guard; `out_fallbacks` (room for `capacity`
 * bytes; may be NULL when the count is 0) receives 1 for each that runs in
 * bf16 now, else 0. */
FALCON_API_EXPORT falcon_status_t falcon_session_query_precision_fallbacks(
    const falcon_session_t *session, size_t capacity, uint8_t *out_fallbacks,
    size_t *out_count);

/* Appends `sequence_length` tokens per row to the cache. `token_ids` is
 * [batch_size, sequence_length] row-major; every row gets the same number of
 * tokens, each after its own row's tokens (positions continue from each
 * row's length), so a prompt can be prefilled in chunks. Requires
 * longest row + sequence_length <= cache_capacity. `out_logits` is NULL or room for `logits_capacity` floats, at
 * least batch_size * sequence_length * vocab_size; it receives the logits
 * [batch_size, sequence_length, vocab_size]. On error the session is
 * unchanged. */
FALCON_API_EXPORT falcon_status_t falcon_session_prefill(
    falcon_session_t *session, const int64_t *token_ids, int64_t batch_size,
    int64_t sequence_length, size_t logits_capacity, float *out_logits);

/* Appends one token per row (`token_ids` is [batch_size]); requires the
 * longest row to be shorter than cache_capacity. `out_logits` is
 * NULL or room for `logits_capacity` >= batch_size * vocab_size floats and
 * receives the logits [batch_size, vocab_size]. On error the session is
 * unchanged. */
FALCON_API_EXPORT falcon_status_t falcon_session_decode(
    falcon_session_t *session, const int64_t *token_ids, int64_t batch_size,
    size_t logits_capacity, float *out_logits);

typedef struct falcon_generate_stats_t {
  /* Tokens (all rows) processed by the prefill and its wall time. */
  int64_t prefill_tokens;
  double prefill_seconds;
  /* Tokens (all rows) processed by decode steps and their wall time. The
   * first new token of a row comes from the prefill, so a request for N new
   * tokens makes N-1 decode steps. */
  int64_t decode_tokens;
  double decode_seconds;
  /* The most bytes the compiled code held at once through the runtime's
   * import table (its workspace: activations, attention scores, logits),
   * and the most bytes of device buffers (KV cache, inputs, outputs), over
   * the model's life so far. */
  uint64_t workspace_peak_bytes;
  uint64_t buffer_peak_bytes;
  /* With several ranks, the wall time of this call spent in collectives:
   * the compiled code's all-reduces (tensor parallel) and their count, and
   * the runtime's transfers (hidden states between pipeline stages, logits
   * to rank 0, the chosen tokens from it). 0 for one rank. */
  double all_reduce_seconds;
  int64_t all_reduces;
  double transfer_seconds;
} falcon_generate_stats_t;

/* Greedy generation: prefills `prompt_ids` ([batch_size, prompt_length])
 * after whatever the cache already holds, then picks the argmax token (the
 * lowest id on ties) and feeds it back until `max_new_tokens` tokens per row
 * exist. It does not stop at any end-of-sequence token. Requires
 * length + prompt_length + max_new_tokens <= cache_capacity; afterwards the
 * cache holds prompt_length + max_new_tokens - 1 more tokens per row (the
 * last new token has not been fed back).
 *
 * `out_ids` receives [batch_size, max_new_tokens] (prompt excluded) and must
 * have room for `ids_capacity` >= batch_size * max_new_tokens values (it may
 * be NULL when max_new_tokens is 0). `out_prompt_logits` is NULL or room for
 * `prompt_logits_capacity` >= batch_size * prompt_length * vocab_size floats
 * and receives the prefill logits. `out_step_logits` is NULL or room for
 * `step_logits_capacity` >= batch_size * max_new_tokens * vocab_size floats
 * and receives, for every new token, the logits it was chosen from (the
 * prefill's last position for the first one, then each decode step's): what
 * a full forward over the prompt and the new tokens gives at those
 * positions. `out_stats` may be NULL. The request is
 * checked completely before anything runs, so an invalid one leaves the
 * session unchanged; only a misbehaving host library (FALCON_STATUS_INTERNAL)
 * can fail midway, and then the length counts the steps that completed. */
FALCON_API_EXPORT falcon_status_t falcon_session_generate_greedy(
    falcon_session_t *session, const int64_t *prompt_ids, int64_t batch_size,
    int64_t prompt_length, int64_t max_new_tokens, size_t ids_capacity,
    size_t prompt_logits_capacity, size_t step_logits_capacity,
    int64_t *out_ids, float *out_prompt_logits, float *out_step_logits,
    falcon_generate_stats_t *out_stats);

/*===----------------------------------------------------------------------===*
 * Generation: prompts of different lengths, sampling, stops, streaming
 *===----------------------------------------------------------------------===*/

/* The logits processors of transformers' generate(), applied in its order
 * (repetition penalty, temperature, top-k, top-p, min-p), then a draw from
 * the resulting distribution (docs/sampling.md). Each setting's "off" value
 * adds no processor; the defaults (falcon_sampling_options_initialize) are
 * greedy decoding. */
typedef struct falcon_sampling_options_t {
  /* 0 = greedy: the largest logit, the lowest id on ties (only the
   * repetition penalty applies); otherwise > 0. Default 0. */
  double temperature;
  /* Keep the k most likely tokens (ties at the k-th value kept); 0 = off. */
  int64_t top_k;
  /* Keep the smallest set of most likely tokens whose probability reaches
   * top_p, in (0, 1]; 1 = off. */
  double top_p;
  /* Drop tokens less likely than min_p times the most likely, in [0, 1];
   * 0 = off. */
  double min_p;
  /* > 0; divides positive (multiplies negative) logits of every id already
   * in the row (prompt included); 1 = off. */
  double repetition_penalty;
  /* Seeds each row's random generator: the same seed, logits and settings
   * give the same tokens, on every platform. Every row starts from this
   * seed, so a row's tokens do not depend on the other rows. */
  uint64_t seed;
} falcon_sampling_options_t;

FALCON_API_EXPORT void
falcon_sampling_options_initialize(falcon_sampling_options_t *out_options);

/* Called with every new token as soon as it is chosen, row by row in row
 * order, step by step (the stop token included). Returning non-zero
 * finishes that row after this token (a stop string, say). With several
 * ranks it is called on every rank; rank 0's return value decides. */
typedef int (*falcon_token_callback_t)(void *user_data, int64_t row,
                                       int64_t token_id);

typedef struct falcon_generate_options_t {
  /* The most new tokens per row. Default 16. */
  int64_t max_new_tokens;
  falcon_sampling_options_t sampling;
  /* A row finishes after producing one of these `stop_token_count` ids (the
   * id is kept in its output); NULL/0: none. Default none. */
  const int64_t *stop_token_ids;
  int64_t stop_token_count;
  /* NULL (the default) or called with each new token. */
  falcon_token_callback_t token_callback;
  void *user_data;
} falcon_generate_options_t;

FALCON_API_EXPORT void
falcon_generate_options_initialize(falcon_generate_options_t *out_options);

/* Where falcon_session_generate puts its results; every pointer but `ids`
 * may be NULL. */
typedef struct falcon_generate_outputs_t {
  /* [batch_size, max_new_tokens]: row b's new tokens, then -1 after it
   * finished. Room for `ids_capacity` >= batch_size * max_new_tokens. */
  int64_t *ids;
  size_t ids_capacity;
  /* [batch_size]: how many new tokens each row produced. */
  int64_t *lengths;
  /* [batch_size, max_prompt_length, vocab_size]: the prefill's logits; a
   * row's positions at or past its prompt length hold no meaningful
   * values. Room for `prompt_logits_capacity` floats. */
  float *prompt_logits;
  size_t prompt_logits_capacity;
  /* [batch_size, max_new_tokens, vocab_size]: the logits each new token was
   * chosen from (before sampling's processors); untouched after a row
   * finished. Room for `step_logits_capacity` floats. */
  float *step_logits;
  size_t step_logits_capacity;
  falcon_generate_stats_t *stats;
} falcon_generate_outputs_t;

/* Generates after a batch of prompts of different lengths. `prompt_ids` is
 * [batch_size, max_prompt_length] row-major; row b's prompt is its first
 * `prompt_lengths[b]` ids, in [1, max_prompt_length] (the rest is padding
 * and not read). `prompt_lengths` NULL means every row has
 * max_prompt_length. Each row is prefilled after whatever the cache holds
 * for it, at its own positions, then decoded one token per step until it
 * produced `max_new_tokens`, a stop token, or its callback said stop; the
 * call returns when every row finished. A row's logits and tokens equal
 * that row's prompt generated alone (rows that finished keep decoding, their
 * results discarded, until the last row finishes).
 *
 * Requires, for every row b, length_b + max_prompt_length <= cache_capacity
 * (the padding is written too) and length_b + prompt_lengths[b] +
 * max_new_tokens <= cache_capacity. Everything is checked before anything
 * runs: an invalid request leaves the session unchanged. Afterwards row b
 * holds prompt_lengths[b] plus (its new tokens - 1) more tokens, plus one
 * more for every step it decoded after it finished. `options` may be NULL
 * (the defaults). */
FALCON_API_EXPORT falcon_status_t falcon_session_generate(
    falcon_session_t *session, const int64_t *prompt_ids,
    const int64_t *prompt_lengths, int64_t batch_size,
    int64_t max_prompt_length, const falcon_generate_options_t *options,
    const falcon_generate_outputs_t *outputs);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* FALCON_RUNTIME_H */
