/*===- generate.c - embedding libfalcon_runtime in a C program ------------===*
 *
 * usage: generate ARTIFACT_DIR TOKEN...
 *
 * Opens a compiled artifact, prefills the prompt, then decodes 8 tokens
 * greedily with falcon_session_decode, printing each id. Every error is a
 * status with a message. Built and run by test/Runtime/embed-example.test.
 *
 *===----------------------------------------------------------------------===*/

#include "falcon/runtime.h"

#include <stdio.h>
#include <stdlib.h>

static int check(falcon_status_t status) {
  if (!status)
    return 0;
  fprintf(stderr, "error: %s\n", falcon_status_message(status));
  falcon_status_free(status);
  return 1;
}

static int64_t argmax(const float *values, int64_t count) {
  int64_t best = 0;
  for (int64_t i = 1; i < count; ++i)
    if (values[i] > values[best])
      best = i;
  return best;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s ARTIFACT_DIR TOKEN...\n", argv[0]);
    return 2;
  }
  const int64_t promptLength = argc - 2, newTokens = 8;
  int64_t *prompt = malloc(sizeof(int64_t) * (size_t)promptLength);
  for (int64_t i = 0; i < promptLength; ++i)
    prompt[i] = strtoll(argv[i + 2], NULL, 10);

  falcon_model_t *model = NULL;
  falcon_session_t *session = NULL;
  float *logits = NULL;
  int rc = 1;
  if (check(falcon_model_open(argv[1], /*options=*/NULL, &model)))
    goto done;
  falcon_model_info_t info;
  if (check(falcon_model_query_info(model, &info)))
    goto done;

  falcon_session_options_t options;
  falcon_session_options_initialize(&options);
  options.cache_capacity = promptLength + newTokens;
  if (check(falcon_session_create(model, &options, &session)))
    goto done;

  /* The prefill returns the logits of every prompt position; the last one
   * predicts the first new token. */
  size_t capacity = (size_t)(promptLength * info.vocab_size);
  logits = malloc(sizeof(float) * capacity);
  if (check(falcon_session_prefill(session, prompt, 1, promptLength, capacity,
                                   logits)))
    goto done;
  int64_t next = argmax(logits + (promptLength - 1) * info.vocab_size,
                        info.vocab_size);
  for (int64_t step = 0; step < newTokens; ++step) {
    printf("%lld%s", (long long)next, step + 1 < newTokens ? " " : "\n");
    if (step + 1 == newTokens)
      break;
    if (check(falcon_session_decode(session, &next, 1, capacity, logits)))
      goto done;
    next = argmax(logits, info.vocab_size);
  }
  rc = 0;
done:
  free(logits);
  free(prompt);
  falcon_session_release(session);
  falcon_model_release(model);
  return rc;
}
