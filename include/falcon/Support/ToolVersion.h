//===- ToolVersion.h - `--version` of every falcon-mlir tool ----*- C++ -*-===//
//
// One helper for falcon-compile, falcon-opt, falcon-run and falcon-tokenize:
//
//   falcon-compile (falcon-mlir) 0.4.0 (commit abc1234)
//   Debian LLVM version 22.1.8
//     Optimized build.
//
// The version and commit come from the generated falcon/Version.h, included
// only by lib/Support/Version.cpp (library FalconVersion): a new commit
// recompiles that one file, not the tools.
//
//===----------------------------------------------------------------------===//

#ifndef FALCON_SUPPORT_TOOLVERSION_H
#define FALCON_SUPPORT_TOOLVERSION_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/raw_ostream.h"

#include <functional>

namespace falcon {

/// "0.4.0": the project version (CMake's PROJECT_VERSION).
const char *getVersionString();
/// The git commit built: a short hash, "+dirty" when tracked files differed,
/// "unknown" outside a git checkout.
const char *getGitCommit();

/// Prints "TOOL (falcon-mlir) VERSION (commit HASH)\n" to `os`.
void printToolVersion(llvm::raw_ostream &os, llvm::StringRef toolName);

/// Makes `--version` print the line above, then `extra`'s lines (if any),
/// then LLVM's version. Call before the command line is parsed (before
/// cl::ParseCommandLineOptions or MlirOptMain).
void setToolVersionPrinter(llvm::StringRef toolName,
                           std::function<void(llvm::raw_ostream &)> extra = {});

} // namespace falcon

#endif // FALCON_SUPPORT_TOOLVERSION_H
