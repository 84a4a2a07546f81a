//===- ManifestFuzzer.cpp - fuzz the runtime's manifest.json parser -------===//

#include "core/Manifest.h"

#include "falcon/runtime.h"

#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llvm::StringRef text(reinterpret_cast<const char *>(data), size);
  falcon::runtime::Manifest manifest;
  falcon_status_t status =
      falcon::runtime::parseManifest(text, "manifest.json", manifest);
  if (status) {
    // An error is never reported as OK, and always has a message.
    if (falcon_status_code(status) == FALCON_STATUS_OK || !falcon_status_message(status))
      std::abort();
    (void)falcon_status_code_string(falcon_status_code(status));
    falcon_status_free(status);
    return 0;
  }
  // A file the runtime will open is a name in the artifact directory.
  for (const falcon::runtime::ManifestRank &rank : manifest.ranks) {
    for (llvm::StringRef name : {llvm::StringRef(rank.hostLibrary),
                                 llvm::StringRef(rank.weightsFile)})
      if (name.contains('/') || name == "." || name == "..")
        std::abort();
  }
  return 0;
}
