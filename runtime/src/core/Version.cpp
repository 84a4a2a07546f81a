//===- Version.cpp - falcon_runtime_version ---------------------*- C++ -*-===//
//
// The runtime's only includer of the generated falcon/Version.h (a new commit
// recompiles this file alone).
//
//===----------------------------------------------------------------------===//

#include "falcon/runtime.h"
#include "falcon/Version.h"

const char *falcon_runtime_version(void) { return FALCON_VERSION_STRING; }
