//===- Status.cpp - falcon_status_t -----------------------------*- C++ -*-===//
//
// An error status is a heap object holding a code and a message. NULL means
// OK, so the success path allocates nothing.
//
//===----------------------------------------------------------------------===//

#include "core/Status.h"

#include "llvm/ADT/SmallString.h"

#include <cstdlib>
#include <cstring>
#include <new>

struct falcon_status_object_t {
  falcon_status_code_t code;
  char *message;
};

namespace {
// Returned when a status cannot be allocated; an error must never turn into
// a NULL (success) because memory ran out. It is never freed.
char outOfMemoryMessage[] = "out of memory while reporting an error";
falcon_status_object_t outOfMemoryStatus = {FALCON_STATUS_RESOURCE_EXHAUSTED,
                                            outOfMemoryMessage};
} // namespace

falcon_status_t falcon::runtime::makeStatus(falcon_status_code_t code,
                                            const llvm::Twine &message) {
  llvm::SmallString<256> buffer;
  llvm::StringRef text = message.toStringRef(buffer);
  auto *status = static_cast<falcon_status_object_t *>(
      std::malloc(sizeof(falcon_status_object_t)));
  char *copy = static_cast<char *>(std::malloc(text.size() + 1));
  if (!status || !copy) {
    std::free(status);
    std::free(copy);
    return &outOfMemoryStatus;
  }
  std::memcpy(copy, text.data(), text.size());
  copy[text.size()] = '\0';
  // An OK code on an error object would read as success to code checks.
  status->code = code == FALCON_STATUS_OK ? FALCON_STATUS_INTERNAL : code;
  status->message = copy;
  return status;
}

falcon_status_t falcon::runtime::makeNullArgumentStatus(const char *function,
                                                        const char *argument) {
  return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                    llvm::Twine(function) + ": " + argument + " is NULL");
}

falcon_status_code_t falcon_status_code(falcon_status_t status) {
  return status ? status->code : FALCON_STATUS_OK;
}

const char *falcon_status_message(falcon_status_t status) {
  return status ? status->message : "OK";
}

// An int, not the enum: C callers may pass any value, and loading a value
// outside the enumerators' range as the enum is undefined in C++.
const char *falcon_status_code_string(int code) {
  switch (code) {
  case FALCON_STATUS_OK:
    return "OK";
  case FALCON_STATUS_INVALID_ARGUMENT:
    return "INVALID_ARGUMENT";
  case FALCON_STATUS_NOT_FOUND:
    return "NOT_FOUND";
  case FALCON_STATUS_RESOURCE_EXHAUSTED:
    return "RESOURCE_EXHAUSTED";
  case FALCON_STATUS_FAILED_PRECONDITION:
    return "FAILED_PRECONDITION";
  case FALCON_STATUS_OUT_OF_RANGE:
    return "OUT_OF_RANGE";
  case FALCON_STATUS_UNIMPLEMENTED:
    return "UNIMPLEMENTED";
  case FALCON_STATUS_INTERNAL:
    return "INTERNAL";
  case FALCON_STATUS_UNAVAILABLE:
    return "UNAVAILABLE";
  case FALCON_STATUS_DATA_LOSS:
    return "DATA_LOSS";
  }
  return "UNKNOWN";
}

void falcon_status_free(falcon_status_t status) {
  if (!status || status == &outOfMemoryStatus)
    return;
  std::free(status->message);
  std::free(status);
}
