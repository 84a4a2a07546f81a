//===- Version.cpp - the version of the tools -------------------*- C++ -*-===//
//
// The only compiler-side includer of the generated falcon/Version.h (see
// falcon/Support/ToolVersion.h).
//
//===----------------------------------------------------------------------===//

#include "falcon/Support/ToolVersion.h"
#include "falcon/Version.h"

#include "llvm/Support/CommandLine.h"

#include <string>

const char *falcon::getVersionString() { return FALCON_VERSION_STRING; }

const char *falcon::getGitCommit() { return FALCON_GIT_COMMIT; }

void falcon::printToolVersion(llvm::raw_ostream &os, llvm::StringRef toolName) {
  os << toolName << " (falcon-mlir) " << FALCON_VERSION_STRING << " (commit "
     << FALCON_GIT_COMMIT << ")\n";
}

void falcon::setToolVersionPrinter(llvm::StringRef toolName,
                                   std::function<void(llvm::raw_ostream &)> extra) {
  llvm::cl::SetVersionPrinter(
      [name = toolName.str(), extra = std::move(extra)](llvm::raw_ostream &os) {
        printToolVersion(os, name);
        if (extra)
          extra(os);
        os.flush();
        // LLVM's own version block (its printer, not the override).
        llvm::cl::PrintVersionMessage();
      });
}
