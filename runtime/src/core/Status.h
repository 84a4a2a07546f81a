//===- Status.h - falcon_status_t construction helpers ----------*- C++ -*-===//
//
// Internal helpers for building the status objects of the C API.
//
//===----------------------------------------------------------------------===//

#ifndef FALCON_RUNTIME_CORE_STATUS_H
#define FALCON_RUNTIME_CORE_STATUS_H

#include "falcon/runtime.h"

#include "llvm/ADT/Twine.h"

namespace falcon::runtime {

/// Returns a new error status with `code` and `message`. Never returns NULL:
/// when the status itself cannot be allocated, a static out-of-memory status
/// (which falcon_status_free ignores) stands in.
falcon_status_t makeStatus(falcon_status_code_t code,
                           const llvm::Twine &message);

/// Returns an INVALID_ARGUMENT status "FUNCTION: ARGUMENT is NULL".
falcon_status_t makeNullArgumentStatus(const char *function,
                                       const char *argument);

} // namespace falcon::runtime

/// Evaluates `expr` (a falcon_status_t) and returns it from the enclosing
/// function when it is an error.
#define FALCON_RETURN_IF_ERROR(expr)                                           \
  do {                                                                         \
    falcon_status_t falconStatusTmp = (expr);                                  \
    if (falconStatusTmp)                                                       \
      return falconStatusTmp;                                                  \
  } while (false)

#endif // FALCON_RUNTIME_CORE_STATUS_H
