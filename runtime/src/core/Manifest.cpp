//===- Manifest.cpp - artifact manifest.json --------------------*- C++ -*-===//
//
// Reads manifest.json with llvm::json. Errors name the file and the dotted
// key ("config.vocab_size") so that a hand-edited or truncated manifest is
// easy to fix.
//
//===----------------------------------------------------------------------===//

#include "core/Manifest.h"

#include "core/Status.h"
#include "falcon/Support/Checksum.h"
#include "falcon/Support/Json.h"

#include "llvm/Support/Error.h"
#include "llvm/Support/ErrorOr.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"

#include <system_error>

using namespace falcon::runtime;
namespace json = llvm::json;

namespace {

/// Looks up keys of one JSON object and turns every problem into a status
/// that names the file and the full dotted key.
class ObjectReader {
public:
  ObjectReader(const json::Object &object, llvm::StringRef path,
               std::string keyPrefix)
      : object(object), path(path), keyPrefix(std::move(keyPrefix)) {}

  const json::Object &raw() const { return object; }
  std::string qualified(llvm::StringRef key) const {
    return keyPrefix + key.str();
  }

  falcon_status_t error(falcon_status_code_t code,
                        const llvm::Twine &message) const {
    return makeStatus(code, path + ": " + message);
  }

  falcon_status_t missing(llvm::StringRef key) const {
    return error(FALCON_STATUS_FAILED_PRECONDITION,
                 "missing required key '" + qualified(key) + "'");
  }

  falcon_status_t wrongType(llvm::StringRef key, llvm::StringRef what) const {
    return error(FALCON_STATUS_FAILED_PRECONDITION,
                 "key '" + qualified(key) + "' must be " + what);
  }

  falcon_status_t getInteger(llvm::StringRef key, int64_t &out) const {
    const json::Value *value = object.get(key);
    if (!value)
      return missing(key);
    std::optional<int64_t> integer = ::falcon::getAsInt64(*value);
    if (!integer)
      return wrongType(key, "an integer");
    out = *integer;
    return nullptr;
  }

  falcon_status_t getPositive(llvm::StringRef key, int64_t &out) const {
    FALCON_RETURN_IF_ERROR(getInteger(key, out));
    if (out <= 0)
      return error(FALCON_STATUS_FAILED_PRECONDITION,
                   "key '" + qualified(key) +
                       "' must be a positive integer, found " +
                       llvm::Twine(out));
    return nullptr;
  }

  falcon_status_t getString(llvm::StringRef key, std::string &out,
                            bool allowEmpty = false) const {
    const json::Value *value = object.get(key);
    if (!value)
      return missing(key);
    std::optional<llvm::StringRef> string = value->getAsString();
    if (!string || (!allowEmpty && string->empty()))
      return wrongType(key, allowEmpty ? "a string" : "a non-empty string");
    out = string->str();
    return nullptr;
  }

  falcon_status_t getBool(llvm::StringRef key, bool &out) const {
    const json::Value *value = object.get(key);
    if (!value)
      return missing(key);
    std::optional<bool> boolean = value->getAsBoolean();
    if (!boolean)
      return wrongType(key, "a boolean");
    out = *boolean;
    return nullptr;
  }

  falcon_status_t getObject(llvm::StringRef key,
                            const json::Object *&out) const {
    const json::Value *value = object.get(key);
    if (!value)
      return missing(key);
    out = value->getAsObject();
    if (!out)
      return wrongType(key, "an object");
    return nullptr;
  }

  falcon_status_t getArray(llvm::StringRef key, const json::Array *&out) const {
    const json::Value *value = object.get(key);
    if (!value)
      return missing(key);
    out = value->getAsArray();
    if (!out)
      return wrongType(key, "an array");
    return nullptr;
  }

  ObjectReader nested(const json::Object &child, llvm::StringRef key) const {
    return ObjectReader(child, path, qualified(key) + ".");
  }

  const json::Object &object;
  llvm::StringRef path;
  std::string keyPrefix;
};

namespace keys = falcon::manifest;

/// "target": what the code was generated for.
falcon_status_t parseTarget(const ObjectReader &reader, Manifest &manifest) {
  const json::Object *targetObject = nullptr;
  FALCON_RETURN_IF_ERROR(reader.getObject(keys::kTarget, targetObject));
  ObjectReader target = reader.nested(*targetObject, keys::kTarget);
  std::string kind;
  FALCON_RETURN_IF_ERROR(target.getString(keys::kTargetKind, kind));
  if (kind != "cpu")
    return reader.error(FALCON_STATUS_UNIMPLEMENTED,
                        "target.kind '" + kind + "' is not supported (this runtime runs cpu)");
  FALCON_RETURN_IF_ERROR(target.getString(keys::kTargetTriple, manifest.targetTriple));
  FALCON_RETURN_IF_ERROR(target.getString(keys::kTargetCPU, manifest.targetCPU));
  FALCON_RETURN_IF_ERROR(target.getPositive(keys::kTargetVectorBits, manifest.vectorBits));
  const json::Array *features = nullptr;
  FALCON_RETURN_IF_ERROR(target.getArray(keys::kTargetFeatures, features));
  for (const json::Value &feature : *features) {
    std::optional<llvm::StringRef> name = feature.getAsString();
    if (!name || name->empty())
      return target.wrongType(keys::kTargetFeatures, "an array of feature names");
    manifest.requiredFeatures.push_back(name->str());
  }
  return nullptr;
}

falcon_status_t parseChecksum(const ObjectReader &reader, llvm::StringRef text,
                              uint64_t &out) {
  llvm::Expected<uint64_t> value = falcon::parseChecksum(text);
  if (!value)
    return reader.error(FALCON_STATUS_FAILED_PRECONDITION,
                        reader.qualified("checksum") + " " +
                            llvm::toString(value.takeError()));
  out = *value;
  return nullptr;
}

/// The tensor table is informational (the compiled code has the offsets
/// built in), but a tensor that points outside weights.bin means the
/// manifest and the file disagree, which is worth refusing early.
falcon_status_t checkTensorTable(const ObjectReader &weights,
                                 uint64_t weightsSize) {
  const json::Value *value = weights.object.get("tensors");
  if (!value)
    return nullptr;
  const json::Array *tensors = value->getAsArray();
  if (!tensors)
    return weights.wrongType("tensors", "an array");
  for (size_t index = 0; index < tensors->size(); ++index) {
    std::string key = "tensors[" + std::to_string(index) + "]";
    const json::Object *tensor = (*tensors)[index].getAsObject();
    if (!tensor)
      return weights.wrongType(key, "an object");
    ObjectReader reader = weights.nested(*tensor, key);
    int64_t offset = 0, bytes = 0;
    FALCON_RETURN_IF_ERROR(reader.getInteger("offset", offset));
    FALCON_RETURN_IF_ERROR(reader.getInteger("bytes", bytes));
    if (offset < 0 || bytes < 0 || uint64_t(offset) > weightsSize ||
        uint64_t(bytes) > weightsSize - uint64_t(offset)) {
      std::string name = "?";
      if (std::optional<llvm::StringRef> tensorName = tensor->getString("name"))
        name = tensorName->str();
      // The end as a number only when it is one: offset + bytes may not fit
      // in an int64_t.
      int64_t end = 0;
      std::string endText = __builtin_add_overflow(offset, bytes, &end)
                                ? (llvm::Twine(offset) + " + " + llvm::Twine(bytes)).str()
                                : std::to_string(end);
      return weights.error(FALCON_STATUS_FAILED_PRECONDITION,
                           weights.qualified(key) + " ('" + name + "'): bytes [" +
                               llvm::Twine(offset) + ", " + endText +
                               ") lie outside weights.size (" + llvm::Twine(weightsSize) +
                               ")");
    }
  }
  return nullptr;
}

/// A file of the artifact: a name in its directory, never a path (no '/',
/// not '.' or '..'), so that a manifest cannot make the runtime load or map
/// anything from outside the artifact.
falcon_status_t getFileName(const ObjectReader &reader, llvm::StringRef key, std::string &out) {
  FALCON_RETURN_IF_ERROR(reader.getString(key, out));
  llvm::StringRef name = out;
  if (name.contains('/') || name.contains('\0') || name == "." || name == "..")
    return reader.error(FALCON_STATUS_FAILED_PRECONDITION,
                        "key '" + reader.qualified(key) +
                            "' must name a file in the artifact directory (no '/', '.' or "
                            "'..'), found '" + name + "'");
  return nullptr;
}

/// A rank's own files: its host library and entry point, and "weights".
falcon_status_t parseRankFiles(const ObjectReader &rank, ManifestRank &entry) {
  FALCON_RETURN_IF_ERROR(getFileName(rank, keys::kRankHostLibrary, entry.hostLibrary));
  FALCON_RETURN_IF_ERROR(rank.getString(keys::kRankEntryPoint, entry.entryPoint));
  const json::Object *weightsObject = nullptr;
  FALCON_RETURN_IF_ERROR(rank.getObject(keys::kRankWeights, weightsObject));
  ObjectReader weights = rank.nested(*weightsObject, keys::kRankWeights);
  FALCON_RETURN_IF_ERROR(getFileName(weights, "file", entry.weightsFile));
  int64_t weightsSize = 0;
  FALCON_RETURN_IF_ERROR(weights.getInteger("size", weightsSize));
  if (weightsSize < 0)
    return weights.error(FALCON_STATUS_FAILED_PRECONDITION,
                         "key '" + weights.qualified("size") +
                             "' must not be negative, found " + llvm::Twine(weightsSize));
  entry.weightsSize = uint64_t(weightsSize);
  std::string checksum;
  FALCON_RETURN_IF_ERROR(weights.getString("checksum", checksum));
  FALCON_RETURN_IF_ERROR(parseChecksum(weights, checksum, entry.weightsChecksum));
  return checkTensorTable(weights, entry.weightsSize);
}

/// A rank's share of the model; a single rank's manifest may leave it out.
falcon_status_t parseRankShare(const ObjectReader &rank, const Manifest &manifest,
                               ManifestRank &entry) {
  const json::Object &object = rank.raw();
  auto optional = [&](llvm::StringRef key, int64_t fallback, int64_t low, int64_t high,
                      int64_t &out) -> falcon_status_t {
    out = fallback;
    if (!object.get(key))
      return nullptr;
    FALCON_RETURN_IF_ERROR(rank.getInteger(key, out));
    if (out < low || out > high)
      return rank.error(FALCON_STATUS_FAILED_PRECONDITION,
                        "key '" + rank.qualified(key) + "' must be in [" + llvm::Twine(low) +
                            ", " + llvm::Twine(high) + "], found " + llvm::Twine(out));
    return nullptr;
  };
  FALCON_RETURN_IF_ERROR(optional(keys::kRankNumHeads, manifest.numAttentionHeads, 1,
                                  manifest.numAttentionHeads, entry.numHeads));
  FALCON_RETURN_IF_ERROR(optional(keys::kRankFirstHead, 0, 0,
                                  manifest.numAttentionHeads - entry.numHeads, entry.firstHead));
  FALCON_RETURN_IF_ERROR(optional(keys::kRankNumKVHeads, manifest.numKVHeads, 1,
                                  manifest.numKVHeads, entry.numKVHeads));
  FALCON_RETURN_IF_ERROR(optional(keys::kRankVocabSize, manifest.vocabSize, 1,
                                  manifest.vocabSize, entry.vocabSize));
  FALCON_RETURN_IF_ERROR(optional(keys::kRankVocabOffset, 0, 0,
                                  manifest.vocabSize - entry.vocabSize, entry.vocabOffset));
  bool firstStage = entry.firstLayer == 0;
  bool lastStage = entry.firstLayer + entry.numLayers == manifest.numLayers;
  std::string input = "input_ids", output = "logits";
  if (object.get(keys::kRankInput))
    FALCON_RETURN_IF_ERROR(rank.getString(keys::kRankInput, input));
  if (object.get(keys::kRankOutput))
    FALCON_RETURN_IF_ERROR(rank.getString(keys::kRankOutput, output));
  const char *expectedInput = firstStage ? "input_ids" : "hidden_in";
  const char *expectedOutput = lastStage ? "logits" : "hidden";
  if (input != expectedInput || output != expectedOutput)
    return rank.error(FALCON_STATUS_FAILED_PRECONDITION,
                      "keys '" + rank.qualified(keys::kRankInput) + "' and '" +
                          rank.qualified(keys::kRankOutput) + "' must be '" + expectedInput +
                          "' and '" + expectedOutput + "' for a rank holding layers [" +
                          llvm::Twine(entry.firstLayer) + ", +" +
                          llvm::Twine(entry.numLayers) + ")");
  entry.inputHidden = !firstStage;
  entry.outputLogits = lastStage;
  return nullptr;
}

/// "plan": tp x pp ranks, rank r at stage r / tp and tensor slot r % tp, the
/// stages holding consecutive runs of layers that cover the model.
falcon_status_t parsePlan(const ObjectReader &reader, Manifest &manifest) {
  const json::Object *planObject = nullptr;
  FALCON_RETURN_IF_ERROR(reader.getObject(keys::kPlan, planObject));
  ObjectReader plan = reader.nested(*planObject, keys::kPlan);
  FALCON_RETURN_IF_ERROR(plan.getPositive(keys::kPlanTP, manifest.tensorParallel));
  FALCON_RETURN_IF_ERROR(plan.getPositive(keys::kPlanPP, manifest.pipelineParallel));
  FALCON_RETURN_IF_ERROR(plan.getPositive(keys::kPlanThreads, manifest.threads));
  const json::Array *ranks = nullptr;
  FALCON_RETURN_IF_ERROR(plan.getArray(keys::kPlanRanks, ranks));
  int64_t tp = manifest.tensorParallel, pp = manifest.pipelineParallel;
  if (tp > 4096 || pp > 4096 || int64_t(ranks->size()) != tp * pp)
    return reader.error(FALCON_STATUS_FAILED_PRECONDITION,
                        "plan.ranks has " + llvm::Twine(ranks->size()) +
                            " entries, expected tp x pp = " + llvm::Twine(tp) + " x " +
                            llvm::Twine(pp));
  int64_t stageStart = 0;
  for (auto [index, value] : llvm::enumerate(*ranks)) {
    std::string key = (keys::kPlanRanks + "[" + llvm::Twine(index) + "]").str();
    const json::Object *rankObject = value.getAsObject();
    if (!rankObject)
      return plan.wrongType(key, "an object");
    ObjectReader rank = plan.nested(*rankObject, key);
    ManifestRank entry;
    int64_t rankIndex = 0;
    FALCON_RETURN_IF_ERROR(rank.getInteger(keys::kRankIndex, rankIndex));
    FALCON_RETURN_IF_ERROR(rank.getInteger(keys::kRankStage, entry.stage));
    FALCON_RETURN_IF_ERROR(rank.getInteger(keys::kRankSlot, entry.slot));
    FALCON_RETURN_IF_ERROR(rank.getInteger(keys::kRankFirstLayer, entry.firstLayer));
    FALCON_RETURN_IF_ERROR(rank.getPositive(keys::kRankNumLayers, entry.numLayers));
    int64_t r = int64_t(index);
    if (rankIndex != r || entry.stage != r / tp || entry.slot != r % tp)
      return reader.error(FALCON_STATUS_FAILED_PRECONDITION,
                          "plan." + key + " must be rank " + llvm::Twine(r) + " at stage " +
                              llvm::Twine(r / tp) + ", slot " + llvm::Twine(r % tp));
    if (entry.slot == 0 && entry.stage > 0)
      stageStart += manifest.ranks.back().numLayers;
    if (entry.firstLayer != stageStart || entry.numLayers > manifest.numLayers - stageStart)
      return reader.error(FALCON_STATUS_FAILED_PRECONDITION,
                          "plan." + key + " holds layers [" + llvm::Twine(entry.firstLayer) +
                              ", +" + llvm::Twine(entry.numLayers) + "), expected to start at " +
                              llvm::Twine(stageStart) + " within " +
                              llvm::Twine(manifest.numLayers) + " layers");
    if (entry.slot > 0 && entry.numLayers != manifest.ranks.back().numLayers)
      return reader.error(FALCON_STATUS_FAILED_PRECONDITION,
                          "plan." + key + " must hold the layers of its stage");
    FALCON_RETURN_IF_ERROR(parseRankFiles(rank, entry));
    FALCON_RETURN_IF_ERROR(parseRankShare(rank, manifest, entry));
    manifest.ranks.push_back(entry);
  }
  if (stageStart + manifest.ranks.back().numLayers != manifest.numLayers)
    return reader.error(FALCON_STATUS_FAILED_PRECONDITION,
                        "plan.ranks cover " +
                            llvm::Twine(stageStart + manifest.ranks.back().numLayers) +
                            " of " + llvm::Twine(manifest.numLayers) + " layers");
  return nullptr;
}

} // namespace

falcon_status_t falcon::runtime::parseManifest(llvm::StringRef text,
                                               llvm::StringRef path,
                                               Manifest &outManifest) {
  llvm::Expected<json::Value> parsed = falcon::parseJson(text);
  if (!parsed)
    return makeStatus(
        FALCON_STATUS_FAILED_PRECONDITION,
        path + ": invalid JSON: " + llvm::toString(parsed.takeError()));
  const json::Object *root = parsed->getAsObject();
  if (!root)
    return makeStatus(FALCON_STATUS_FAILED_PRECONDITION,
                      path + ": the top level must be a JSON object");
  ObjectReader reader(*root, path, "");

  int64_t formatVersion = 0;
  FALCON_RETURN_IF_ERROR(reader.getInteger("format_version", formatVersion));
  if (formatVersion != kArtifactFormatVersion)
    return reader.error(FALCON_STATUS_UNIMPLEMENTED,
                        "format_version " + llvm::Twine(formatVersion) +
                            " is not supported (this runtime reads version " +
                            llvm::Twine(kArtifactFormatVersion) +
                            "; recompile the artifact with falcon-compile)");

  Manifest manifest;
  if (root->get("model"))
    FALCON_RETURN_IF_ERROR(
        reader.getString("model", manifest.modelName, /*allowEmpty=*/true));
  FALCON_RETURN_IF_ERROR(parseTarget(reader, manifest));
  std::string activationDType;
  FALCON_RETURN_IF_ERROR(reader.getString(keys::kActivationDType, activationDType));
  if (activationDType != "f32")
    return reader.error(FALCON_STATUS_UNIMPLEMENTED,
                        "activation_dtype '" + activationDType +
                            "' is not supported (this runtime supports f32)");

  const json::Object *configObject = nullptr;
  FALCON_RETURN_IF_ERROR(reader.getObject("config", configObject));
  ObjectReader config = reader.nested(*configObject, "config");
  FALCON_RETURN_IF_ERROR(config.getPositive("vocab_size", manifest.vocabSize));
  FALCON_RETURN_IF_ERROR(
      config.getPositive("hidden_size", manifest.hiddenSize));
  FALCON_RETURN_IF_ERROR(
      config.getPositive("num_hidden_layers", manifest.numLayers));
  FALCON_RETURN_IF_ERROR(
      config.getPositive("num_attention_heads", manifest.numAttentionHeads));
  FALCON_RETURN_IF_ERROR(
      config.getPositive("num_kv_heads", manifest.numKVHeads));
  FALCON_RETURN_IF_ERROR(config.getPositive("head_dim", manifest.headDim));
  FALCON_RETURN_IF_ERROR(config.getPositive("max_position_embeddings",
                                            manifest.maxPositionEmbeddings));
  FALCON_RETURN_IF_ERROR(config.getBool("alibi", manifest.alibi));

  const json::Object *cacheObject = nullptr;
  FALCON_RETURN_IF_ERROR(reader.getObject("kv_cache", cacheObject));
  ObjectReader cache = reader.nested(*cacheObject, "kv_cache");
  FALCON_RETURN_IF_ERROR(cache.getPositive("layers", manifest.cacheLayers));
  FALCON_RETURN_IF_ERROR(cache.getPositive("kv_heads", manifest.cacheKVHeads));
  FALCON_RETURN_IF_ERROR(cache.getPositive("head_dim", manifest.cacheHeadDim));
  FALCON_RETURN_IF_ERROR(cache.getString("dtype", manifest.cacheDType));
  manifest.cacheElementBytes = getKVCacheElementBytes(manifest.cacheDType);
  if (manifest.cacheElementBytes == 0)
    return reader.error(FALCON_STATUS_UNIMPLEMENTED,
                        "kv_cache.dtype '" + manifest.cacheDType +
                            "' is not supported (this runtime supports f32, bf16 and f16)");

  // The f16 precision guard: one state byte per layer and one for the LM
  // head (docs/precision.md).
  if (reader.raw().get(keys::kPrecisionGuard)) {
    const json::Object *guardObject = nullptr;
    FALCON_RETURN_IF_ERROR(reader.getObject(keys::kPrecisionGuard, guardObject));
    ObjectReader guard = reader.nested(*guardObject, keys::kPrecisionGuard);
    std::string dtype, fallback;
    FALCON_RETURN_IF_ERROR(guard.getString("dtype", dtype));
    FALCON_RETURN_IF_ERROR(guard.getString("fallback", fallback));
    if (dtype != "f16" || fallback != "bf16")
      return reader.error(FALCON_STATUS_UNIMPLEMENTED,
                          "precision_guard from '" + dtype + "' to '" + fallback +
                              "' is not supported (this runtime supports f16 to bf16)");
    FALCON_RETURN_IF_ERROR(guard.getPositive("entries", manifest.precisionGuardEntries));
  }

  FALCON_RETURN_IF_ERROR(parsePlan(reader, manifest));
  if (manifest.precisionGuardEntries != 0) {
    if (manifest.precisionGuardEntries != manifest.numLayers + 1)
      return reader.error(FALCON_STATUS_FAILED_PRECONDITION,
                          "precision_guard.entries is " +
                              llvm::Twine(manifest.precisionGuardEntries) +
                              ", expected num_hidden_layers + 1 = " +
                              llvm::Twine(manifest.numLayers + 1));
    if (manifest.tensorParallel * manifest.pipelineParallel != 1)
      return reader.error(FALCON_STATUS_UNIMPLEMENTED,
                          "precision_guard needs a one-rank plan");
  }

  outManifest = std::move(manifest);
  return nullptr;
}

falcon_status_t falcon::runtime::readManifest(llvm::StringRef path,
                                              Manifest &outManifest) {
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> buffer =
      llvm::MemoryBuffer::getFile(path, /*IsText=*/true);
  if (std::error_code error = buffer.getError())
    return makeStatus(error == std::errc::no_such_file_or_directory
                          ? FALCON_STATUS_NOT_FOUND
                          : FALCON_STATUS_FAILED_PRECONDITION,
                      path + ": cannot read: " + error.message());
  return parseManifest((*buffer)->getBuffer(), path, outManifest);
}
