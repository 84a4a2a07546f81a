/*===- complete.c - text in, text out with libfalcon_runtime --------------===*
 *
 * usage: complete ARTIFACT_DIR "PROMPT" [TEMPERATURE SEED]
 *
 * Encodes the prompt with the artifact's tokenizer, generates up to 32
 * tokens with falcon_session_generate (greedy, or sampled at TEMPERATURE with
 * top-p 0.95 and SEED), stops at the end-of-sequence id 11
 * (<|endoftext|> of examples/falcon-mini), and streams the text from the
 * token callback as it is produced. Built and run by
 * test/Runtime/embed-example.test and test/Install/install.test.
 *
 *===----------------------------------------------------------------------===*/

#include "falcon/runtime.h"
#include "falcon/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { kMaxNewTokens = 32, kEndOfText = 11 };

static int check(falcon_status_t status) {
  if (!status)
    return 0;
  fprintf(stderr, "error: %s\n", falcon_status_message(status));
  falcon_status_free(status);
  return 1;
}

/* The streaming state: every id so far, and how much of their text is out. */
typedef struct {
  const falcon_tokenizer_t *tokenizer;
  int64_t ids[kMaxNewTokens];
  int64_t count;
  size_t length, printed;
  char text[4096];
} Stream;

/* Called with each new token as soon as it is chosen. The text of all ids
 * is decoded again, and what is new is printed: a character whose bytes span
 * two tokens decodes as U+FFFD until its last byte arrives, so a trailing
 * U+FFFD waits. */
static int onToken(void *userData, int64_t row, int64_t id) {
  Stream *stream = userData;
  (void)row;
  if (id == kEndOfText)
    return 1;
  stream->ids[stream->count++] = id;
  if (check(falcon_tokenizer_decode(stream->tokenizer, stream->ids, (size_t)stream->count,
                                    true, stream->text, sizeof(stream->text), &stream->length)))
    return 1;
  size_t end = stream->length;
  if (end >= 3 && memcmp(stream->text + end - 3, "\xEF\xBF\xBD", 3) == 0)
    end -= 3;
  if (end > stream->printed) {
    fwrite(stream->text + stream->printed, 1, end - stream->printed, stdout);
    fflush(stdout);
    stream->printed = end;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 3 && argc != 5) {
    fprintf(stderr, "usage: %s ARTIFACT_DIR PROMPT [TEMPERATURE SEED]\n", argv[0]);
    return 2;
  }
  falcon_tokenizer_t *tokenizer = NULL;
  falcon_model_t *model = NULL;
  falcon_session_t *session = NULL;
  int64_t prompt[256];
  size_t promptLength = 0;
  int rc = 1;
  if (check(falcon_tokenizer_open(argv[1], &tokenizer)) ||
      check(falcon_tokenizer_encode(tokenizer, argv[2], strlen(argv[2]), false, prompt,
                                    sizeof(prompt) / sizeof(prompt[0]), &promptLength)) ||
      check(falcon_model_open(argv[1], /*options=*/NULL, &model)))
    goto done;

  falcon_session_options_t sessionOptions;
  falcon_session_options_initialize(&sessionOptions);
  sessionOptions.cache_capacity = (int64_t)promptLength + kMaxNewTokens;
  if (check(falcon_session_create(model, &sessionOptions, &session)))
    goto done;

  Stream stream = {tokenizer, {0}, 0, 0, 0, {0}};
  falcon_generate_options_t options;
  falcon_generate_options_initialize(&options);
  options.max_new_tokens = kMaxNewTokens;
  if (argc == 5) {
    options.sampling.temperature = strtod(argv[3], NULL);
    options.sampling.top_p = 0.95;
    options.sampling.seed = strtoull(argv[4], NULL, 10);
  }
  const int64_t stop = kEndOfText;
  options.stop_token_ids = &stop;
  options.stop_token_count = 1;
  options.token_callback = onToken;
  options.user_data = &stream;
  int64_t ids[kMaxNewTokens];
  falcon_generate_outputs_t outputs = {ids, kMaxNewTokens, NULL, NULL, 0, NULL, 0, NULL};
  if (check(falcon_session_generate(session, prompt, /*prompt_lengths=*/NULL, 1,
                                    (int64_t)promptLength, &options, &outputs)))
    goto done;
  /* What a trailing U+FFFD held back. */
  fwrite(stream.text + stream.printed, 1, stream.length - stream.printed, stdout);
  printf("\n");
  rc = 0;
done:
  falcon_session_release(session);
  falcon_model_release(model);
  falcon_tokenizer_release(tokenizer);
  return rc;
}
