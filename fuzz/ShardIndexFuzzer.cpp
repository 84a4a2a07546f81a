//===- ShardIndexFuzzer.cpp - fuzz the model.safetensors.index.json parser ===//

#include "falcon/Import/Safetensors.h"

#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <cstdlib>

using namespace mlir::falcon;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llvm::StringRef text(reinterpret_cast<const char *>(data), size);
  llvm::Expected<ShardIndex> index = parseShardIndex(text, "model.safetensors.index.json");
  if (!index) {
    llvm::consumeError(index.takeError());
    return 0;
  }
  // Every shard the index names must be a plain file name in its directory.
  for (const std::string &shard : index->shards) {
    llvm::StringRef name = shard;
    if (name.empty() || name.contains('/') || name == "." || name == "..")
      std::abort();
  }
  return 0;
}
