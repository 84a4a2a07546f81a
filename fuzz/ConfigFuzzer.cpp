//===- ConfigFuzzer.cpp - fuzz the config.json parser ---------------------===//
//
// Parses the input as config.json and, when it is accepted, computes what the
// importer derives from it (weight names and shapes, parameter count).
//
//===----------------------------------------------------------------------===//

#include "falcon/Import/FalconConfig.h"

#include <cstdint>

using namespace mlir::falcon;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llvm::StringRef text(reinterpret_cast<const char *>(data), size);
  llvm::Expected<FalconConfig> config = parseFalconConfig(text, "config.json");
  if (!config) {
    llvm::consumeError(config.takeError());
    return 0;
  }
  (void)getParameterCount(*config);
  return 0;
}
