//===- Safetensors.cpp - safetensors header reader ------------------------===//
//
// Validates everything the header claims against the file before anyone maps
// the data, with the rules and caps of the reference `safetensors` library:
// the header length (at most 100 MB), unique tensor names, each tensor's
// dtype, shape and data offsets (integers as written, never floats, sized
// dtype x elements), and data offsets that, sorted, tile the data section
// exactly: no gap, no overlap, nothing after the last tensor.
//
//===----------------------------------------------------------------------===//

#include "falcon/Import/Safetensors.h"
#include "falcon/Support/Json.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <algorithm>

using namespace mlir::falcon;
using llvm::Expected;
using llvm::StringRef;

/// Upper bound on the JSON header: the reference's MAX_HEADER_SIZE.
static constexpr uint64_t kMaxHeaderSize = 100'000'000;

/// Upper bound on the entries of one header. The reference has none, but a
/// 100 MB header of a million zero-size tensors costs llvm::json gigabytes;
/// the largest Falcon checkpoints hold a few thousand tensors per file.
static constexpr size_t kMaxTensors = 100'000;

static llvm::Error makeError(StringRef path, const llvm::Twine &message) {
  return llvm::createStringError(path + ": " + message);
}

unsigned mlir::falcon::getDTypeSize(SafetensorsDType dtype) {
  switch (dtype) {
  case SafetensorsDType::F64:
  case SafetensorsDType::I64:
  case SafetensorsDType::U64:
    return 8;
  case SafetensorsDType::F32:
  case SafetensorsDType::I32:
  case SafetensorsDType::U32:
    return 4;
  case SafetensorsDType::F16:
  case SafetensorsDType::BF16:
  case SafetensorsDType::I16:
  case SafetensorsDType::U16:
    return 2;
  case SafetensorsDType::F8_E4M3:
  case SafetensorsDType::F8_E5M2:
  case SafetensorsDType::I8:
  case SafetensorsDType::U8:
  case SafetensorsDType::BOOL:
    return 1;
  }
  llvm_unreachable("unknown dtype");
}

static constexpr std::pair<StringRef, SafetensorsDType> kDTypeNames[] = {
    {"F64", SafetensorsDType::F64},       {"F32", SafetensorsDType::F32},
    {"F16", SafetensorsDType::F16},       {"BF16", SafetensorsDType::BF16},
    {"F8_E4M3", SafetensorsDType::F8_E4M3}, {"F8_E5M2", SafetensorsDType::F8_E5M2},
    {"I64", SafetensorsDType::I64},       {"I32", SafetensorsDType::I32},
    {"I16", SafetensorsDType::I16},       {"I8", SafetensorsDType::I8},
    {"U64", SafetensorsDType::U64},       {"U32", SafetensorsDType::U32},
    {"U16", SafetensorsDType::U16},       {"U8", SafetensorsDType::U8},
    {"BOOL", SafetensorsDType::BOOL}};

StringRef mlir::falcon::stringifyDType(SafetensorsDType dtype) {
  for (auto [name, value] : kDTypeNames)
    if (value == dtype)
      return name;
  llvm_unreachable("unknown dtype");
}

int64_t SafetensorsTensor::numElements() const {
  int64_t count = 1;
  for (int64_t size : shape)
    count *= size;
  return count;
}

/// Parses one header entry; `dataSize` bounds the offsets.
static Expected<SafetensorsTensor>
parseTensorEntry(StringRef name, const llvm::json::Value &value,
                 uint64_t dataOffset, uint64_t dataSize, StringRef path) {
  auto fail = [&](const llvm::Twine &message) {
    return makeError(path, "tensor '" + name + "': " + message);
  };
  const llvm::json::Object *entry = value.getAsObject();
  if (!entry)
    return fail("header entry is not a JSON object");
  SafetensorsTensor tensor;
  tensor.name = name.str();
  tensor.file = path.str();

  std::optional<StringRef> dtype = entry->getString("dtype");
  if (!dtype)
    return fail("missing 'dtype'");
  auto *known = llvm::find_if(kDTypeNames, [&](auto &pair) { return pair.first == *dtype; });
  if (known == std::end(kDTypeNames))
    return fail("unknown dtype '" + *dtype + "'");
  tensor.dtype = known->second;

  const llvm::json::Array *shape = entry->getArray("shape");
  if (!shape)
    return fail("missing 'shape'");
  // Element count with an overflow guard: a lying header must not wrap.
  uint64_t numElements = 1;
  for (const llvm::json::Value &dimValue : *shape) {
    // Integers as written: `80.0` or `8e1` is refused, as the reference does.
    std::optional<uint64_t> size = ::falcon::getAsNonNegativeInteger(dimValue);
    if (!size)
      return fail("shape entries must be non-negative integers (not floats)");
    if (*size > uint64_t(INT64_MAX) ||
        (*size != 0 && numElements > (UINT64_MAX / 16) / *size))
      return fail("shape is too large");
    numElements *= *size;
    tensor.shape.push_back(int64_t(*size));
  }

  const llvm::json::Array *offsets = entry->getArray("data_offsets");
  if (!offsets || offsets->size() != 2)
    return fail("'data_offsets' must be an array of two integers");
  std::optional<uint64_t> begin = ::falcon::getAsNonNegativeInteger((*offsets)[0]);
  std::optional<uint64_t> end = ::falcon::getAsNonNegativeInteger((*offsets)[1]);
  if (!begin || !end || *end < *begin)
    return fail("'data_offsets' must be two non-negative integers (not floats) "
                "[begin, end] with begin <= end");
  if (*end > dataSize)
    return fail(llvm::formatv("data offsets [{0}, {1}) point past the end of "
                              "the data section ({2} bytes); the file is "
                              "truncated or its header is wrong",
                              *begin, *end, dataSize));
  uint64_t expectedBytes = numElements * getDTypeSize(tensor.dtype);
  if (*end - *begin != expectedBytes)
    return fail(llvm::formatv("data offsets [{0}, {1}) span {2} bytes, but "
                              "{3} x {4} needs {5}",
                              *begin, *end, *end - *begin, *dtype,
                              numElements, expectedBytes));
  tensor.begin = dataOffset + *begin;
  tensor.end = dataOffset + *end;
  return tensor;
}

/// The keys of the top-level object of `header`, decoded, in file order,
/// found without building the JSON tree: the tensor count is capped before
/// llvm::json spends memory on it, and duplicate names are seen (llvm::json
/// keeps the last of them silently). Nothing is returned for text that is not
/// an object; the parser reports it.
static Expected<std::vector<std::string>>
scanTopLevelKeys(StringRef header, StringRef path) {
  std::vector<std::string> keys;
  size_t first = header.find_first_not_of(" \t\r\n");
  if (first == StringRef::npos || header[first] != '{')
    return keys;
  unsigned depth = 0;
  bool expectKey = false;
  for (size_t i = first; i < header.size(); ++i) {
    char c = header[i];
    if (c == '"') {
      size_t close = i + 1;
      bool escaped = false;
      for (; close < header.size(); ++close) {
        if (header[close] == '\\') {
          escaped = true;
          ++close;
        } else if (header[close] == '"') {
          break;
        }
      }
      if (close >= header.size())
        return keys; // unterminated: the parser reports it
      if (depth == 1 && expectKey) {
        if (keys.size() > kMaxTensors)
          return makeError(path, llvm::formatv("header holds more than {0} "
                                               "tensors; refusing it",
                                               kMaxTensors));
        StringRef raw = header.slice(i, close + 1);
        if (!escaped) {
          keys.push_back(raw.drop_front().drop_back().str());
        } else {
          Expected<llvm::json::Value> decoded = llvm::json::parse(raw);
          if (!decoded) {
            llvm::consumeError(decoded.takeError());
            return keys;
          }
          keys.push_back(decoded->getAsString()->str());
        }
        expectKey = false;
      }
      i = close;
    } else if (c == '{' || c == '[') {
      ++depth;
      if (depth == 1)
        expectKey = true;
    } else if (c == '}' || c == ']') {
      if (depth == 0)
        break;
      --depth;
    } else if (c == ',' && depth == 1) {
      expectKey = true;
    }
  }
  return keys;
}

Expected<SafetensorsFile>
mlir::falcon::parseSafetensorsHeader(StringRef prefix, uint64_t fileSize,
                                     StringRef path) {
  if (fileSize < 8 || prefix.size() < 8)
    return makeError(path, llvm::formatv("file is truncated: {0} bytes, too "
                                         "short for the 8-byte header length",
                                         fileSize));
  uint64_t headerSize =
      llvm::support::endian::read64le(prefix.data());
  if (headerSize > kMaxHeaderSize)
    return makeError(path, llvm::formatv("header length {0} exceeds the "
                                         "limit of {1} bytes",
                                         headerSize, kMaxHeaderSize));
  if (headerSize > fileSize - 8)
    return makeError(path, llvm::formatv("header length {0} points past the "
                                         "end of the file ({1} bytes)",
                                         headerSize, fileSize));
  if (prefix.size() < 8 + headerSize)
    return makeError(path, "file is truncated inside the header");
  SafetensorsFile file;
  file.path = path.str();
  file.fileSize = fileSize;
  file.dataOffset = 8 + headerSize;

  StringRef header = prefix.substr(8, headerSize);
  Expected<std::vector<std::string>> keys = scanTopLevelKeys(header, path);
  if (!keys)
    return keys.takeError();
  if (keys->size() - llvm::count(*keys, "__metadata__") > kMaxTensors)
    return makeError(path, llvm::formatv("header holds more than {0} tensors; "
                                         "refusing it",
                                         kMaxTensors));
  llvm::StringSet<> seen;
  for (const std::string &key : *keys)
    if (!seen.insert(key).second)
      return makeError(path, "tensor name '" + key +
                                 "' appears more than once in the header");

  Expected<llvm::json::Value> json = ::falcon::parseJson(header);
  if (!json)
    return makeError(path, "invalid JSON header: " +
                               llvm::toString(json.takeError()));
  const llvm::json::Object *object = json->getAsObject();
  if (!object)
    return makeError(path, "header is not a JSON object");
  uint64_t dataSize = fileSize - file.dataOffset;
  for (const auto &[key, value] : *object) {
    if (key == "__metadata__") {
      // The reference reads it as a map of strings to strings.
      const llvm::json::Object *metadata = value.getAsObject();
      if (!metadata || llvm::any_of(*metadata, [](const auto &entry) {
            return !entry.second.getAsString();
          }))
        return makeError(path, "'__metadata__' must be an object of strings");
      continue;
    }
    Expected<SafetensorsTensor> tensor =
        parseTensorEntry(key, value, file.dataOffset, dataSize, path);
    if (!tensor)
      return tensor.takeError();
    file.tensors.push_back(std::move(*tensor));
  }
  // Sorted by offset (JSON object order is not preserved), the tensors must
  // tile the data section exactly, as the reference requires: each begins
  // where the previous one ends, the first at 0, the last at the end.
  llvm::sort(file.tensors, [](const SafetensorsTensor &a, const SafetensorsTensor &b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  uint64_t covered = 0; // relative to the data section
  for (size_t i = 0; i < file.tensors.size(); ++i) {
    const SafetensorsTensor &current = file.tensors[i];
    uint64_t begin = current.begin - file.dataOffset;
    if (begin < covered) {
      const SafetensorsTensor &previous = file.tensors[i - 1];
      return makeError(path, llvm::formatv("data of tensors '{0}' and '{1}' "
                                           "overlap ([{2}, {3}) and [{4}, {5}))",
                                           previous.name, current.name,
                                           previous.begin - file.dataOffset,
                                           previous.end - file.dataOffset, begin,
                                           current.end - file.dataOffset));
    }
    if (begin > covered)
      return makeError(
          path, llvm::formatv("bytes [{0}, {1}) of the data section belong to no "
                              "tensor (a gap {2} tensor '{3}')",
                              covered, begin, i == 0 ? "before" : "after",
                              i == 0 ? current.name : file.tensors[i - 1].name));
    covered = current.end - file.dataOffset;
  }
  if (covered != dataSize)
    return makeError(path,
                     llvm::formatv("bytes [{0}, {1}) of the data section belong to "
                                   "no tensor (after the last tensor's data)",
                                   covered, dataSize));
  return file;
}

Expected<SafetensorsFile>
mlir::falcon::readSafetensorsHeader(StringRef path) {
  uint64_t fileSize = 0;
  if (std::error_code ec = llvm::sys::fs::file_size(path, fileSize))
    return makeError(path, "cannot read: " + ec.message());
  // Read the length first, then only as much of the header as it claims.
  auto readPrefix = [&](uint64_t length) {
    return llvm::MemoryBuffer::getFileSlice(path, std::min(length, fileSize), 0,
                                            /*IsVolatile=*/false);
  };
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> head = readPrefix(8);
  if (!head)
    return makeError(path, "cannot read: " + head.getError().message());
  uint64_t want = 8;
  if ((*head)->getBufferSize() >= 8)
    want = 8 + std::min<uint64_t>(
                   llvm::support::endian::read64le((*head)->getBufferStart()),
                   kMaxHeaderSize + 1);
  if (want > 8) {
    head = readPrefix(want);
    if (!head)
      return makeError(path, "cannot read: " + head.getError().message());
  }
  return parseSafetensorsHeader((*head)->getBuffer(), fileSize, path);
}

static llvm::Error addFile(TensorIndex &index, SafetensorsFile &&file) {
  index.files.push_back(file.path);
  for (SafetensorsTensor &tensor : file.tensors) {
    std::string name = tensor.name;
    if (!index.tensors.try_emplace(name, std::move(tensor)).second)
      return makeError(file.path, "tensor '" + name +
                                      "' appears in more than one shard");
  }
  return llvm::Error::success();
}

Expected<TensorIndex>
mlir::falcon::readSingleFileCheckpoint(StringRef path) {
  Expected<SafetensorsFile> file = readSafetensorsHeader(path);
  if (!file)
    return file.takeError();
  TensorIndex index;
  index.source = path.str();
  if (llvm::Error error = addFile(index, std::move(*file)))
    return std::move(error);
  return index;
}

Expected<ShardIndex> mlir::falcon::parseShardIndex(StringRef text,
                                                   StringRef indexPath) {
  Expected<llvm::json::Value> json = ::falcon::parseJson(text);
  if (!json)
    return makeError(indexPath, "invalid JSON: " + llvm::toString(json.takeError()));
  const llvm::json::Object *object = json->getAsObject();
  const llvm::json::Object *weightMap =
      object ? object->getObject("weight_map") : nullptr;
  if (!weightMap)
    return makeError(indexPath, "missing the 'weight_map' object");
  ShardIndex index;
  for (const auto &[tensorName, shard] : *weightMap) {
    std::optional<StringRef> shardName = shard.getAsString();
    if (!shardName)
      return makeError(indexPath, "weight_map entry '" + StringRef(tensorName) +
                                      "' is not a file name");
    if (shardName->empty() || shardName->contains('/') || shardName->contains('\\') ||
        shardName->contains('\0') || *shardName == "." || *shardName == "..")
      return makeError(indexPath, "shard name '" + *shardName +
                                      "' must be a plain file name");
    index.weightMap.emplace_back(StringRef(tensorName).str(), shardName->str());
    if (!llvm::is_contained(index.shards, *shardName))
      index.shards.push_back(shardName->str());
  }
  llvm::sort(index.shards);
  return index;
}

Expected<TensorIndex>
mlir::falcon::readShardedCheckpoint(StringRef indexPath) {
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> buffer =
      llvm::MemoryBuffer::getFile(indexPath, /*IsText=*/true);
  if (!buffer)
    return makeError(indexPath, "cannot read: " + buffer.getError().message());
  Expected<ShardIndex> shards = parseShardIndex((*buffer)->getBuffer(), indexPath);
  if (!shards)
    return shards.takeError();

  llvm::SmallString<256> directory(indexPath);
  llvm::sys::path::remove_filename(directory);
  TensorIndex index;
  index.source = indexPath.str();
  for (const std::string &shardName : shards->shards) {
    llvm::SmallString<256> shardPath(directory);
    llvm::sys::path::append(shardPath, shardName);
    Expected<SafetensorsFile> file = readSafetensorsHeader(shardPath);
    if (!file)
      return file.takeError();
    if (llvm::Error error = addFile(index, std::move(*file)))
      return std::move(error);
  }
  for (const auto &[tensorName, shardName] : shards->weightMap) {
    auto found = index.tensors.find(tensorName);
    if (found == index.tensors.end() ||
        llvm::sys::path::filename(found->second.file) != shardName)
      return makeError(indexPath, "weight_map places '" + tensorName + "' in " +
                                      shardName + ", which does not hold it");
  }
  return index;
}

MappedTensorFiles::MappedTensorFiles() = default;
MappedTensorFiles::~MappedTensorFiles() = default;

Expected<llvm::ArrayRef<uint8_t>> MappedTensorFiles::bytes(const SafetensorsTensor &tensor) {
  std::unique_ptr<llvm::MemoryBuffer> &buffer = mapped[tensor.file];
  if (!buffer) {
    auto opened = llvm::MemoryBuffer::getFile(tensor.file, /*IsText=*/false,
                                              /*RequiresNullTerminator=*/false);
    if (!opened) {
      mapped.erase(tensor.file);
      return llvm::createStringError(tensor.file + ": cannot read: " +
                                     opened.getError().message());
    }
    buffer = std::move(*opened);
  }
  if (tensor.begin > tensor.end || buffer->getBufferSize() < tensor.end)
    return llvm::createStringError(llvm::formatv(
        "{0}: changed while compiling (now {1} bytes; tensor '{2}' ends at byte {3})",
        tensor.file, buffer->getBufferSize(), tensor.name, tensor.end));
  return llvm::ArrayRef<uint8_t>(
      reinterpret_cast<const uint8_t *>(buffer->getBufferStart()) + tensor.begin,
      tensor.end - tensor.begin);
}
