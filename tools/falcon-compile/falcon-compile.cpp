//===- falcon-compile.cpp - the falcon-mlir ahead-of-time compiler --------===//
//
// falcon-compile MODEL -o ART [--target=cpu]      compile an artifact directory
// falcon-compile MODEL --emit=falcon|linalg|llvm|llvm-ir|obj [-o FILE]
// falcon-compile MODEL --print-stats [-o ART]      statistics on stdout
//
// MODEL is a Hugging Face checkpoint directory, a lone config.json or a .mlir
// file. Output is written only once everything succeeded: an error leaves no
// partial file or artifact behind.
//
//===----------------------------------------------------------------------===//

#include "Falcon/IR/FalconDialect.h"
#include "falcon/Codegen/CPU/Passes.h"
#include "falcon/Import/Importer.h"
#include "falcon/Import/ModelStats.h"
#include "falcon/Import/Pruning.h"
#include "falcon/Pipelines/Pipelines.h"
#include "falcon/Target/Artifact.h"
#include "falcon/Transforms/Passes.h"
#include "falcon/Transforms/ParallelPlan.h"
#include "falcon/Transforms/PlanReport.h"
#include "falcon/Transforms/WeightLayout.h"

#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Pass/PassManager.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Support/FileUtilities.h"
#include "falcon/Support/OutputStream.h"
#include "falcon/Support/ToolVersion.h"
#include "falcon/runtime.h"
#include "falcon/tokenizer.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"

#include <algorithm>
#include <csignal>
#include <signal.h>
#include <tuple>
#include <vector>

using namespace mlir;
using namespace mlir::falcon;

namespace {
enum class EmitKind { None, Falcon, Linalg, LLVM, LLVMIR, Object };
enum class TargetKind { CPU };

llvm::cl::OptionCategory category("falcon-compile options");
llvm::cl::opt<std::string> modelPath(
    llvm::cl::Positional, llvm::cl::Required,
    llvm::cl::desc("<checkpoint dir | config.json | file.mlir>"),
    llvm::cl::cat(category));
llvm::cl::opt<std::string> outputPath("o",
                                      llvm::cl::desc("Output: the file for --emit, "
                                                     "otherwise the artifact directory"),
                                      llvm::cl::value_desc("path"),
                                      llvm::cl::init("-"),
                                      llvm::cl::cat(category));
llvm::cl::opt<EmitKind> emit(
    "emit", llvm::cl::desc("IR to print"), llvm::cl::init(EmitKind::None),
    llvm::cl::values(
        clEnumValN(EmitKind::Falcon, "falcon", "the imported falcon dialect module"),
        clEnumValN(EmitKind::Linalg, "linalg",
                   "after falcon-to-linalg-pipeline (linalg on tensors)"),
        clEnumValN(EmitKind::LLVM, "llvm", "after falcon-cpu-pipeline (LLVM dialect)"),
        clEnumValN(EmitKind::LLVMIR, "llvm-ir", "the LLVM IR of the host library"),
        clEnumValN(EmitKind::Object, "obj",
                   "the host code as an object file (any --mtriple LLVM has)")),
    llvm::cl::cat(category));
llvm::cl::opt<TargetKind> target(
    "target", llvm::cl::desc("Target of the artifact"), llvm::cl::init(TargetKind::CPU),
    llvm::cl::values(clEnumValN(TargetKind::CPU, "cpu", "a CPU (x86-64 or AArch64; --mtriple, --mcpu)")),
    llvm::cl::cat(category));
llvm::cl::opt<std::string> cpuName(
    "mcpu", llvm::cl::desc("CPU to generate code for (default or 'native': this machine's)"),
    llvm::cl::init(""), llvm::cl::cat(category));
llvm::cl::opt<std::string> tripleName(
    "mtriple", llvm::cl::desc("Target triple (default: this machine's)"), llvm::cl::init(""),
    llvm::cl::cat(category));
llvm::cl::opt<std::string> cpuFeatures(
    "mattr", llvm::cl::desc("Extra CPU features, '+name' or '-name' separated by commas"),
    llvm::cl::init(""), llvm::cl::cat(category));
llvm::cl::opt<unsigned> llvmOptLevel(
    "llvm-opt", llvm::cl::desc("LLVM IR optimization level of the host code (0-3)"),
    llvm::cl::init(3), llvm::cl::cat(category));
llvm::cl::opt<int64_t> parallelChunks(
    "parallel-chunks",
    llvm::cl::desc("Threads (blocks) each projection and attention is split over: output "
                   "columns at prefill, weight rows at decode, heads (1: single-threaded; "
                   "default: the cores of this machine); the target's 'threads'"),
    llvm::cl::init(0), llvm::cl::cat(category));
// Overrides of the CPU strategy's register tile (falcon-cpu-select-lowering-
// strategy's options, passed on as its typed options struct).
llvm::cl::opt<int64_t> tileRows(
    "tile-rows",
    llvm::cl::desc("Sequence rows of a projection's register tile, and the fewest rows "
                   "that take the prefill path (default: sized for the target)"),
    llvm::cl::init(0), llvm::cl::cat(category));
llvm::cl::opt<int64_t> tileCols(
    "tile-cols",
    llvm::cl::desc("Output columns of a projection's register tile (default: sized for "
                   "the target)"),
    llvm::cl::init(0), llvm::cl::cat(category));
llvm::cl::opt<int64_t> tileDepth(
    "tile-depth",
    llvm::cl::desc("Input features per block of a register tile's reduction (default 256)"),
    llvm::cl::init(0), llvm::cl::cat(category));
// The CPU strategy's attention blocks (its options too).
llvm::cl::opt<int64_t> attentionRows(
    "attention-rows",
    llvm::cl::desc("Query rows per block of the tiled (online-softmax) attention "
                   "(default 64)"),
    llvm::cl::init(0), llvm::cl::cat(category));
llvm::cl::opt<int64_t> attentionKeys(
    "attention-keys",
    llvm::cl::desc("Keys per block of the tiled attention: its scores exist for one "
                   "block of rows x keys at a time (default 512)"),
    llvm::cl::init(0), llvm::cl::cat(category));
llvm::cl::opt<std::string> computeDType(
    "dtype",
    llvm::cl::desc("Activation type of the float projections: f32 (default), bf16 or f16 "
                   "(inputs rounded once, exact products, f32 sums; bf16 pairs summed with "
                   "vdpbf16ps on AVX512-BF16 CPUs); also the KV cache's unless "
                   "--kv-cache-dtype says (docs/precision.md)"),
    llvm::cl::init("f32"), llvm::cl::cat(category));
llvm::cl::opt<bool> precisionGuardOption(
    "precision-guard",
    llvm::cl::desc("With --dtype f16 (on by default there): check every f16 rounding for "
                   "overflow and rerun a step whose layer overflowed with that layer in bf16, "
                   "reporting the layers switched (docs/precision.md); "
                   "--precision-guard=false turns it off"),
    llvm::cl::init(false), llvm::cl::cat(category));
llvm::cl::opt<std::string> kvCacheDType(
    "kv-cache-dtype",
    llvm::cl::desc("Element type of the KV cache: f32 (default: --dtype's), bf16 or f16 (half "
                   "the memory; keys and values are rounded once when cached)"),
    llvm::cl::init("f32"), llvm::cl::cat(category));
llvm::cl::opt<std::string> quantize(
    "quantize",
    llvm::cl::desc("Weight-only quantization of the decoder layers' projections: none "
                   "(default), int8 or int4; round to nearest at compile time, f16 scales, "
                   "dequantized inside the generated kernels (docs/precision.md)"),
    llvm::cl::init("none"), llvm::cl::cat(category));
llvm::cl::opt<int64_t> groupSize(
    "group-size",
    llvm::cl::desc("Inputs per quantization scale: 32, 64 or 128 (default 128; halved for "
                   "a weight whose inputs it does not divide)"),
    llvm::cl::init(128), llvm::cl::cat(category));
llvm::cl::opt<bool> symmetricQuantization(
    "symmetric",
    llvm::cl::desc("Symmetric codes: no zero points (default: asymmetric, an f16 zero point "
                   "per group)"),
    llvm::cl::cat(category));
llvm::cl::opt<bool> quantizeLMHead(
    "quantize-lm-head",
    llvm::cl::desc("Also quantize the LM head to int8 (groups of --group-size, --symmetric as "
                   "the layers; a tied table keeps its stored rows for the embedding): needs "
                   "--quantize or a GPTQ/AWQ checkpoint"),
    llvm::cl::cat(category));
llvm::cl::opt<std::string> int8Activations(
    "int8-activations",
    llvm::cl::desc("Decode with a quantized weight: quantize the activation row to int8 "
                   "(blocks of 16 or 32, f32 scales) and sum integer dot products (vpdpbusd): "
                   "auto (default: where the CPU has AVX512-VNNI), on, or off (dequantize "
                   "the weight to f32)"),
    llvm::cl::init("auto"), llvm::cl::cat(category));
llvm::cl::list<std::string> sanitize(
    "sanitize", llvm::cl::CommaSeparated,
    llvm::cl::desc("Instrument the host library: address (AddressSanitizer), undefined "
                   "(out-of-bounds checks through the UBSan runtime); it then runs only "
                   "under the sanitizer runtime (docs/reliability.md)"),
    llvm::cl::value_desc("address,undefined"), llvm::cl::cat(category));
llvm::cl::opt<double> pruneHeads(
    "prune-heads",
    llvm::cl::desc("Structured pruning: remove this fraction of the query heads of every KV "
                   "group, the least important on the calibration text (docs/precision.md)"),
    llvm::cl::init(0.0), llvm::cl::cat(category));
llvm::cl::opt<double> pruneFFN(
    "prune-ffn",
    llvm::cl::desc("Structured pruning: remove this fraction of each layer's MLP neurons "
                   "(dense_h_to_4h rows with the matching dense_4h_to_h columns)"),
    llvm::cl::init(0.0), llvm::cl::cat(category));
llvm::cl::opt<std::string> calibrationText(
    "calibration",
    llvm::cl::desc("Text file the pruning importance is measured on (tokenized with the "
                   "checkpoint's tokenizer.json)"),
    llvm::cl::value_desc("file"), llvm::cl::cat(category));
llvm::cl::opt<std::string> calibrationIds(
    "calibration-ids",
    llvm::cl::desc("Token ids (separated by commas or white space) the pruning importance is "
                   "measured on, instead of --calibration"),
    llvm::cl::value_desc("file"), llvm::cl::cat(category));
llvm::cl::opt<std::string> pruneOut(
    "prune-out",
    llvm::cl::desc("Directory the pruned checkpoint is written to (default: the artifact "
                   "directory followed by '.pruned'); compile it again without recalibrating"),
    llvm::cl::value_desc("dir"), llvm::cl::cat(category));
llvm::cl::opt<int64_t> tensorParallel(
    "tp", llvm::cl::desc("Tensor-parallel ranks per pipeline stage (Megatron; default 1)"),
    llvm::cl::init(1), llvm::cl::cat(category));
llvm::cl::opt<int64_t> pipelineParallel(
    "pp", llvm::cl::desc("Pipeline stages (contiguous layers balanced by cost; default 1)"),
    llvm::cl::init(1), llvm::cl::cat(category));
enum class PlanFormat { None, Text, JSON };
llvm::cl::opt<PlanFormat> printPlan(
    "print-plan", llvm::cl::desc("Print the tp x pp plan: each rank's stage, layers, heads, "
                                 "weight bytes, KV-cache bytes per token, collectives"),
    llvm::cl::ValueOptional, llvm::cl::init(PlanFormat::None),
    llvm::cl::values(clEnumValN(PlanFormat::Text, "", "as text (the default)"),
                     clEnumValN(PlanFormat::Text, "text", "as text"),
                     clEnumValN(PlanFormat::JSON, "json", "as JSON, for tools")),
    llvm::cl::cat(category));
llvm::cl::opt<bool> quiet("quiet", llvm::cl::desc("Do not print progress"),
                          llvm::cl::cat(category));
llvm::cl::opt<bool> printStats(
    "print-stats",
    llvm::cl::desc("Print the parameter count, weight bytes at bf16/int8/int4, "
                   "KV-cache bytes per token, the memory a run needs, the artifact's "
                   "disk size and the IR size"),
    llvm::cl::cat(category));
llvm::cl::opt<int64_t> statsCapacity(
    "stats-capacity",
    llvm::cl::desc("Tokens per row of the KV cache --print-stats sizes the memory for "
                   "(default: max_position_embeddings, the runtime's default)"),
    llvm::cl::init(0), llvm::cl::cat(category));
llvm::cl::opt<int64_t> statsBatch(
    "stats-batch", llvm::cl::desc("Rows --print-stats sizes the memory for (default 1)"),
    llvm::cl::init(1), llvm::cl::cat(category));
} // namespace

static int fail(const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "falcon-compile") << message << "\n";
  return 1;
}

/// Fails when the filesystem of the artifact's parent directory has less
/// room than the artifact will take: the weights as stored (exact for one
/// rank; a plan of several ranks repeats only small replicated tensors, and
/// the embedding table for the LM head), the copied checkpoint files and an
/// allowance per host library. FALCON_COMPILE_FREE_DISK_BYTES (a number of
/// bytes) replaces the free space, for tests.
static llvm::Error checkFreeDiskSpace(const Checkpoint &checkpoint, MLIRContext *context,
                                      uint64_t copiedFileBytes) {
  llvm::SmallString<256> parent(llvm::sys::path::parent_path(outputPath.getValue()));
  if (parent.empty())
    parent = ".";
  llvm::sys::fs::make_absolute(parent);
  llvm::sys::path::remove_dots(parent, /*remove_dot_dot=*/true);
  uint64_t available = 0;
  std::optional<std::string> fake = llvm::sys::Process::GetEnv("FALCON_COMPILE_FREE_DISK_BYTES");
  if (!fake || StringRef(*fake).getAsInteger(10, available)) {
    llvm::ErrorOr<llvm::sys::fs::space_info> space = llvm::sys::fs::disk_space(parent);
    // The parent was created before this check; should it still not be
    // there, creating the staging directory reports it.
    if (!space)
      return llvm::Error::success();
    available = space->available;
  }
  uint64_t weights = getArtifactWeightBytes(checkpoint, context);
  uint64_t worldSize = uint64_t(tensorParallel * pipelineParallel);
  uint64_t needed = weights + copiedFileBytes + worldSize * kHostLibraryBytesAllowance;
  if (needed <= available)
    return llvm::Error::success();
  return llvm::createStringError(
      outputPath + ": needs about " + formatByteSize(needed) + " (weights " +
      formatByteSize(weights) + (copiedFileBytes ? " + tokenizer files " +
                                                       formatByteSize(copiedFileBytes)
                                                 : std::string()) +
      " + code) but only " + formatByteSize(available) + " are free on " + parent);
}

/// The calibration tokens: --calibration-ids, or --calibration tokenized
/// with the checkpoint's tokenizer.
static llvm::Expected<std::vector<int64_t>>
readCalibrationTokens(const Checkpoint &checkpoint) {
  auto fail = [](const llvm::Twine &message) { return llvm::createStringError(message.str()); };
  if (calibrationText.empty() == calibrationIds.empty())
    return fail("--prune-heads/--prune-ffn need a calibration text: --calibration FILE or "
                "--calibration-ids FILE (one of the two)");
  StringRef path = calibrationIds.empty() ? calibrationText : calibrationIds;
  auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/true);
  if (!buffer)
    return fail(path + ": " + buffer.getError().message());
  StringRef text = (*buffer)->getBuffer();
  std::vector<int64_t> tokens;
  if (!calibrationIds.empty()) {
    llvm::SmallVector<StringRef> fields;
    text.split(fields, ',');
    for (StringRef field : fields) {
      llvm::SmallVector<StringRef> words;
      field.split(words, ' ', -1, /*KeepEmpty=*/false);
      for (StringRef word : words) {
        word = word.trim();
        if (word.empty())
          continue;
        int64_t id = 0;
        if (word.getAsInteger(10, id))
          return fail(path + ": '" + word + "' is not a token id");
        tokens.push_back(id);
      }
    }
    return tokens;
  }
  std::string tokenizerPath;
  for (const std::string &file : getCopiedCheckpointFiles(checkpoint))
    if (llvm::sys::path::filename(file) == "tokenizer.json")
      tokenizerPath = file;
  if (tokenizerPath.empty())
    return fail("the checkpoint has no tokenizer.json to read --calibration with (give "
                "--calibration-ids)");
  falcon_tokenizer_t *tokenizer = nullptr;
  auto message = [](falcon_status_t status) {
    std::string text = falcon_status_message(status);
    falcon_status_free(status);
    return text;
  };
  if (falcon_status_t status = falcon_tokenizer_open(tokenizerPath.c_str(), &tokenizer))
    return fail(message(status));
  tokens.resize(text.size() + 16);
  size_t count = 0;
  falcon_status_t status = falcon_tokenizer_encode(tokenizer, text.data(), text.size(), false,
                                                   tokens.data(), tokens.size(), &count);
  if (status && count > tokens.size()) {
    falcon_status_free(status);
    tokens.resize(count);
    status = falcon_tokenizer_encode(tokenizer, text.data(), text.size(), false, tokens.data(),
                                     tokens.size(), &count);
  }
  falcon_tokenizer_release(tokenizer);
  if (status)
    return fail(path + ": " + message(status));
  tokens.resize(count);
  return tokens;
}

/// --prune-heads/--prune-ffn: measures the importance on the calibration
/// text, writes the pruned checkpoint and opens it.
static llvm::Expected<Checkpoint> pruneCheckpoint(const Checkpoint &checkpoint,
                                                  bool showProgress) {
  auto fail = [](const llvm::Twine &message) { return llvm::createStringError(message.str()); };
  if (std::string problem = checkPruningRatios(checkpoint.config, pruneHeads, pruneFFN);
      !problem.empty())
    return fail(problem);
  std::string out = pruneOut;
  if (out.empty()) {
    if (outputPath.empty() || emit != EmitKind::None)
      return fail("--prune-out DIR is needed when no artifact directory is written");
    out = outputPath + ".pruned";
  }
  // Refused before the calibration's work, as the writer would refuse it.
  if (llvm::sys::fs::exists(out) &&
      !llvm::sys::fs::exists(llvm::Twine(out) + "/pruning.json"))
    return fail(out + ": exists and is not a pruned model (no pruning.json); not overwritten");
  llvm::Expected<std::vector<int64_t>> tokens = readCalibrationTokens(checkpoint);
  if (!tokens)
    return tokens.takeError();
  int64_t lastPercent = -1;
  int64_t layers = checkpoint.config.numLayers;
  llvm::Expected<PruningImportance> importance = computePruningImportance(
      checkpoint, *tokens, [&](int64_t window, int64_t windows, int64_t layer) {
        int64_t percent = 100 * (layer * windows + window + 1) / (layers * windows);
        if (showProgress && percent / 10 != lastPercent / 10)
          llvm::errs() << llvm::formatv("falcon-compile: calibrating on {0} tokens: {1}%\n",
                                        tokens->size(), percent);
        lastPercent = percent;
      });
  if (!importance)
    return importance.takeError();
  PruningSelection selection = selectPruning(checkpoint.config, *importance, pruneHeads, pruneFFN);
  if (llvm::Error error = writePrunedCheckpoint(checkpoint, *importance, selection, out,
                                                getCopiedCheckpointFiles(checkpoint)))
    return std::move(error);
  if (showProgress) {
    llvm::errs() << "falcon-compile: ";
    printPruningSummary(checkpoint.config, selection, llvm::errs());
    llvm::errs() << "falcon-compile: wrote the pruned checkpoint " << out
                 << " (its report: pruning.json)\n";
  }
  return openCheckpoint(out);
}

int main(int argc, char **argv) {
  // A signal the caller ignores (nohup: SIGHUP) stays ignored; InitLLVM would
  // install its own handlers over it.
  std::vector<int> ignoredSignals;
  for (int signal : {SIGHUP, SIGINT, SIGTERM}) {
    struct sigaction action;
    if (::sigaction(signal, nullptr, &action) == 0 && action.sa_handler == SIG_IGN)
      ignoredSignals.push_back(signal);
  }
  llvm::InitLLVM init(argc, argv);
  for (int signal : ignoredSignals)
    std::signal(signal, SIG_IGN);
  // A file-size limit (ulimit -f) is a failed write like a full disk (EFBIG:
  // a one-line error, the staging directory removed), not a death by signal.
  std::signal(SIGXFSZ, SIG_IGN);
  llvm::cl::HideUnrelatedOptions(category);
  ::falcon::setToolVersionPrinter("falcon-compile");
  llvm::cl::ParseCommandLineOptions(argc, argv,
                                    "falcon-mlir ahead-of-time compiler\n");
  bool buildArtifact = emit == EmitKind::None && outputPath != "-";
  bool wantPlan = printPlan != PlanFormat::None;
  if (emit == EmitKind::None && !printStats && !buildArtifact && !wantPlan)
    return fail("nothing to do: pass -o ARTIFACT_DIR, --emit=..., --print-stats or "
                "--print-plan");
  // Every option is checked before any work. By default the code is
  // compiled for this machine's CPU and its parallel loops are split for
  // this machine's cores.
  // Upper bounds keep the register tiles and thread blocks sane: a tile is
  // unrolled into tile-rows x tile-cols accumulators.
  for (auto [name, value, limit, given] :
       {std::tuple<StringRef, int64_t, int64_t, bool>{
            "--parallel-chunks", parallelChunks, 1024, parallelChunks.getNumOccurrences() > 0},
        {"--tile-rows", tileRows, 64, tileRows.getNumOccurrences() > 0},
        {"--tile-cols", tileCols, 1024, tileCols.getNumOccurrences() > 0},
        {"--tile-depth", tileDepth, 1 << 20, tileDepth.getNumOccurrences() > 0},
        {"--attention-rows", attentionRows, FalconDialect::kMaxAttentionBlock,
         attentionRows.getNumOccurrences() > 0},
        {"--attention-keys", attentionKeys, FalconDialect::kMaxAttentionBlock,
         attentionKeys.getNumOccurrences() > 0},
        {"--stats-capacity", statsCapacity, 1 << 24, statsCapacity.getNumOccurrences() > 0},
        {"--stats-batch", statsBatch, 1 << 16, statsBatch.getNumOccurrences() > 0},
        {"--tp", tensorParallel, 4096, true},
        {"--pp", pipelineParallel, 4096, true}})
    if (given && (value < 1 || value > limit))
      return fail(name + " must be in [1, " + llvm::Twine(limit) + "], found " +
                  llvm::Twine(value));
  // "out/" and "out" name the same artifact (the staging directory goes
  // beside it, not into it).
  if (buildArtifact && !StringRef(outputPath).rtrim('/').empty())
    outputPath = StringRef(outputPath).rtrim('/').str();
  if (computeDType != "f32" && computeDType != "bf16" && computeDType != "f16")
    return fail("--dtype must be f32, bf16 or f16, found '" + computeDType + "'");
  if (kvCacheDType.getNumOccurrences() == 0)
    kvCacheDType = computeDType;
  bool precisionGuard = precisionGuardOption.getNumOccurrences() ? bool(precisionGuardOption)
                                                                 : computeDType == "f16";
  if (precisionGuard && computeDType != "f16")
    return fail("--precision-guard needs --dtype f16 (bf16 and f32 do not overflow), found "
                "--dtype " + computeDType);
  if (precisionGuard && tensorParallel * pipelineParallel > 1)
    return fail("--precision-guard needs a one-rank plan (--tp 1 --pp 1); turn it off with "
                "--precision-guard=false");
  HostLibraryOptions hostOptions;
  hostOptions.optLevel = llvmOptLevel;
  hostOptions.kvCacheDType = kvCacheDType;
  hostOptions.sanitizers.assign(sanitize.begin(), sanitize.end());
  if (::falcon::getKVCacheElementBytes(kvCacheDType) == 0)
    return fail("--kv-cache-dtype must be f32, bf16 or f16, found '" + kvCacheDType + "'");
  std::optional<FalconQuantizeWeightsOptions> quantization;
  if (quantize != "none") {
    if (quantize != "int8" && quantize != "int4")
      return fail("--quantize must be none, int8 or int4, found '" + quantize + "'");
    quantization = FalconQuantizeWeightsOptions{quantize == "int8" ? 8 : 4, groupSize,
                                                bool(symmetricQuantization)};
    if (std::string problem = ::falcon::checkWeightQuantization(
            {unsigned(quantization->bits), groupSize, bool(symmetricQuantization)});
        !problem.empty())
      return fail("--group-size: " + problem);
  } else if (groupSize.getNumOccurrences() > 0 || symmetricQuantization.getNumOccurrences() > 0) {
    return fail("--group-size and --symmetric need --quantize int8 or int4");
  }
  if (int8Activations != "auto" && int8Activations != "on" && int8Activations != "off")
    return fail("--int8-activations must be auto, on or off, found '" + int8Activations + "'");
  if (llvm::Error error = checkHostLibraryOptions(hostOptions))
    return fail(llvm::toString(std::move(error)));
  if (emit == EmitKind::Object && outputPath == "-")
    return fail("--emit=obj needs -o FILE");
  if (buildArtifact)
    if (llvm::Error error = checkArtifactDestination(outputPath))
      return fail(llvm::toString(std::move(error)));
  StringRef model(modelPath);
  if (!llvm::sys::fs::is_directory(model) && !model.ends_with(".json") &&
      !model.ends_with(".mlir"))
    return fail(modelPath + ": expected a checkpoint directory, a config.json or a "
                            ".mlir file");
  auto progress = [&](llvm::StringRef message) {
    if (!quiet)
      llvm::errs() << "falcon-compile: " << message << "\n";
  };

  DialectRegistry registry;
  registerAllDialects(registry);
  registerAllExtensions(registry);
  registry.insert<FalconDialect>();
  registerFalconBufferizationExternalModels(registry);
  MLIRContext context(registry);
  context.loadDialect<FalconDialect, func::FuncDialect, scf::SCFDialect,
                      tensor::TensorDialect, arith::ArithDialect>();
  // The target goes into the IR, where only the strategy and the code
  // emitter read it.
  llvm::Expected<CPUTargetAttr> cpuTarget = resolveCPUTarget(
      &context, tripleName, cpuName, cpuFeatures,
      parallelChunks.getNumOccurrences() ? int64_t(parallelChunks) : 0);
  if (!cpuTarget)
    return fail(llvm::toString(cpuTarget.takeError()));

  // An artifact is a library linked here: for this machine's architecture.
  if (buildArtifact)
    if (llvm::Error error = checkHostLinkable(*cpuTarget))
      return fail(llvm::toString(std::move(error)));
  OwningOpRef<ModuleOp> module;
  std::optional<Checkpoint> checkpoint;
  bool pruning = pruneHeads.getNumOccurrences() || pruneFFN.getNumOccurrences();
  if (!pruning && (calibrationText.getNumOccurrences() || calibrationIds.getNumOccurrences() ||
                   pruneOut.getNumOccurrences()))
    return fail("--calibration, --calibration-ids and --prune-out go with --prune-heads or "
                "--prune-ffn");
  if (pruning && StringRef(modelPath).ends_with(".mlir"))
    return fail(modelPath + ": --prune-heads/--prune-ffn need a checkpoint directory, not a "
                            ".mlir file");
  if (StringRef(modelPath).ends_with(".mlir")) {
    if (printStats)
      return fail(modelPath + ": --print-stats needs a checkpoint directory "
                              "or a config.json, not a .mlir file");
    llvm::SourceMgr sourceMgr;
    module = parseSourceFile<ModuleOp>(modelPath, sourceMgr, &context);
    if (!module)
      return fail(modelPath + ": cannot parse the module");
  } else {
    llvm::Expected<Checkpoint> opened = openCheckpoint(modelPath);
    if (!opened)
      return fail(llvm::toString(opened.takeError()));
    checkpoint = std::move(*opened);
    if (pruning) {
      llvm::Expected<Checkpoint> pruned = pruneCheckpoint(*checkpoint, !quiet);
      if (!pruned)
        return fail(modelPath + ": " + llvm::toString(pruned.takeError()));
      checkpoint = std::move(*pruned);
    }
    // A one-layer model's layer loop is folded away: the guard cannot tell
    // its layer from the LM head (falcon-compute-precision).
    if (precisionGuard && checkpoint->config.numLayers < 2) {
      if (precisionGuardOption.getNumOccurrences())
        return fail(modelPath + ": --precision-guard needs two or more layers");
      precisionGuard = false;
    }
    // A GPTQ/AWQ checkpoint's projections are read as they were quantized.
    if (const std::optional<CheckpointQuantization> &stored = checkpoint->config.quantization) {
      const char *method =
          stored->method == CheckpointQuantization::Method::GPTQ ? "GPTQ" : "AWQ";
      if (quantization && (unsigned(quantization->bits) != stored->bits ||
                           (groupSize.getNumOccurrences() && groupSize != stored->groupSize) ||
                           quantization->symmetric))
        return fail(llvm::formatv("{0}: the checkpoint is {1} int{2} with groups of {3}; it is "
                                  "imported as it is (--quantize cannot re-quantize it)",
                                  modelPath, method, stored->bits, stored->groupSize)
                        .str());
      // A rank's shard of an act-order weight would cut its groups.
      if (stored->actOrder && tensorParallel > 1)
        return fail(modelPath + ": " + method +
                    " act-order (desc_act) checkpoints run with --tp 1 only: a shard of the "
                    "inputs would split their quantization groups");
      quantization = FalconQuantizeWeightsOptions{int(stored->bits), stored->groupSize,
                                                  /*symmetric=*/false, stored->actOrder};
    }
    FloatType cacheType = Float32Type::get(&context);
    if (kvCacheDType == "bf16")
      cacheType = BFloat16Type::get(&context);
    else if (kvCacheDType == "f16")
      cacheType = Float16Type::get(&context);
    module = importFalconModel(&context, *checkpoint, cacheType);
  }
  if (quantizeLMHead) {
    if (!quantization)
      return fail("--quantize-lm-head needs --quantize int8 or int4 (or a GPTQ/AWQ "
                  "checkpoint)");
    quantization->lmHeadBits = 8;
  }
  // --int8-activations=on where the CPU cannot: refused before any work.
  if (int8Activations == "on" && quantization) {
    for (int64_t bits : {int64_t(quantization->bits), int64_t(quantization->lmHeadBits)})
      if (bits && !hasIntegerDecode(*cpuTarget, unsigned(bits)))
        return fail(llvm::formatv("--int8-activations=on with int{0} weights needs a CPU with "
                                  "AVX512-VNNI (avx512vnni){1}, which {2} has not (auto: only "
                                  "where it has)",
                                  bits, bits == 4 ? " or AVX2" : "", cpuTarget->getCpu())
                        .str());
  }
  // A .mlir module keeps its own target unless a target option was given.
  bool targetOptionGiven = cpuName.getNumOccurrences() || tripleName.getNumOccurrences() ||
                           cpuFeatures.getNumOccurrences() ||
                           parallelChunks.getNumOccurrences();
  if (targetOptionGiven || !(*module)->hasAttr(FalconDialect::kTargetAttrName))
    (*module)->setAttr(FalconDialect::kTargetAttrName, *cpuTarget);
  if (failed(verify(*module)))
    return fail(modelPath + ": the module does not verify");
  // The checkpoint files the artifact copies (tokenizer, generation config).
  uint64_t copiedFileBytes = 0;
  if (checkpoint)
    for (const std::string &path : getCopiedCheckpointFiles(*checkpoint)) {
      uint64_t size = 0;
      if (!llvm::sys::fs::file_size(path, size))
        copiedFileBytes += size;
    }
  // A tokenizer the runtime cannot use is copied all the same, but said now,
  // not when the artifact is first given a text prompt.
  if (checkpoint && buildArtifact)
    for (const std::string &path : getCopiedCheckpointFiles(*checkpoint)) {
      if (llvm::sys::path::filename(path) != "tokenizer.json")
        continue;
      falcon_tokenizer_t *tokenizer = nullptr;
      if (falcon_status_t status = falcon_tokenizer_open(path.c_str(), &tokenizer)) {
        llvm::WithColor::warning(llvm::errs(), "falcon-compile")
            << falcon_status_message(status)
            << "; the artifact will take --prompt-ids only\n";
        falcon_status_free(status);
      }
      falcon_tokenizer_release(tokenizer);
    }
  // Statistics of the imported module (before lowering), printed last.
  std::string stats;
  if (printStats) {
    llvm::raw_string_ostream os(stats);
    ModelStatsOptions statsOptions;
    statsOptions.kvCacheDType = kvCacheDType;
    statsOptions.kvCacheElementBytes = ::falcon::getKVCacheElementBytes(kvCacheDType);
    statsOptions.capacity = statsCapacity;
    statsOptions.batch = statsBatch;
    statsOptions.copiedFileBytes = copiedFileBytes;
    statsOptions.attentionKeys = attentionKeys ? int64_t(attentionKeys) : kCPUAttentionBlockKeys;
    printModelStats(*checkpoint, *module, statsOptions, os);
  }

  int64_t worldSize = tensorParallel * pipelineParallel;
  // An impossible plan is one line naming the numbers, before any work.
  if (auto config = (*module)->getAttrOfType<ModelConfigAttr>(FalconDialect::kModelConfigAttrName))
    if (llvm::Expected<ParallelPlan> plan = computeParallelPlan(
            PlanModel::fromConfig(config), tensorParallel, pipelineParallel);
        !plan)
      return fail(modelPath + ": " + llvm::toString(plan.takeError()));
  if (wantPlan) {
    std::optional<::falcon::WeightQuantization> planQuantization;
    if (quantization)
      planQuantization = ::falcon::WeightQuantization{unsigned(quantization->bits),
                                                      quantization->groupSize,
                                                      quantization->symmetric};
    FailureOr<llvm::json::Object> report = reportParallelPlan(
        *module, tensorParallel, pipelineParallel, ::falcon::getKVCacheElementBytes(kvCacheDType),
        planQuantization ? &*planQuantization : nullptr,
        quantization && quantization->lmHeadBits == 8);
    if (failed(report))
      return fail(modelPath + ": no plan of tp " + llvm::Twine(tensorParallel) + " x pp " +
                  llvm::Twine(pipelineParallel));
    if (printPlan == PlanFormat::JSON)
      llvm::outs() << llvm::formatv("{0:2}", llvm::json::Value(std::move(*report))) << "\n";
    else
      printParallelPlanReport(*report, llvm::outs());
    if (emit == EmitKind::None && !buildArtifact) {
      llvm::outs() << stats;
      return 0;
    }
  }
  if (worldSize > 1 && !buildArtifact && emit != EmitKind::None)
    return fail("--emit prints one program: with --tp/--pp, use falcon-opt "
                "--falcon-shard=\"tp=N pp=M rank=R\" on --emit=falcon's output");

  // The destination's parent directories are created as `mkdir -p` would
  // (once the model is known to be good). Then room for the artifact, before
  // any work: the staging directory goes beside the destination, and a
  // previous artifact there stays until the new one is complete.
  if (buildArtifact && checkpoint && checkpoint->tensors) {
    StringRef parent = llvm::sys::path::parent_path(outputPath.getValue());
    if (!parent.empty()) {
      if (std::error_code ec = llvm::sys::fs::create_directories(parent))
        return fail(parent + ": cannot create the artifact's parent directory: " +
                    ec.message());
      if (!llvm::sys::fs::is_directory(parent))
        return fail(parent + ": is not a directory; cannot put the artifact in it");
    }
    if (llvm::Error error = checkFreeDiskSpace(*checkpoint, &context, copiedFileBytes))
      return fail(llvm::toString(std::move(error)));
  }

  // Lower as far as the requested output needs, once per rank of the plan.
  auto target = (*module)->getAttrOfType<CPUTargetAttr>(FalconDialect::kTargetAttrName);
  FalconCPUSelectLoweringStrategyOptions strategy;
  strategy.tileRows = tileRows;
  strategy.tileCols = tileCols;
  strategy.tileDepth = tileDepth;
  strategy.attentionRows = attentionRows;
  strategy.attentionKeys = attentionKeys;
  strategy.int8Activations = int8Activations;
  // Decided now that the checkpoint's layer count is known.
  hostOptions.precisionGuard = precisionGuard;
  auto lower = [&](ModuleOp rankModule, int64_t rank) -> LogicalResult {
    PassManager pm(&context);
    if (worldSize > 1)
      pm.addPass(createFalconShard(FalconShardOptions{tensorParallel, pipelineParallel, rank}));
    if (emit == EmitKind::Linalg)
      buildFalconToLinalgPipeline(pm);
    else
      buildFalconCPUPipeline(pm, strategy, quantization,
                             FalconComputePrecisionOptions{computeDType, precisionGuard});
    return pm.run(rankModule);
  };
  if ((emit != EmitKind::None && emit != EmitKind::Falcon) || buildArtifact) {
    if (buildArtifact && (!checkpoint || !checkpoint->tensors))
      return fail(modelPath + ": an artifact needs a checkpoint directory with "
                              "weights (config.json + model.safetensors)");
    progress(("lowering falcon -> linalg -> llvm for " + target.getCpu() + " (" +
              target.getTriple() + ", " + llvm::Twine(target.getVectorBits()) +
              "-bit vectors, parallel loops in " + llvm::Twine(target.getThreads()) +
              " blocks)" +
              (worldSize > 1 ? ", " + llvm::Twine(worldSize) + " ranks (tp " +
                                   llvm::Twine(tensorParallel) + " x pp " +
                                   llvm::Twine(pipelineParallel) + ")"
                             : llvm::Twine("")))
                 .str());
  }
  if (buildArtifact) {
    std::vector<OwningOpRef<ModuleOp>> rankModules;
    std::vector<RankProgram> programs;
    for (int64_t rank = 0; rank < worldSize; ++rank) {
      OwningOpRef<ModuleOp> rankModule =
          worldSize > 1 ? OwningOpRef<ModuleOp>(module->clone()) : std::move(module);
      if (worldSize > 1)
        progress(llvm::formatv("rank {0} of {1}: sharding and lowering", rank, worldSize)
                     .str());
      if (failed(lower(*rankModule, rank)))
        return fail(modelPath + ": lowering failed");
      // The layout falcon-bind-weights compiled into the code.
      FailureOr<WeightLayout> layout = getWeightLayoutAttr(*rankModule);
      if (failed(layout))
        return fail(modelPath + ": the lowered module has no weight layout");
      programs.push_back({*rankModule, std::move(*layout)});
      rankModules.push_back(std::move(rankModule));
    }
    if (llvm::Error error = writeArtifact(outputPath, *checkpoint, programs, tensorParallel,
                                          pipelineParallel, hostOptions, progress))
      return fail(llvm::toString(std::move(error)));
    progress("wrote " + outputPath);
    llvm::outs() << stats;
    return 0;
  }
  if ((emit != EmitKind::None && emit != EmitKind::Falcon) && failed(lower(*module, 0)))
    return fail(modelPath + ": lowering failed");
  if (emit == EmitKind::None) {
    llvm::outs() << stats;
    return 0;
  }
  if (emit == EmitKind::Object) {
    // Written to a temporary beside the output and renamed: a failure
    // leaves nothing behind.
    std::string temporary = outputPath + ".tmp";
    if (llvm::Error error = emitObjectFile(*module, temporary, hostOptions)) {
      llvm::sys::fs::remove(temporary);
      return fail(llvm::toString(std::move(error)));
    }
    if (std::error_code ec = llvm::sys::fs::rename(temporary, outputPath)) {
      llvm::sys::fs::remove(temporary);
      return fail(outputPath + ": " + ec.message());
    }
    llvm::outs() << stats;
    return 0;
  }
  std::string llvmIR;
  if (emit == EmitKind::LLVMIR) {
    llvm::Expected<std::string> text = translateToLLVMIRText(*module);
    if (!text)
      return fail(llvm::toString(text.takeError()));
    llvmIR = std::move(*text);
  }

  // Everything succeeded: now write.
  std::string errorMessage;
  std::unique_ptr<llvm::ToolOutputFile> output =
      openOutputFile(outputPath, &errorMessage);
  if (!output)
    return fail(outputPath + ": " + errorMessage);
  llvm::outs() << stats;
  llvm::outs().flush();
  if (emit == EmitKind::LLVMIR)
    output->os() << llvmIR;
  else if (emit != EmitKind::None)
    module->print(output->os());
  if (llvm::Error error = ::falcon::closeOutputStream(output->os(), outputPath))
    return fail(llvm::toString(std::move(error)));
  output->keep();
  return 0;
}
