//===- Artifact.cpp - the artifact directory falcon-run executes ----------===//

#include "falcon/Target/Artifact.h"
#include "falcon/Import/QuantizedCheckpoint.h"
#include "falcon/Support/Checksum.h"
#include "falcon/Support/Json.h"
#include "falcon/Support/OutputStream.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/Builders.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/raw_ostream.h"

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <map>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace mlir;
using namespace mlir::falcon;

static llvm::StringRef dtypeName(Type type) {
  if (type.isF32())
    return "f32";
  if (type.isF16())
    return "f16";
  if (type.isBF16())
    return "bf16";
  if (type.isInteger(8))
    return "i8";
  return "unknown";
}

namespace {
/// Writes weights.bin in `layout`'s order from the checkpoint's safetensors
/// files (mapped, read once), hashing every byte written.
class WeightPacker {
public:
  WeightPacker(const Checkpoint &checkpoint, const WeightLayout &layout,
               const ProgressFn &progress)
      : checkpoint(checkpoint), layout(layout), progress(progress) {}

  llvm::Error pack(llvm::raw_fd_ostream &os, llvm::json::Array &tensorTable) {
    out = &os;
    for (const WeightSlot &slot : layout.slots) {
      int64_t copies = slot.perLayer ? layout.numLayers : 1;
      for (int64_t layer = 0; layer < copies; ++layer) {
        std::string name = slot.name;
        if (slot.perLayer)
          name.replace(name.find("{}"), 2, std::to_string(layout.firstLayer + layer));
        uint64_t offset = slot.offset + uint64_t(layer) * slot.layerStride;
        writePadding(offset);
        if (llvm::Error error = writeTensor(name, slot))
          return error;
        llvm::json::Array shape;
        for (int64_t size : slot.type.getShape())
          shape.push_back(size);
        llvm::json::Object entry{{"name", name},
                                 {"dtype", dtypeName(slot.type.getElementType())},
                                 {"shape", std::move(shape)},
                                 {"offset", int64_t(offset)},
                                 {"bytes", int64_t(slot.bytes)}};
        // One part of a weight quantized at compile time (docs/precision.md).
        if (slot.encoding && slot.encoding.getQuantization() != Quantization::None)
          entry["quantization"] = llvm::json::Object{
              {"scheme", stringifyQuantization(slot.encoding.getQuantization())},
              {"group_size", slot.encoding.getGroupSize()},
              {"symmetric", slot.encoding.getSymmetric()},
              {"part", stringifyQuantizedPart(slot.encoding.getPart())}};
        tensorTable.push_back(std::move(entry));
      }
    }
    writePadding(layout.totalBytes);
    return llvm::Error::success();
  }

  uint64_t checksum() const { return hash.digest(); }

private:
  void writePadding(uint64_t until) {
    static const uint8_t zeros[kWeightAlignment] = {};
    while (written < until) {
      uint64_t chunk = std::min<uint64_t>(until - written, kWeightAlignment);
      emit(llvm::ArrayRef<uint8_t>(zeros, chunk));
    }
  }

  llvm::Error writeTensor(const std::string &name,
                          const WeightSlot &slot) {
    if (isQuantizedCheckpointWeight(checkpoint.config, *checkpoint.tensors, name))
      return writeQuantizedCheckpointTensor(name, slot);
    auto found = checkpoint.tensors->tensors.find(name);
    if (found == checkpoint.tensors->tensors.end())
      return llvm::createStringError(checkpoint.tensors->source + ": missing tensor '" +
                       name + "'");
    const SafetensorsTensor &tensor = found->second;
    using Float = ::falcon::WeightTransform::Quantize::Float;
    llvm::Expected<::falcon::WeightTransform> transform =
        getWeightTransform(slot, name, tensor.shape,
                           tensor.dtype == SafetensorsDType::BF16  ? Float::BF16
                           : tensor.dtype == SafetensorsDType::F16 ? Float::F16
                                                                   : Float::F32);
    if (!transform)
      return transform.takeError();
    llvm::Expected<uint64_t> sourceBytes = ::falcon::getSourceBytes(*transform);
    llvm::Expected<uint64_t> resultBytes = ::falcon::getResultBytes(*transform);
    if (!sourceBytes)
      return sourceBytes.takeError();
    if (!resultBytes)
      return resultBytes.takeError();
    if (tensor.end - tensor.begin != *sourceBytes || *resultBytes != slot.bytes)
      return llvm::createStringError(llvm::formatv("{0}: tensor '{1}' holds {2} bytes, the "
                                     "compiled code expects {3}",
                                     tensor.file, name, tensor.end - tensor.begin,
                                     slot.bytes));
    llvm::Expected<llvm::ArrayRef<uint8_t>> source = files.bytes(tensor);
    if (!source)
      return source.takeError();
    // The encoding's transform (shard, permutation) in chunks, so that
    // progress shows on multi-gigabyte tensors and no whole copy is held; a
    // quantized part in one (it is quantized whole at each call).
    uint64_t chunkBytes = transform->quantize ? std::max<uint64_t>(*resultBytes, 64) : 64ull << 20;
    uint64_t elementBytes = transform->quantize
                                ? ::falcon::getQuantizedPartElementBytes(transform->quantize->part)
                                : transform->elementBytes;
    std::vector<uint8_t> chunk;
    for (uint64_t at = 0; at < *resultBytes; at += chunk.size()) {
      chunk.resize(std::min(chunkBytes / elementBytes * elementBytes, *resultBytes - at));
      if (llvm::Error error = ::falcon::applyWeightTransform(*transform, *source, at, chunk))
        return error;
      emit(chunk);
    }
    return llvm::Error::success();
  }

  /// A part of a GPTQ/AWQ projection: its stored codes, scales and zero
  /// points, decoded and taken through the slot's shard and permutation.
  llvm::Error writeQuantizedCheckpointTensor(const std::string &name, const WeightSlot &slot) {
    if (!slot.encoding || slot.encoding.getQuantization() == Quantization::None)
      return llvm::createStringError("weight '" + name +
                                     "' is stored quantized but the compiled code reads it "
                                     "as floats");
    // The projection's [outputs, inputs], as the config states them.
    std::vector<WeightSpec> specs = getWeightSpecs(checkpoint.config);
    const WeightSpec *spec = nullptr;
    for (const WeightSpec &candidate : specs)
      if (candidate.name == slot.name && isQuantizedCheckpointWeight(checkpoint.config, candidate))
        spec = &candidate;
    if (!spec)
      return llvm::createStringError("weight '" + name + "' is not a decoder-layer projection");
    auto read = [&](const SafetensorsTensor &tensor) {
      return files.bytes(tensor);
    };
    const CheckpointQuantization &quantization = *checkpoint.config.quantization;
    int64_t outputs = spec->shape[0], inputs = spec->shape[1];
    std::vector<int32_t> order;
    if (quantization.actOrder) {
      llvm::Expected<std::vector<int32_t>> decoded = decodeQuantizedCheckpointInputOrder(
          *checkpoint.tensors, quantization, name, outputs, inputs, read);
      if (!decoded)
        return decoded.takeError();
      order = std::move(*decoded);
      if (slot.encoding.getPart() == QuantizedPart::InputOrder) {
        if (slot.bytes != order.size() * sizeof(int32_t) || slot.encoding.getSlice().size() ||
            slot.encoding.getGather().size())
          return llvm::createStringError("weight '" + name +
                                         "': the compiled code reads another input order");
        emit(llvm::ArrayRef<uint8_t>(reinterpret_cast<const uint8_t *>(order.data()),
                                     order.size() * sizeof(int32_t)));
        return llvm::Error::success();
      }
    }
    llvm::Expected<std::vector<uint32_t>> elements = decodeQuantizedCheckpointWeight(
        *checkpoint.tensors, quantization, name, outputs, inputs, read);
    if (!elements)
      return elements.takeError();
    // Act-order: the parts hold the inputs sorted by group.
    if (!order.empty()) {
      std::vector<uint32_t> sorted(elements->size());
      for (int64_t output = 0; output < outputs; ++output)
        for (int64_t input = 0; input < inputs; ++input)
          sorted[size_t(output * inputs + input)] =
              (*elements)[size_t(output * inputs + order[size_t(input)])];
      *elements = std::move(sorted);
    }
    llvm::Expected<::falcon::WeightTransform> transform = getWeightTransform(
        slot, name, spec->shape, ::falcon::WeightTransform::Quantize::Float::Quantized);
    if (!transform)
      return transform.takeError();
    llvm::Expected<uint64_t> resultBytes = ::falcon::getResultBytes(*transform);
    if (!resultBytes)
      return resultBytes.takeError();
    if (*resultBytes != slot.bytes)
      return llvm::createStringError(llvm::formatv(
          "weight '{0}': its stored parts make {1} bytes, the compiled code expects {2}", name,
          *resultBytes, slot.bytes));
    std::vector<uint8_t> part(*resultBytes);
    llvm::ArrayRef<uint8_t> source(reinterpret_cast<const uint8_t *>(elements->data()),
                                   elements->size() * sizeof(uint32_t));
    if (llvm::Error error = ::falcon::applyWeightTransform(*transform, source, 0, part))
      return error;
    emit(part);
    return llvm::Error::success();
  }

  void emit(llvm::ArrayRef<uint8_t> bytes) {
    out->write(reinterpret_cast<const char *>(bytes.data()), bytes.size());
    hash.update(bytes);
    written += bytes.size();
    // Percentages only where packing takes noticeable time.
    if (layout.totalBytes < (256ull << 20))
      return;
    int percent = int(100 * written / layout.totalBytes);
    if (percent >= lastPercent + 10) {
      lastPercent = percent - percent % 10;
      progress(llvm::formatv("packing weights: {0}% ({1:f1} of {2:f1} MiB)",
                             lastPercent, written / 1048576.0,
                             layout.totalBytes / 1048576.0)
                   .str());
    }
  }

  llvm::raw_fd_ostream *out = nullptr;
  const Checkpoint &checkpoint;
  const WeightLayout &layout;
  const ProgressFn &progress;
  MappedTensorFiles files;
  ::falcon::ChecksumBuilder hash;
  uint64_t written = 0;
  int lastPercent = 0;
};
} // namespace

static llvm::json::Object configJson(const FalconConfig &config) {
  return llvm::json::Object{
      {"vocab_size", config.vocabSize},
      {"hidden_size", config.hiddenSize},
      {"num_hidden_layers", config.numLayers},
      {"num_attention_heads", config.numHeads},
      {"num_kv_heads", config.kvHeads()},
      {"head_dim", config.headDim()},
      {"max_position_embeddings", config.maxPositionEmbeddings},
      {"alibi", config.alibi}};
}

std::string mlir::falcon::getHostLibraryName(int64_t rank, int64_t worldSize) {
  if (worldSize == 1)
    return kHostLibraryName.str();
  return "libfalcon_model.rank" + std::to_string(rank) + ".so";
}

std::string mlir::falcon::getWeightsFileName(int64_t rank, int64_t worldSize) {
  if (worldSize == 1)
    return kWeightsFileName.str();
  return "weights.rank" + std::to_string(rank) + ".bin";
}

std::vector<std::string> mlir::falcon::getCopiedCheckpointFiles(const Checkpoint &checkpoint) {
  std::vector<std::string> paths;
  if (!checkpoint.tensors)
    return paths;
  // Followed if a symbolic link (a Hugging Face cache snapshot is links
  // into its blobs).
  llvm::StringRef directory = llvm::sys::path::parent_path(checkpoint.configPath);
  for (llvm::StringRef name : kCopiedCheckpointFiles) {
    llvm::SmallString<256> path(directory.empty() ? "." : directory);
    llvm::sys::path::append(path, name);
    // A dangling link is listed too: copying it is then an error.
    if (llvm::sys::fs::exists(path) || llvm::sys::fs::is_symlink_file(path))
      paths.push_back(std::string(path));
  }
  return paths;
}

/// Whether `name` is a file an artifact (or its staging directory) holds:
/// manifest.json, a rank's host library (and its object file while it is
/// linked), weights or a copied checkpoint file.
static bool isArtifactFileName(llvm::StringRef name) {
  if (name == "manifest.json" || name == kHostLibraryName || name == kWeightsFileName ||
      name == (kHostLibraryName + ".o").str() || llvm::is_contained(kCopiedCheckpointFiles, name))
    return true;
  auto isRank = [](llvm::StringRef name, llvm::StringRef prefix, llvm::StringRef suffix) {
    unsigned rank = 0;
    return name.consume_front(prefix) && name.consume_back(suffix) && !name.empty() &&
           !name.getAsInteger(10, rank) && name == std::to_string(rank);
  };
  return isRank(name, "libfalcon_model.rank", ".so") ||
         isRank(name, "libfalcon_model.rank", ".so.o") ||
         isRank(name, "weights.rank", ".bin");
}

/// Whether `directory` holds nothing but artifact files, with a manifest.json
/// that has a format_version: only such a directory may be replaced.
static bool isArtifactDirectory(llvm::StringRef directory) {
  if (!llvm::sys::fs::is_directory(directory))
    return false;
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(directory, ec), end; it != end && !ec;
       it.increment(ec))
    if (!isArtifactFileName(llvm::sys::path::filename(it->path())) ||
        !llvm::sys::fs::is_regular_file(it->path()))
      return false;
  if (ec)
    return false;
  llvm::SmallString<256> manifestPath(directory);
  llvm::sys::path::append(manifestPath, "manifest.json");
  auto buffer = llvm::MemoryBuffer::getFile(manifestPath);
  if (!buffer)
    return false;
  llvm::Expected<llvm::json::Value> manifest = ::falcon::parseJson((*buffer)->getBuffer());
  if (!manifest) {
    llvm::consumeError(manifest.takeError());
    return false;
  }
  const llvm::json::Object *object = manifest->getAsObject();
  return object && object->getInteger("format_version");
}

llvm::Error mlir::falcon::checkArtifactDestination(llvm::StringRef directory) {
  struct stat status;
  if (::lstat(directory.str().c_str(), &status) == 0 && S_ISLNK(status.st_mode))
    return llvm::createStringError(
        directory + ": is a symbolic link; refusing to replace it (pass the "
                    "directory it names instead)");
  if (!llvm::sys::fs::exists(directory) || isArtifactDirectory(directory))
    return llvm::Error::success();
  return llvm::createStringError(
      directory + ": exists and is not a falcon artifact (a directory of " +
      kHostLibraryName + ", " + kWeightsFileName +
      " and a manifest.json with a format_version, nothing else); refusing to "
      "overwrite it");
}

/// Removes the files an artifact (or its staging directory) consists of,
/// then the directory if that left it empty: whatever else is in it is not
/// ours and stays. Returns whether the directory is gone.
static bool removeArtifactFiles(llvm::StringRef directory) {
  std::error_code ec;
  std::vector<std::string> files;
  for (llvm::sys::fs::directory_iterator it(directory, ec), end; it != end && !ec;
       it.increment(ec))
    if (isArtifactFileName(llvm::sys::path::filename(it->path())))
      files.push_back(it->path());
  for (const std::string &file : files)
    ::unlink(file.c_str());
  return ::rmdir(directory.str().c_str()) == 0 || errno == ENOENT;
}

/// Removes the staging directories (`ART.tmp-PID`) of compiles of `directory`
/// that were killed (their process is gone): kill -9 gives no chance to
/// clean up, the next compile does.
static void removeStaleStaging(llvm::StringRef directory) {
  llvm::SmallString<256> parent(llvm::sys::path::parent_path(directory));
  if (parent.empty())
    parent = ".";
  std::string prefix = (llvm::sys::path::filename(directory) + ".tmp-").str();
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(parent, ec), end; it != end && !ec;
       it.increment(ec)) {
    llvm::StringRef name = llvm::sys::path::filename(it->path());
    int pid = 0;
    if (!name.consume_front(prefix) || name.getAsInteger(10, pid) || pid <= 0)
      continue;
    if (::kill(pid, 0) != 0 && errno == ESRCH)
      removeArtifactFiles(it->path());
  }
}

/// Puts the complete artifact in `staging` at `directory`, atomically: at
/// every moment `directory` is the old artifact or the new one. What is there
/// is checked again at the rename (someone may have created it meanwhile),
/// and only an artifact is ever replaced.
static llvm::Error moveIntoPlace(llvm::StringRef staging, llvm::StringRef directory) {
  std::string from = staging.str(), to = directory.str();
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0)
    return llvm::Error::success();
  if (errno != EEXIST)
    return llvm::createStringError(directory + ": cannot rename " + staging +
                                   " into place: " + std::strerror(errno));
  if (llvm::Error error = checkArtifactDestination(directory))
    return error;
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_EXCHANGE) != 0)
    return llvm::createStringError(directory + ": cannot exchange it with " + staging +
                                   ": " + std::strerror(errno));
  // The old artifact now lies in the staging directory.
  removeArtifactFiles(staging);
  return llvm::Error::success();
}

namespace {
/// While alive, SIGINT, SIGTERM and SIGHUP (ctrl-c, kill, a closed terminal)
/// first remove the staging directory, then take their default action: the
/// process dies of the signal. A signal the process ignores (nohup) stays
/// ignored, and the previous actions come back afterwards. The paths are
/// formatted up front: the handler only calls unlink, rmdir, sigaction and
/// raise, which are async-signal-safe. One artifact is written at a time per
/// process; a nested one gets no cleanup.
class StagingCleanup {
public:
  StagingCleanup(llvm::StringRef staging, int64_t worldSize) {
    if (active.exchange(true))
      return;
    owner = true;
    // Formatted up front: the handler only reads them.
    paths.clear();
    auto add = [&](llvm::StringRef name) {
      paths.emplace_back();
      format(paths.back().data(), staging, name);
    };
    add("manifest.json");
    for (llvm::StringRef name : kCopiedCheckpointFiles)
      add(name);
    for (int64_t rank = 0; rank < worldSize; ++rank) {
      std::string library = getHostLibraryName(rank, worldSize);
      add(library);
      add(library + ".o");
      add(getWeightsFileName(rank, worldSize));
    }
    format(directoryPath, staging, "");
    for (size_t index = 0; index < std::size(kSignals); ++index) {
      struct sigaction action = {};
      installed[index] = false;
      if (::sigaction(kSignals[index], nullptr, &previous[index]) != 0 ||
          previous[index].sa_handler == SIG_IGN)
        continue;
      action.sa_handler = &onSignal;
      sigemptyset(&action.sa_mask);
      installed[index] = ::sigaction(kSignals[index], &action, nullptr) == 0;
    }
  }
  ~StagingCleanup() {
    if (!owner)
      return;
    for (size_t index = 0; index < std::size(kSignals); ++index)
      if (installed[index])
        ::sigaction(kSignals[index], &previous[index], nullptr);
    active = false;
  }

private:
  static void format(char *out, llvm::StringRef staging, llvm::StringRef name) {
    llvm::SmallString<256> path(staging);
    if (!name.empty())
      llvm::sys::path::append(path, name);
    std::snprintf(out, 4096, "%s", path.c_str());
  }
  static void onSignal(int signal) {
    for (const std::array<char, 4096> &path : paths)
      ::unlink(path.data());
    ::rmdir(directoryPath);
    struct sigaction fallback = {};
    fallback.sa_handler = SIG_DFL;
    sigemptyset(&fallback.sa_mask);
    ::sigaction(signal, &fallback, nullptr);
    ::raise(signal);
  }
  static constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};
  static inline std::atomic<bool> active{false};
  static inline std::vector<std::array<char, 4096>> paths;
  static inline char directoryPath[4096];
  static inline struct sigaction previous[std::size(kSignals)];
  static inline bool installed[std::size(kSignals)];
  bool owner = false;
};
} // namespace

/// The rank's share of the model as the manifest records it (the whole
/// model for a single rank).
static llvm::json::Object rankShareJson(const FalconConfig &config, RankPlanAttr plan) {
  if (!plan)
    return llvm::json::Object{{"first_head", 0},
                              {"num_heads", config.numHeads},
                              {"first_kv_head", 0},
                              {"num_kv_heads", config.kvHeads()},
                              {"kv_replicated", false},
                              {"vocab_offset", 0},
                              {"vocab_size", config.vocabSize}};
  return llvm::json::Object{{"first_head", plan.getFirstHead()},
                            {"num_heads", plan.getNumHeads()},
                            {"first_kv_head", plan.getFirstKvHead()},
                            {"num_kv_heads", plan.getNumKvHeads()},
                            {"kv_replicated", plan.getKvReplicated()},
                            {"vocab_offset", plan.getVocabOffset()},
                            {"vocab_size", plan.getVocabSize()}};
}

llvm::Error mlir::falcon::writeArtifact(llvm::StringRef directory,
                                        const Checkpoint &checkpoint,
                                        llvm::ArrayRef<RankProgram> programs, int64_t tp,
                                        int64_t pp, const HostLibraryOptions &options,
                                        const ProgressFn &progress) {
  if (!checkpoint.tensors)
    return llvm::createStringError(checkpoint.configPath +
                     ": has no weights (model.safetensors); an artifact needs "
                     "a checkpoint directory with weights");
  int64_t worldSize = tp * pp;
  if (programs.empty() || int64_t(programs.size()) != worldSize)
    return llvm::createStringError("the plan has " + std::to_string(worldSize) +
                                   " ranks but " + std::to_string(programs.size()) +
                                   " programs were compiled");
  if (llvm::Error error = checkArtifactDestination(directory))
    return error;
  std::string staging = (directory + ".tmp-" +
                         std::to_string(llvm::sys::Process::getProcessId()))
                            .str();
  removeStaleStaging(directory);
  // The handlers go in before the directory exists: a signal the moment it
  // appears must still remove it.
  StagingCleanup cleanup(staging, worldSize);
  if (std::error_code ec =
          llvm::sys::fs::create_directory(staging, /*IgnoreExisting=*/false))
    return llvm::createStringError(staging + ": cannot create the artifact's staging directory: " +
                                   ec.message());
  auto fail = [&](llvm::Error error) {
    removeArtifactFiles(staging);
    return error;
  };
  auto inStaging = [&](llvm::StringRef name) {
    llvm::SmallString<256> path(staging);
    llvm::sys::path::append(path, name);
    return std::string(path);
  };

  namespace keys = ::falcon::manifest;
  const FalconConfig &config = checkpoint.config;
  llvm::json::Array ranks;
  CPUTargetAttr target;
  // The printed code of each library compiled so far: its rank and file.
  std::map<std::string, std::pair<int64_t, std::string>> compiledLibraries;
  for (auto [rank, program] : llvm::enumerate(programs)) {
    ModuleOp llvmModule = program.llvmModule;
    const WeightLayout &layout = program.layout;
    auto plan = llvmModule->getAttrOfType<RankPlanAttr>(FalconDialect::kRankPlanAttrName);
    if (worldSize > 1 && (!plan || plan.getRank() != int64_t(rank)))
      return fail(llvm::createStringError("the program of rank " + std::to_string(rank) +
                                          " has no matching #falcon.rank_plan"));
    int64_t firstLayer = plan ? plan.getFirstLayer() : 0;
    int64_t numLayers = plan ? plan.getNumLayers() : config.numLayers;
    llvm::json::Object share = rankShareJson(config, plan);
    int64_t numHeads = *share.getInteger("num_heads");
    int64_t numKVHeads = *share.getInteger("num_kv_heads");
    int64_t vocabSize = *share.getInteger("vocab_size");
    bool firstStage = firstLayer == 0, lastStage = firstLayer + numLayers == config.numLayers;
    // The geometry the code is compiled for, exported next to the entry
    // point: the rank's own share (its logits' width is its vocabulary
    // slice, or the hidden size when it hands hidden states on).
    {
      OpBuilder builder = OpBuilder::atBlockEnd(llvmModule.getBody());
      SmallVector<int64_t> geometry(::falcon::kGeometryFieldCount);
      geometry[::falcon::kGeometryVocabSize] = lastStage ? vocabSize : config.hiddenSize;
      geometry[::falcon::kGeometryHiddenSize] = config.hiddenSize;
      geometry[::falcon::kGeometryLayers] = numLayers;
      geometry[::falcon::kGeometryAttentionHeads] = numHeads;
      geometry[::falcon::kGeometryKVHeads] = numKVHeads;
      geometry[::falcon::kGeometryHeadDim] = config.headDim();
      geometry[::falcon::kGeometryWeightsBytes] = int64_t(layout.totalBytes);
      geometry[::falcon::kGeometryKVCacheElementBytes] =
          ::falcon::getKVCacheElementBytes(options.kvCacheDType);
      geometry[::falcon::kGeometryPrecisionGuardEntries] =
          options.precisionGuard ? numLayers + 1 : 0;
      auto type = RankedTensorType::get({int64_t(geometry.size())}, builder.getI64Type());
      LLVM::GlobalOp::create(builder, llvmModule.getLoc(),
                             LLVM::LLVMArrayType::get(builder.getI64Type(), geometry.size()),
                             /*isConstant=*/true, LLVM::Linkage::External, kGeometrySymbol,
                             DenseIntElementsAttr::get(type, geometry));
    }
    std::string rankSuffix = worldSize > 1 ? " of rank " + std::to_string(rank) : "";
    std::string libraryName = getHostLibraryName(rank, worldSize);
    std::string weightsName = getWeightsFileName(rank, worldSize);
    // Ranks whose code is the same (the slots of an even split within a
    // stage) share one compile: the body of the module, geometry included,
    // decides; the module's attributes (the rank's share of the weights)
    // do not reach the code.
    std::string code;
    {
      llvm::raw_string_ostream os(code);
      for (Operation &op : llvmModule.getBody()->getOperations())
        op.print(os);
    }
    if (auto same = compiledLibraries.find(code); same != compiledLibraries.end()) {
      progress("host library" + rankSuffix + ": the code of rank " +
               std::to_string(same->second.first));
      if (std::error_code ec =
              llvm::sys::fs::copy_file(inStaging(same->second.second), inStaging(libraryName)))
        return fail(llvm::createStringError(inStaging(libraryName) + ": " + ec.message()));
    } else {
      progress("compiling the host library" + rankSuffix);
      if (llvm::Error error = emitHostLibrary(llvmModule, inStaging(libraryName), options))
        return fail(std::move(error));
      compiledLibraries.try_emplace(std::move(code), int64_t(rank), libraryName);
    }

    progress(llvm::formatv("packing weights{0}: {1:f1} MiB", rankSuffix,
                           layout.totalBytes / 1048576.0)
                 .str());
    llvm::json::Array tensorTable;
    WeightPacker packer(checkpoint, layout, progress);
    {
      std::string weightsPath = inStaging(weightsName);
      std::error_code ec;
      llvm::raw_fd_ostream os(weightsPath, ec, llvm::sys::fs::OF_None);
      if (ec)
        return fail(llvm::createStringError(weightsPath + ": " + ec.message()));
      llvm::Error packed = packer.pack(os, tensorTable);
      llvm::Error closed = ::falcon::closeOutputStream(os, weightsPath);
      if (packed) {
        llvm::consumeError(std::move(closed));
        return fail(std::move(packed));
      }
      if (closed)
        return fail(std::move(closed));
    }
    // The target the code was generated for: the runtime refuses to load it
    // on a machine that lacks one of its features (instead of dying of
    // SIGILL).
    target = llvmModule->getAttrOfType<CPUTargetAttr>(FalconDialect::kTargetAttrName);
    if (!target)
      return fail(llvm::createStringError("the lowered module has no #falcon.cpu_target"));
    llvm::json::Object entry{
        {keys::kRankIndex, int64_t(rank)},
        {keys::kRankStage, int64_t(rank) / tp},
        {keys::kRankSlot, int64_t(rank) % tp},
        {keys::kRankFirstLayer, firstLayer},
        {keys::kRankNumLayers, numLayers},
        {keys::kRankInput, firstStage ? "input_ids" : "hidden_in"},
        {keys::kRankOutput, lastStage ? "logits" : "hidden"},
        {keys::kRankHostLibrary, libraryName},
        {keys::kRankEntryPoint, kEntryPoint},
        {keys::kRankWeights,
         llvm::json::Object{{"file", weightsName},
                            {"size", int64_t(layout.totalBytes)},
                            {"checksum", ::falcon::formatChecksum(packer.checksum())},
                            {"alignment", int64_t(kWeightAlignment)},
                            {"tensors", std::move(tensorTable)}}}};
    for (auto &member : share)
      entry.try_emplace(member.first, std::move(member.second));
    ranks.push_back(std::move(entry));
  }

  // The tokenizer and generation files, byte for byte (before the manifest:
  // an artifact with a manifest is complete).
  for (const std::string &source : getCopiedCheckpointFiles(checkpoint)) {
    std::string copy = inStaging(llvm::sys::path::filename(source));
    if (!llvm::sys::fs::is_regular_file(source))
      return fail(llvm::createStringError(
          source + ": not a regular file (or a link to none); cannot copy it into the artifact"));
    if (std::error_code ec = llvm::sys::fs::copy_file(source, copy))
      return fail(llvm::createStringError(source + ": cannot copy it to " + copy + ": " +
                                          ec.message()));
  }

  llvm::json::Array requiredFeatures;
  for (StringRef feature : target.getRequiredFeatures())
    requiredFeatures.push_back(feature);
  llvm::json::Object manifest{
      {"format_version", kArtifactFormatVersion},
      {"model", checkpoint.name},
      {keys::kTarget, llvm::json::Object{{keys::kTargetKind, "cpu"},
                                         {keys::kTargetTriple, target.getTriple()},
                                         {keys::kTargetCPU, target.getCpu()},
                                         {keys::kTargetFeatures, std::move(requiredFeatures)},
                                         {keys::kTargetVectorBits, target.getVectorBits()}}},
      {keys::kActivationDType, "f32"},
      {keys::kPlan, llvm::json::Object{{keys::kPlanTP, tp},
                                       {keys::kPlanPP, pp},
                                       {keys::kPlanThreads, target.getThreads()},
                                       {keys::kPlanRanks, std::move(ranks)}}},
      {"config", configJson(config)},
      {"kv_cache", llvm::json::Object{{"layers", config.numLayers},
                                      {"kv_heads", config.kvHeads()},
                                      {"head_dim", config.headDim()},
                                      {"dtype", options.kvCacheDType}}}};
  if (options.precisionGuard)
    manifest[keys::kPrecisionGuard] = llvm::json::Object{
        {"dtype", "f16"}, {"fallback", "bf16"}, {"entries", config.numLayers + 1}};
  {
    std::string manifestPath = inStaging("manifest.json");
    std::error_code ec;
    llvm::raw_fd_ostream os(manifestPath, ec, llvm::sys::fs::OF_Text);
    if (ec)
      return fail(llvm::createStringError(manifestPath + ": " + ec.message()));
    os << llvm::formatv("{0:2}", llvm::json::Value(std::move(manifest))) << "\n";
    if (llvm::Error error = ::falcon::closeOutputStream(os, manifestPath))
      return fail(std::move(error));
  }
  // Replace a previous artifact only now that the new one is complete.
  if (llvm::Error error = moveIntoPlace(staging, directory))
    return fail(std::move(error));
  return llvm::Error::success();
}
