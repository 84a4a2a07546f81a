//===- Safetensors.h - safetensors header reader ----------------*- C++ -*-===//
//
// Reads and validates the header of a `.safetensors` file (an 8-byte little-
// endian header length, a JSON header, then the data section) and the
// `model.safetensors.index.json` of sharded checkpoints. Tensor data is never
// read here.
//
//===----------------------------------------------------------------------===//
#ifndef FALCON_IMPORT_SAFETENSORS_H
#define FALCON_IMPORT_SAFETENSORS_H

#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace mlir::falcon {

enum class SafetensorsDType {
  F64, F32, F16, BF16, F8_E4M3, F8_E5M2,
  I64, I32, I16, I8, U64, U32, U16, U8, BOOL
};

/// Bytes per element of `dtype`.
unsigned getDTypeSize(SafetensorsDType dtype);
llvm::StringRef stringifyDType(SafetensorsDType dtype);

struct SafetensorsTensor {
  std::string name;
  SafetensorsDType dtype;
  llvm::SmallVector<int64_t, 4> shape;
  /// Absolute byte offsets of the data in `file` (header included).
  uint64_t begin = 0, end = 0;
  std::string file;

  int64_t numElements() const;
};

struct SafetensorsFile {
  std::string path;
  uint64_t fileSize = 0;
  /// Offset of the data section: 8 + header length.
  uint64_t dataOffset = 0;
  std::vector<SafetensorsTensor> tensors;
};

/// Validates a header. `prefix` holds at least the first 8 + N bytes of the
/// file (or all of it when shorter); `fileSize` is the real size on disk.
llvm::Expected<SafetensorsFile> parseSafetensorsHeader(llvm::StringRef prefix,
                                                       uint64_t fileSize,
                                                       llvm::StringRef path);
/// Reads only the header bytes of `path` and validates them.
llvm::Expected<SafetensorsFile> readSafetensorsHeader(llvm::StringRef path);

/// The tensors of a checkpoint by name, from one file or from the shards an
/// index file lists.
struct TensorIndex {
  /// The file the index was read from (model.safetensors or the index json).
  std::string source;
  llvm::StringMap<SafetensorsTensor> tensors;
  std::vector<std::string> files;
};

/// The weight map of a `model.safetensors.index.json`.
struct ShardIndex {
  /// (tensor name, shard file name), in file order.
  std::vector<std::pair<std::string, std::string>> weightMap;
  /// The distinct shard file names, sorted; each a plain file name.
  std::vector<std::string> shards;
};

/// Parses the text of an index file; `indexPath` names it in errors.
llvm::Expected<ShardIndex> parseShardIndex(llvm::StringRef text,
                                           llvm::StringRef indexPath);

/// Reads `model.safetensors.index.json` at `indexPath` and the headers of the
/// shards it names; every tensor the weight map names must be in its shard.
llvm::Expected<TensorIndex> readShardedCheckpoint(llvm::StringRef indexPath);
/// Reads the headers of a single-file checkpoint.
llvm::Expected<TensorIndex> readSingleFileCheckpoint(llvm::StringRef path);

/// The checkpoint files tensors are read from, each mapped once (the
/// artifact writer and the pruning calibration share it).
class MappedTensorFiles {
public:
  MappedTensorFiles();
  ~MappedTensorFiles();
  /// The stored bytes of `tensor`, its file mapped on first use; a file that
  /// cannot be read, or is now shorter than the tensor's end (changed since
  /// its header was read), is an error naming it.
  llvm::Expected<llvm::ArrayRef<uint8_t>> bytes(const SafetensorsTensor &tensor);

private:
  llvm::StringMap<std::unique_ptr<llvm::MemoryBuffer>> mapped;
};

} // namespace mlir::falcon

#endif // FALCON_IMPORT_SAFETENSORS_H
