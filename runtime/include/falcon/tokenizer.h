/*===- tokenizer.h - falcon-mlir tokenizer C API ------------------*- C -*-===*\
|*                                                                            *|
|* Encodes text to token ids and decodes ids to text with a Hugging Face      *|
|* tokenizer.json (byte-level BPE, as Falcon and GPT-2 use; docs/tokenizer.md *|
|* lists what is supported).                                                  *|
|*                                                                            *|
\*===----------------------------------------------------------------------===*/

/* Conventions are those of falcon/runtime.h: every fallible call returns a
 * falcon_status_t (NULL on success), outputs are `out_*` parameters and come
 * last, handles are opaque and released with falcon_tokenizer_release().
 *
 * Buffers: encode and decode write into caller-owned arrays. When the array
 * is too small (including a NULL array with capacity 0), nothing is written,
 * the call returns a FALCON_STATUS_OUT_OF_RANGE status and sets *out_count /
 * *out_length to the size needed, so that the caller can free the status,
 * grow the buffer and call again. On any other error they are set to 0.
 *
 * Thread safety: a tokenizer may be shared by threads. Concurrent encode
 * calls on one tokenizer are serialized (they share a cache of encoded
 * words); open one tokenizer per thread to encode in parallel. Decode and
 * the lookups never block.
 */

#ifndef FALCON_TOKENIZER_H
#define FALCON_TOKENIZER_H

#include "falcon/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct falcon_tokenizer_t falcon_tokenizer_t;

/* Opens `path`: a tokenizer.json file, or a directory holding one (such as a
 * compiled artifact directory). A file this runtime cannot reproduce exactly
 * (an unsupported normalizer, pre-tokenizer, model option, ...) is refused
 * with FALCON_STATUS_UNIMPLEMENTED and a one-line message naming the JSON path
 * and the feature; a malformed file with FALCON_STATUS_FAILED_PRECONDITION;
 * a missing one with FALCON_STATUS_NOT_FOUND. The caller owns the returned
 * tokenizer. */
FALCON_API_EXPORT falcon_status_t
falcon_tokenizer_open(const char *path, falcon_tokenizer_t **out_tokenizer);

/* Frees `tokenizer`; NULL is a no-op. */
FALCON_API_EXPORT void falcon_tokenizer_release(falcon_tokenizer_t *tokenizer);

/* Encodes the `length` bytes at `text` (UTF-8; need not be NUL-terminated)
 * into `out_ids[0 .. *out_count)`. Added tokens (such as `<|endoftext|>`) in
 * the text are matched before pre-tokenization, as Hugging Face does. With
 * `add_special_tokens`, the post-processor's template (if any) adds its
 * special tokens. Invalid UTF-8 is FALCON_STATUS_INVALID_ARGUMENT naming the
 * byte offset. See the buffer convention above. */
FALCON_API_EXPORT falcon_status_t falcon_tokenizer_encode(
    falcon_tokenizer_t *tokenizer, const char *text, size_t length,
    bool add_special_tokens, int64_t *out_ids, size_t ids_capacity,
    size_t *out_count);

/* Decodes `ids[0 .. count)` into `out_text[0 .. *out_length)` (not
 * NUL-terminated: the text may contain NUL bytes). Special tokens are
 * written as their content unless `skip_special_tokens`. Byte sequences that
 * are not valid UTF-8 (a character split across the ids) become U+FFFD, as
 * Hugging Face's decoder does, so decode whole sequences, not single ids of
 * a multi-byte character. An id outside [0, vocab_size) or one that no token
 * has is FALCON_STATUS_OUT_OF_RANGE naming the id (*out_length is then 0). See
 * the buffer convention above. */
FALCON_API_EXPORT falcon_status_t falcon_tokenizer_decode(
    const falcon_tokenizer_t *tokenizer, const int64_t *ids, size_t count,
    bool skip_special_tokens, char *out_text, size_t text_capacity,
    size_t *out_length);

/* The id of the token spelled `token` (NUL-terminated; added tokens as
 * written, vocabulary tokens in their byte-level form, e.g. "Ġthe");
 * FALCON_STATUS_NOT_FOUND when there is none. */
FALCON_API_EXPORT falcon_status_t falcon_tokenizer_token_to_id(
    const falcon_tokenizer_t *tokenizer, const char *token, int64_t *out_id);

/* One more than the largest id of the vocabulary and the added tokens; 0 for
 * NULL. */
FALCON_API_EXPORT int64_t
falcon_tokenizer_vocab_size(const falcon_tokenizer_t *tokenizer);

#ifdef __cplusplus
} // extern "C"
#endif

#endif // FALCON_TOKENIZER_H
