//===- Safetensors.cpp - safetensors header reader ------------------------===//
//
// Validates everything the header claims against the file before anyone maps
// the data: the header length, each tensor's dtype, shape and data offsets
// (inside the data section, sized dtype x elements, not overlapping).
//
//===----------------------------------------------------------------------===//

#include "falcon/Import/Safetensors.h"
#include "falcon/Support/Json.h"

#include "llvm/ADT/STLExtras.h"
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

/// Upper bound on the JSON header (the format's own limit is 100 MB).
static constexpr uint64_t kMaxHeaderSize = 100'000'000;

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
    std::optional<int64_t> size = dimValue.getAsInteger();
    if (!size || *size < 0)
      return fail("shape entries must be non-negative integers");
    if (*size != 0 && numElements > (UINT64_MAX / 16) / uint64_t(*size))
      return fail("shape is too large");
    numElements *= uint64_t(*size);
    tensor.shape.push_back(*size);
  }

  const llvm::json::Array *offsets = entry->getArray("data_offsets");
  if (!offsets || offsets->size() != 2)
    return fail("'data_offsets' must be an array of two integers");
  std::optional<int64_t> begin = (*offsets)[0].getAsInteger();
  std::optional<int64_t> end = (*offsets)[1].getAsInteger();
  if (!begin || !end || *begin < 0 || *end < *begin)
    return fail("'data_offsets' must be two non-negative integers [begin, end] "
                "with begin <= end");
  if (uint64_t(*end) > dataSize)
    return fail(llvm::formatv("data offsets [{0}, {1}) point past the end of "
                              "the data section ({2} bytes); the file is "
                              "truncated or its header is wrong",
                              *begin, *end, dataSize));
  uint64_t expectedBytes = numElements * getDTypeSize(tensor.dtype);
  if (uint64_t(*end - *begin) != expectedBytes)
    return fail(llvm::formatv("data offsets [{0}, {1}) span {2} bytes, but "
                              "{3} x {4} needs {5}",
                              *begin, *end, *end - *begin, *dtype,
                              numElements, expectedBytes));
  tensor.begin = dataOffset + uint64_t(*begin);
  tensor.end = dataOffset + uint64_t(*end);
  return tensor;
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
  if (headerSize > fileSize - 8 || headerSize > kMaxHeaderSize)
    return makeError(path, llvm::formatv("header length {0} points past the "
                                         "end of the file ({1} bytes)",
                                         headerSize, fileSize));
  if (prefix.size() < 8 + headerSize)
    return makeError(path, "file is truncated inside the header");
  SafetensorsFile file;
  file.path = path.str();
  file.fileSize = fileSize;
  file.dataOffset = 8 + headerSize;

  Expected<llvm::json::Value> json =
      ::falcon::parseJson(prefix.substr(8, headerSize));
  if (!json)
    return makeError(path, "invalid JSON header: " +
                               llvm::toString(json.takeError()));
  const llvm::json::Object *object = json->getAsObject();
  if (!object)
    return makeError(path, "header is not a JSON object");
  uint64_t dataSize = fileSize - file.dataOffset;
  for (const auto &[key, value] : *object) {
    if (key == "__metadata__")
      continue;
    Expected<SafetensorsTensor> tensor =
        parseTensorEntry(key, value, file.dataOffset, dataSize, path);
    if (!tensor)
      return tensor.takeError();
    file.tensors.push_back(std::move(*tensor));
  }
  // Sort by offset (JSON object order is not preserved) and reject overlaps.
  llvm::sort(file.tensors, [](const SafetensorsTensor &a, const SafetensorsTensor &b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  for (size_t i = 1; i < file.tensors.size(); ++i) {
    const SafetensorsTensor &previous = file.tensors[i - 1], &current = file.tensors[i];
    if (current.begin < previous.end)
      return makeError(path, llvm::formatv("data of tensors '{0}' and '{1}' "
                                           "overlap ([{2}, {3}) and [{4}, {5}))",
                                           previous.name, current.name,
                                           previous.begin - file.dataOffset,
                                           previous.end - file.dataOffset,
                                           current.begin - file.dataOffset,
                                           current.end - file.dataOffset));
  }
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

Expected<TensorIndex>
mlir::falcon::readShardedCheckpoint(StringRef indexPath) {
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> buffer =
      llvm::MemoryBuffer::getFile(indexPath, /*IsText=*/true);
  if (!buffer)
    return makeError(indexPath, "cannot read: " + buffer.getError().message());
  Expected<llvm::json::Value> json = ::falcon::parseJson((*buffer)->getBuffer());
  if (!json)
    return makeError(indexPath, "invalid JSON: " + llvm::toString(json.takeError()));
  const llvm::json::Object *object = json->getAsObject();
  const llvm::json::Object *weightMap =
      object ? object->getObject("weight_map") : nullptr;
  if (!weightMap)
    return makeError(indexPath, "missing the 'weight_map' object");

  llvm::SmallString<256> directory(indexPath);
  llvm::sys::path::remove_filename(directory);
  std::vector<std::string> shardNames;
  for (const auto &[tensorName, shard] : *weightMap) {
    std::optional<StringRef> shardName = shard.getAsString();
    if (!shardName)
      return makeError(indexPath, "weight_map entry '" + StringRef(tensorName) +
                                      "' is not a file name");
    if (shardName->contains('/') || shardName->contains('\\'))
      return makeError(indexPath, "shard name '" + *shardName +
                                      "' must be a plain file name");
    if (!llvm::is_contained(shardNames, *shardName))
      shardNames.push_back(shardName->str());
  }
  llvm::sort(shardNames);
  TensorIndex index;
  index.source = indexPath.str();
  for (const std::string &shardName : shardNames) {
    llvm::SmallString<256> shardPath(directory);
    llvm::sys::path::append(shardPath, shardName);
    Expected<SafetensorsFile> file = readSafetensorsHeader(shardPath);
    if (!file)
      return file.takeError();
    if (llvm::Error error = addFile(index, std::move(*file)))
      return std::move(error);
  }
  for (const auto &[tensorName, shard] : *weightMap) {
    auto found = index.tensors.find(StringRef(tensorName));
    if (found == index.tensors.end() ||
        llvm::sys::path::filename(found->second.file) != *shard.getAsString())
      return makeError(indexPath, "weight_map places '" + StringRef(tensorName) +
                                      "' in " + *shard.getAsString() +
                                      ", which does not hold it");
  }
  return index;
}
