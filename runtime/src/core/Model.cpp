//===- Model.cpp - falcon_model_* -------------------------------*- C++ -*-===//
//
// Opening an artifact: manifest, weights, host library, in that order, so
// that the cheapest checks fail first and a bad manifest never loads code.
//
//===----------------------------------------------------------------------===//

#include "core/Model.h"
#include "comm/mpi/MPIChannel.h"

#include <cstdlib>

#include "core/Status.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/Triple.h"

#include <chrono>
#include <new>
#include <vector>

using namespace falcon;
using namespace falcon::runtime;

falcon_model_t::~falcon_model_t() {
  if (device && tensorChannel)
    device->vtable->setExecutableChannel(device, nullptr);
  falcon::runtime::comm::destroyChannel(tensorChannel);
  falcon::runtime::comm::destroyChannel(worldChannel);
  if (device) {
    device->vtable->unloadExecutable(device, executable);
    hal::freeBuffer(weightsBuffer);
  }
  weights.reset();
  hal::destroyDevice(device);
}

namespace {

/// The path of file `name` of the artifact directory.
std::string resolve(llvm::StringRef artifactDir, llvm::StringRef name) {
  llvm::SmallString<256> path(artifactDir);
  llvm::sys::path::append(path, name);
  return std::string(path);
}

/// The artifact's file `name` (a name in its directory: the manifest reader
/// refuses paths), refused when it is a symbolic link or not a regular file,
/// so that nothing outside the artifact is loaded or mapped. A missing file
/// is left to the reader that opens it, which names it.
falcon_status_t artifactFile(llvm::StringRef artifactDir, llvm::StringRef name,
                             std::string &out) {
  out = resolve(artifactDir, name);
  llvm::sys::fs::file_status status;
  if (llvm::sys::fs::status(out, status, /*Follow=*/false))
    return nullptr;
  if (status.type() == llvm::sys::fs::file_type::symlink_file)
    return makeStatus(FALCON_STATUS_FAILED_PRECONDITION,
                      out + ": is a symbolic link; an artifact loads only its own regular files");
  if (status.type() != llvm::sys::fs::file_type::regular_file)
    return makeStatus(FALCON_STATUS_FAILED_PRECONDITION, out + ": is not a regular file");
  return nullptr;
}

} // namespace

void falcon_model_options_initialize(falcon_model_options_t *out_options) {
  if (!out_options)
    return;
  out_options->device = "cpu";
  out_options->verify_checksum = true;
  out_options->num_threads = 0;
  out_options->verify_progress = nullptr;
  out_options->verify_progress_user_data = nullptr;
  out_options->rank = 0;
  out_options->world_size = 1;
  out_options->workspace_limit_bytes = 0;
  out_options->mpi_communicator = nullptr;
}

/// Refuses, before anything of the artifact is loaded, code this machine
/// cannot run: another architecture, or an ISA feature the CPU lacks (the
/// code would die of SIGILL at the first such instruction).
static falcon_status_t checkTarget(const Manifest &manifest, llvm::StringRef dir) {
  llvm::Triple host(llvm::sys::getProcessTriple());
  llvm::Triple target(manifest.targetTriple);
  if (host.getArch() != target.getArch())
    return makeStatus(FALCON_STATUS_UNAVAILABLE,
                      dir + ": compiled for " + manifest.targetTriple +
                          ", but this machine is " + host.str() +
                          " (recompile with falcon-compile --mtriple)");
  llvm::StringMap<bool> hostFeatures = llvm::sys::getHostCPUFeatures();
  std::vector<std::string> missing;
  for (const std::string &feature : manifest.requiredFeatures)
    if (!hostFeatures.lookup(feature))
      missing.push_back(feature);
  if (!missing.empty())
    return makeStatus(FALCON_STATUS_UNAVAILABLE,
                      dir + ": compiled for " + manifest.targetCPU + ", which needs " +
                          llvm::join(missing, ", ") +
                          ", that this CPU lacks (recompile with --mcpu=native, or "
                          "for a CPU this machine has)");
  return nullptr;
}

/// The process's place in the plan: the world is the plan's tp x pp ranks.
static falcon_status_t checkRank(const Manifest &manifest, llvm::StringRef dir,
                                 const falcon_model_options_t &options) {
  int64_t ranks = manifest.tensorParallel * manifest.pipelineParallel;
  if (options.world_size != ranks)
    return makeStatus(FALCON_STATUS_FAILED_PRECONDITION,
                      dir + ": the plan has " + llvm::Twine(ranks) + " rank(s) (tp " +
                          llvm::Twine(manifest.tensorParallel) + " x pp " +
                          llvm::Twine(manifest.pipelineParallel) + "), but world_size is " +
                          llvm::Twine(options.world_size) +
                          (options.world_size == 1 && ranks > 1
                               ? "; run it with mpirun -np " + llvm::Twine(ranks)
                               : llvm::Twine("")));
  return nullptr;
}

/// The channels of a multi-rank plan over MPI: the world (this rank's place
/// in it must be the options') and the stage's tensor-parallel group.
static falcon_status_t connectRanks(falcon_model_t &model,
                                    const falcon_model_options_t &options) {
  namespace mpi = falcon::runtime::comm::mpi;
  FALCON_RETURN_IF_ERROR(mpi::ensureInitialized());
  MPI_Comm communicator = options.mpi_communicator
                              ? *static_cast<const MPI_Comm *>(options.mpi_communicator)
                              : MPI_COMM_WORLD;
  FALCON_RETURN_IF_ERROR(mpi::createMPIChannel(communicator, &model.worldChannel));
  const falcon_comm_channel_t &world = *model.worldChannel;
  if (world.worldSize != options.world_size || world.rank != options.rank)
    return makeStatus(FALCON_STATUS_FAILED_PRECONDITION,
                      model.artifactDir + ": the plan needs " +
                          llvm::Twine(options.world_size) +
                          " processes (tp x pp), but MPI runs " + llvm::Twine(world.worldSize) +
                          " (this is rank " + llvm::Twine(world.rank) + ", asked for rank " +
                          llvm::Twine(options.rank) + "); start it with mpirun -np " +
                          llvm::Twine(options.world_size));
  int64_t tp = model.manifest.tensorParallel;
  return mpi::splitMPIChannel(model.worldChannel, int(options.rank / tp),
                              int(options.rank % tp), &model.tensorChannel);
}

/// The compiled code has the model's geometry built in; the runtime sizes
/// the KV cache and the logits from manifest.json. A manifest that disagrees
/// with the code (edited, or from another compile) would make the code read
/// and write out of bounds, so every value is compared first.
static falcon_status_t checkGeometry(falcon_model_t &model, llvm::StringRef libraryPath) {
  const Manifest &manifest = model.manifest;
  int64_t compiled[kGeometryFieldCount];
  falcon_status_t status = model.device->vtable->readExecutableConstants(
      model.device, model.executable, kGeometrySymbol.data(), compiled,
      kGeometryFieldCount);
  if (status) {
    falcon_status_free(status);
    return makeStatus(FALCON_STATUS_FAILED_PRECONDITION,
                      libraryPath + ": exports no " + kGeometrySymbol +
                          "; not a host library written by falcon-compile");
  }
  struct Field {
    std::string key;
    int64_t found;
    int64_t compiled;
  };
  const ManifestRank &rank = model.rank();
  std::string rankKey = "plan.ranks[" + std::to_string(model.rankIndex) + "].";
  std::vector<Field> fields;
  if (model.worldSize() == 1)
    fields = {
        {"config.vocab_size", manifest.vocabSize, compiled[kGeometryVocabSize]},
        {"config.hidden_size", manifest.hiddenSize, compiled[kGeometryHiddenSize]},
        {"config.num_hidden_layers", manifest.numLayers, compiled[kGeometryLayers]},
        {"kv_cache.layers", manifest.cacheLayers, compiled[kGeometryLayers]},
        {"config.num_attention_heads", manifest.numAttentionHeads,
         compiled[kGeometryAttentionHeads]},
        {"config.num_kv_heads", manifest.numKVHeads, compiled[kGeometryKVHeads]},
        {"kv_cache.kv_heads", manifest.cacheKVHeads, compiled[kGeometryKVHeads]}};
  else
    // A rank's code holds its share: its stage's layers, its slot's heads
    // and its vocabulary slice (or the hidden size, handing hidden states
    // on).
    fields = {{rank.outputLogits ? rankKey + "vocab_size" : "config.hidden_size",
               rank.outputFeatures(manifest.hiddenSize), compiled[kGeometryVocabSize]},
              {"config.hidden_size", manifest.hiddenSize, compiled[kGeometryHiddenSize]},
              {rankKey + "num_layers", rank.numLayers, compiled[kGeometryLayers]},
              {rankKey + "num_heads", rank.numHeads, compiled[kGeometryAttentionHeads]},
              {rankKey + "num_kv_heads", rank.numKVHeads, compiled[kGeometryKVHeads]}};
  fields.push_back({"config.head_dim", manifest.headDim, compiled[kGeometryHeadDim]});
  fields.push_back({"kv_cache.head_dim", manifest.cacheHeadDim, compiled[kGeometryHeadDim]});
  fields.push_back({rankKey + "weights.size", int64_t(rank.weightsSize),
                    compiled[kGeometryWeightsBytes]});
  fields.push_back({"kv_cache.dtype's element bytes", manifest.cacheElementBytes,
                    compiled[kGeometryKVCacheElementBytes]});
  fields.push_back({"precision_guard.entries", manifest.precisionGuardEntries,
                    compiled[kGeometryPrecisionGuardEntries]});
  std::string manifestPath = resolve(model.artifactDir, "manifest.json");
  for (const Field &field : fields)
    if (field.found != field.compiled)
      return makeStatus(FALCON_STATUS_FAILED_PRECONDITION,
                        llvm::Twine(manifestPath) + ": " + field.key + " is " +
                            llvm::Twine(field.found) +
                            " but the host library was compiled for " +
                            llvm::Twine(field.compiled));
  return nullptr;
}

falcon_status_t falcon_model_open(const char *artifact_dir,
                                  const falcon_model_options_t *options,
                                  falcon_model_t **out_model) {
  if (!out_model)
    return makeNullArgumentStatus("falcon_model_open", "out_model");
  *out_model = nullptr;
  if (!artifact_dir)
    return makeNullArgumentStatus("falcon_model_open", "artifact_dir");
  falcon_model_options_t defaults;
  falcon_model_options_initialize(&defaults);
  if (!options)
    options = &defaults;

  if (options->world_size < 1 || options->rank < 0 || options->rank >= options->world_size)
    return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                      "falcon_model_open: rank must be in [0, world_size) with world_size "
                      ">= 1, found rank " +
                          llvm::Twine(options->rank) + " of " +
                          llvm::Twine(options->world_size));
  if (options->num_threads < 0 || options->num_threads > FALCON_MAX_THREADS)
    return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                      "falcon_model_open: num_threads must be in [0, " +
                          llvm::Twine(FALCON_MAX_THREADS) + "], found " +
                          llvm::Twine(options->num_threads));
  // OpenMP aborts the process when it cannot create the threads it was told
  // to use; an absurd OMP_NUM_THREADS becomes an error here instead.
  // OpenMP reads every element of the list (nested levels) and accepts
  // forms like "+5000" or "5000abc", so anything but plain counts in range
  // is refused.
  if (options->num_threads == 0) {
    if (const char *env = std::getenv("OMP_NUM_THREADS")) {
      llvm::SmallVector<llvm::StringRef> levels;
      llvm::StringRef(env).split(levels, ',');
      for (llvm::StringRef level : levels) {
        unsigned requested = 0;
        llvm::StringRef count = level.trim();
        if (count.empty() || !llvm::all_of(count, llvm::isDigit) ||
            count.getAsInteger(10, requested) || requested < 1 ||
            requested > FALCON_MAX_THREADS)
          return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                            "falcon_model_open: OMP_NUM_THREADS='" + llvm::Twine(env) +
                                "' is not a list of thread counts in [1, " +
                                llvm::Twine(FALCON_MAX_THREADS) + "]");
      }
    }
  }
  // The same for OMP_STACKSIZE (a count with an optional B/K/M/G/T unit,
  // K by default): libomp aborts when a worker's stack cannot be had
  // (OMP_STACKSIZE=200G), so sizes beyond 1 GiB per thread are refused.
  if (const char *env = std::getenv("OMP_STACKSIZE")) {
    llvm::StringRef text = llvm::StringRef(env).trim();
    uint64_t multiplier = uint64_t(1) << 10;
    if (!text.empty() && llvm::isAlpha(text.back())) {
      size_t unit = llvm::StringRef("BKMGT").find(llvm::toUpper(text.back()));
      multiplier = unit == llvm::StringRef::npos ? 0 : uint64_t(1) << (10 * unit);
      text = text.drop_back().rtrim();
    }
    uint64_t count = 0, bytes = 0;
    constexpr uint64_t kMaxStackBytes = uint64_t(1) << 30;
    if (multiplier == 0 || text.empty() || !llvm::all_of(text, llvm::isDigit) ||
        text.getAsInteger(10, count) || __builtin_mul_overflow(count, multiplier, &bytes) ||
        bytes > kMaxStackBytes)
      return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                        "falcon_model_open: OMP_STACKSIZE='" + llvm::Twine(env) +
                            "' is not a stack size of at most 1G (a count with an "
                            "optional B, K, M, G unit)");
  }
  llvm::StringRef dir(artifact_dir);
  if (dir.empty())
    return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                      "falcon_model_open: artifact_dir is empty");
  if (!llvm::sys::fs::exists(dir))
    return makeStatus(FALCON_STATUS_NOT_FOUND,
                      dir + ": artifact directory not found");
  if (!llvm::sys::fs::is_directory(dir))
    return makeStatus(FALCON_STATUS_INVALID_ARGUMENT,
                      dir + ": not an artifact directory");

  std::unique_ptr<falcon_model_t> model(new (std::nothrow) falcon_model_t());
  if (!model)
    return makeStatus(FALCON_STATUS_RESOURCE_EXHAUSTED,
                      "cannot allocate a model");
  model->artifactDir = dir.str();
  std::string manifestPath;
  FALCON_RETURN_IF_ERROR(artifactFile(dir, "manifest.json", manifestPath));
  FALCON_RETURN_IF_ERROR(readManifest(manifestPath, model->manifest));
  const Manifest &manifest = model->manifest;
  FALCON_RETURN_IF_ERROR(checkRank(manifest, dir, *options));
  FALCON_RETURN_IF_ERROR(checkTarget(manifest, dir));
  model->rankIndex = options->rank;
  const ManifestRank &rank = model->rank();
  if (model->worldSize() > 1)
    FALCON_RETURN_IF_ERROR(connectRanks(*model, *options));

  auto verifyProgress = [options](uint64_t done, uint64_t total) {
    options->verify_progress(options->verify_progress_user_data, done, total);
  };
  std::string weightsPath, libraryPath;
  FALCON_RETURN_IF_ERROR(artifactFile(dir, rank.weightsFile, weightsPath));
  FALCON_RETURN_IF_ERROR(artifactFile(dir, rank.hostLibrary, libraryPath));
  auto weightsStart = std::chrono::steady_clock::now();
  FALCON_RETURN_IF_ERROR(WeightStore::open(
      weightsPath, rank.weightsSize,
      rank.weightsChecksum, options->verify_checksum, model->weights,
      options->verify_progress ? falcon::ChecksumProgressFn(verifyProgress)
                               : falcon::ChecksumProgressFn()));
  model->weightsOpenSeconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - weightsStart).count();

  falcon_hal_device_params_t deviceParams = {options->device,
                                             options->num_threads};
  FALCON_RETURN_IF_ERROR(hal::createDevice(deviceParams, &model->device));
  falcon_hal_device_t *device = model->device;
  FALCON_RETURN_IF_ERROR(
      device->vtable->setWorkspaceLimit(device, options->workspace_limit_bytes));
  // The compiled code only reads the weights; the const_cast is for the
  // memref descriptor, whose pointers are not const.
  FALCON_RETURN_IF_ERROR(device->vtable->wrapHostMemory(
      device, const_cast<uint8_t *>(model->weights->data()),
      model->weights->size(), &model->weightsBuffer));
  const char *exportNames[] = {rank.entryPoint.c_str()};
  falcon_hal_executable_params_t executableParams = {libraryPath.c_str(),
                                                     exportNames, 1};
  FALCON_RETURN_IF_ERROR(device->vtable->loadExecutable(
      device, &executableParams, &model->executable));
  FALCON_RETURN_IF_ERROR(device->vtable->lookupExport(
      device, model->executable, rank.entryPoint.c_str(),
      &model->forwardOrdinal));
  FALCON_RETURN_IF_ERROR(checkGeometry(*model, libraryPath));
  if (model->tensorChannel && manifest.tensorParallel > 1)
    FALCON_RETURN_IF_ERROR(device->vtable->setExecutableChannel(device, model->tensorChannel));

  *out_model = model.release();
  return nullptr;
}

void falcon_model_retain(falcon_model_t *model) {
  if (model)
    model->referenceCount.fetch_add(1, std::memory_order_relaxed);
}

void falcon_model_release(falcon_model_t *model) {
  if (model &&
      model->referenceCount.fetch_sub(1, std::memory_order_acq_rel) == 1)
    delete model;
}

falcon_status_t falcon_model_query_info(const falcon_model_t *model,
                                        falcon_model_info_t *out_info) {
  if (!model)
    return makeNullArgumentStatus("falcon_model_query_info", "model");
  if (!out_info)
    return makeNullArgumentStatus("falcon_model_query_info", "out_info");
  const Manifest &manifest = model->manifest;
  out_info->name = manifest.modelName.c_str();
  out_info->vocab_size = manifest.vocabSize;
  out_info->hidden_size = manifest.hiddenSize;
  out_info->num_layers = manifest.numLayers;
  out_info->num_attention_heads = manifest.numAttentionHeads;
  out_info->num_kv_heads = manifest.numKVHeads;
  out_info->head_dim = manifest.headDim;
  out_info->max_position_embeddings = manifest.maxPositionEmbeddings;
  out_info->alibi = manifest.alibi;
  out_info->kv_cache_layers = manifest.cacheLayers;
  out_info->kv_cache_heads = manifest.cacheKVHeads;
  out_info->kv_cache_head_dim = manifest.cacheHeadDim;
  out_info->weights_size = model->rank().weightsSize;
  out_info->weights_checksum = model->rank().weightsChecksum;
  out_info->weights_open_seconds = model->weightsOpenSeconds;
  return nullptr;
}
