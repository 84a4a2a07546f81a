//===- Artifact.cpp - the artifact directory falcon-run executes ----------===//

#include "falcon/Target/Artifact.h"
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

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iterator>
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
          name.replace(name.find("{}"), 2, std::to_string(layer));
        uint64_t offset = slot.offset + uint64_t(layer) * slot.layerStride;
        writePadding(offset);
        if (llvm::Error error = writeTensor(name, slot))
          return error;
        llvm::json::Array shape;
        for (int64_t size : slot.type.getShape())
          shape.push_back(size);
        tensorTable.push_back(llvm::json::Object{
            {"name", name},
            {"dtype", dtypeName(slot.type.getElementType())},
            {"shape", std::move(shape)},
            {"offset", int64_t(offset)},
            {"bytes", int64_t(slot.bytes)}});
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
    auto found = checkpoint.tensors->tensors.find(name);
    if (found == checkpoint.tensors->tensors.end())
      return llvm::createStringError(checkpoint.tensors->source + ": missing tensor '" +
                       name + "'");
    const SafetensorsTensor &tensor = found->second;
    llvm::Expected<::falcon::WeightTransform> transform =
        getWeightTransform(slot, name, tensor.shape);
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
    llvm::Expected<llvm::MemoryBufferRef> buffer = mapFile(tensor.file);
    if (!buffer)
      return buffer.takeError();
    if (buffer->getBufferSize() < tensor.end)
      return llvm::createStringError(tensor.file + ": changed while compiling (now " +
                       std::to_string(buffer->getBufferSize()) + " bytes)");
    llvm::ArrayRef<uint8_t> source(
        reinterpret_cast<const uint8_t *>(buffer->getBufferStart()) + tensor.begin,
        *sourceBytes);
    // The encoding's transform (shard, permutation) in chunks, so that
    // progress shows on multi-gigabyte tensors and no whole copy is held.
    constexpr uint64_t chunkBytes = 64ull << 20;
    uint64_t elementBytes = transform->elementBytes;
    std::vector<uint8_t> chunk;
    for (uint64_t at = 0; at < *resultBytes; at += chunk.size()) {
      chunk.resize(std::min(chunkBytes / elementBytes * elementBytes, *resultBytes - at));
      if (llvm::Error error = ::falcon::applyWeightTransform(*transform, source, at, chunk))
        return error;
      emit(chunk);
    }
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

  llvm::Expected<llvm::MemoryBufferRef> mapFile(const std::string &path) {
    auto found = mapped.find(path);
    if (found == mapped.end()) {
      auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                                /*RequiresNullTerminator=*/false);
      if (!buffer)
        return llvm::createStringError(path + ": cannot read: " + buffer.getError().message());
      found = mapped.try_emplace(path, std::move(*buffer)).first;
    }
    return found->second->getMemBufferRef();
  }

  llvm::raw_fd_ostream *out = nullptr;
  const Checkpoint &checkpoint;
  const WeightLayout &layout;
  const ProgressFn &progress;
  llvm::StringMap<std::unique_ptr<llvm::MemoryBuffer>> mapped;
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

/// The files of an artifact directory.
static constexpr llvm::StringLiteral kArtifactFiles[] = {
    "manifest.json", kHostLibraryName, kWeightsFileName};

/// Whether `directory` holds nothing but artifact files, with a manifest.json
/// that has a format_version: only such a directory may be replaced.
static bool isArtifactDirectory(llvm::StringRef directory) {
  if (!llvm::sys::fs::is_directory(directory))
    return false;
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(directory, ec), end; it != end && !ec;
       it.increment(ec))
    if (!llvm::is_contained(kArtifactFiles, llvm::sys::path::filename(it->path())) ||
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
  for (llvm::StringRef name : kArtifactFiles) {
    llvm::SmallString<256> path(directory);
    llvm::sys::path::append(path, name);
    ::unlink(path.c_str());
  }
  llvm::SmallString<256> object(directory);
  llvm::sys::path::append(object, (kHostLibraryName + ".o").str());
  ::unlink(object.c_str());
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
  explicit StagingCleanup(llvm::StringRef staging) {
    if (active.exchange(true))
      return;
    owner = true;
    size_t i = 0;
    for (llvm::StringRef name : kArtifactFiles)
      format(paths[i++], staging, name);
    format(paths[i++], staging, (kHostLibraryName + ".o").str());
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
  static void format(char (&out)[4096], llvm::StringRef staging, llvm::StringRef name) {
    llvm::SmallString<256> path(staging);
    if (!name.empty())
      llvm::sys::path::append(path, name);
    std::snprintf(out, sizeof(out), "%s", path.c_str());
  }
  static void onSignal(int signal) {
    for (const char *path : paths)
      ::unlink(path);
    ::rmdir(directoryPath);
    struct sigaction fallback = {};
    fallback.sa_handler = SIG_DFL;
    sigemptyset(&fallback.sa_mask);
    ::sigaction(signal, &fallback, nullptr);
    ::raise(signal);
  }
  static constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};
  static inline std::atomic<bool> active{false};
  static inline char paths[4][4096];
  static inline char directoryPath[4096];
  static inline struct sigaction previous[std::size(kSignals)];
  static inline bool installed[std::size(kSignals)];
  bool owner = false;
};
} // namespace

llvm::Error mlir::falcon::writeArtifact(llvm::StringRef directory,
                                        const Checkpoint &checkpoint,
                                        const WeightLayout &layout,
                                        ModuleOp llvmModule,
                                        const HostLibraryOptions &options,
                                        const ProgressFn &progress) {
  if (!checkpoint.tensors)
    return llvm::createStringError(checkpoint.configPath +
                     ": has no weights (model.safetensors); an artifact needs "
                     "a checkpoint directory with weights");
  if (llvm::Error error = checkArtifactDestination(directory))
    return error;
  std::string staging = (directory + ".tmp-" +
                         std::to_string(llvm::sys::Process::getProcessId()))
                            .str();
  removeStaleStaging(directory);
  // The handlers go in before the directory exists: a signal the moment it
  // appears must still remove it.
  StagingCleanup cleanup(staging);
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

  // The geometry the code is compiled for, exported next to the entry point.
  const FalconConfig &config = checkpoint.config;
  {
    OpBuilder builder = OpBuilder::atBlockEnd(llvmModule.getBody());
    SmallVector<int64_t> geometry(::falcon::kGeometryFieldCount);
    geometry[::falcon::kGeometryVocabSize] = config.vocabSize;
    geometry[::falcon::kGeometryHiddenSize] = config.hiddenSize;
    geometry[::falcon::kGeometryLayers] = config.numLayers;
    geometry[::falcon::kGeometryAttentionHeads] = config.numHeads;
    geometry[::falcon::kGeometryKVHeads] = config.kvHeads();
    geometry[::falcon::kGeometryHeadDim] = config.headDim();
    geometry[::falcon::kGeometryWeightsBytes] = int64_t(layout.totalBytes);
    geometry[::falcon::kGeometryKVCacheElementBytes] =
        ::falcon::getKVCacheElementBytes(options.kvCacheDType);
    auto type = RankedTensorType::get({int64_t(geometry.size())}, builder.getI64Type());
    LLVM::GlobalOp::create(builder, llvmModule.getLoc(),
                           LLVM::LLVMArrayType::get(builder.getI64Type(), geometry.size()),
                           /*isConstant=*/true, LLVM::Linkage::External, kGeometrySymbol,
                           DenseIntElementsAttr::get(type, geometry));
  }

  progress("compiling the host library");
  if (llvm::Error error =
          emitHostLibrary(llvmModule, inStaging(kHostLibraryName), options))
    return fail(std::move(error));

  progress(llvm::formatv("packing weights: {0:f1} MiB", layout.totalBytes / 1048576.0).str());
  llvm::json::Array tensorTable;
  WeightPacker packer(checkpoint, layout, progress);
  {
    std::string weightsPath = inStaging(kWeightsFileName);
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

  // The target the code was generated for: the runtime refuses to load it on
  // a machine that lacks one of its features (instead of dying of SIGILL).
  namespace keys = ::falcon::manifest;
  auto target = llvmModule->getAttrOfType<CPUTargetAttr>(FalconDialect::kTargetAttrName);
  if (!target)
    return fail(llvm::createStringError("the lowered module has no #falcon.cpu_target"));
  llvm::json::Array requiredFeatures;
  for (StringRef feature : target.getRequiredFeatures())
    requiredFeatures.push_back(feature);
  // One rank holding every layer and naming its own files: tensor and
  // pipeline parallel plans are the plan issue's.
  llvm::json::Array ranks;
  ranks.push_back(llvm::json::Object{
      {keys::kRankIndex, 0},
      {keys::kRankStage, 0},
      {keys::kRankSlot, 0},
      {keys::kRankFirstLayer, 0},
      {keys::kRankNumLayers, config.numLayers},
      {keys::kRankHostLibrary, kHostLibraryName},
      {keys::kRankEntryPoint, kEntryPoint},
      {keys::kRankWeights,
       llvm::json::Object{{"file", kWeightsFileName},
                          {"size", int64_t(layout.totalBytes)},
                          {"checksum", ::falcon::formatChecksum(packer.checksum())},
                          {"alignment", int64_t(kWeightAlignment)},
                          {"tensors", std::move(tensorTable)}}}});
  llvm::json::Object manifest{
      {"format_version", kArtifactFormatVersion},
      {"model", checkpoint.name},
      {keys::kTarget, llvm::json::Object{{keys::kTargetKind, "cpu"},
                                         {keys::kTargetTriple, target.getTriple()},
                                         {keys::kTargetCPU, target.getCpu()},
                                         {keys::kTargetFeatures, std::move(requiredFeatures)},
                                         {keys::kTargetVectorBits, target.getVectorBits()}}},
      {keys::kActivationDType, "f32"},
      {keys::kPlan, llvm::json::Object{{keys::kPlanTP, 1},
                                       {keys::kPlanPP, 1},
                                       {keys::kPlanThreads, target.getThreads()},
                                       {keys::kPlanRanks, std::move(ranks)}}},
      {"config", configJson(config)},
      {"kv_cache", llvm::json::Object{{"layers", config.numLayers},
                                      {"kv_heads", config.kvHeads()},
                                      {"head_dim", config.headDim()},
                                      {"dtype", options.kvCacheDType}}}};
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
