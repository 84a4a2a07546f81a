//===- SafetensorsFuzzer.cpp - fuzz the safetensors header parser ---------===//
//
// The input is a whole .safetensors file: the 8-byte length, the JSON header
// and the data section, as parseSafetensorsHeader sees it after
// readSafetensorsHeader has read the file.
//
//===----------------------------------------------------------------------===//

#include "falcon/Import/Safetensors.h"

#include <cstdint>
#include <cstdlib>

using namespace mlir::falcon;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llvm::StringRef image(reinterpret_cast<const char *>(data), size);
  llvm::Expected<SafetensorsFile> file =
      parseSafetensorsHeader(image, size, "fuzz.safetensors");
  if (!file) {
    llvm::consumeError(file.takeError());
    return 0;
  }
  // What the parser promises: every tensor lies in the data section, is
  // exactly dtype x elements long, and the tensors tile it.
  uint64_t expectedBegin = file->dataOffset;
  for (const SafetensorsTensor &tensor : file->tensors) {
    if (tensor.begin != expectedBegin || tensor.end < tensor.begin || tensor.end > size)
      std::abort();
    if (uint64_t(tensor.numElements()) * getDTypeSize(tensor.dtype) !=
        tensor.end - tensor.begin)
      std::abort();
    expectedBegin = tensor.end;
  }
  if (expectedBegin != size)
    std::abort();
  return 0;
}
