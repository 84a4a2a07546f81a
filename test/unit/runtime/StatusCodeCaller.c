/*===- StatusCodeCaller.c - the C API called from C ---------------------===*
 *
 * falcon_status_code_string as a C program calls it: C converts any int to
 * the enum implicitly, so the runtime must accept values outside it.
 *
 *===--------------------------------------------------------------------===*/

#include "falcon/runtime.h"

const char *falcon_test_status_code_string_from_c(int code) {
  return falcon_status_code_string(code);
}
