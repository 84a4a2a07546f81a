//===- CPUTarget.cpp - the CPU target attribute ---------------------------===//
//
// Decides #falcon.cpu_target from what LLVM knows of a triple and a CPU, and
// the falcon-cpu-attach-target pass that puts it on the module.
//
//===----------------------------------------------------------------------===//

#include "falcon/Codegen/CPU/Passes.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/Threading.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/Triple.h"

#include <thread>

namespace mlir::falcon {
#define GEN_PASS_DEF_FALCONCPUATTACHTARGET
#include "falcon/Codegen/CPU/Passes.h.inc"
} // namespace mlir::falcon

using namespace mlir;
using namespace mlir::falcon;

/// The ISA features the generated code's speed or correctness depends on;
/// each is recorded as enabled or disabled, whatever the CPU name implies.
static ArrayRef<StringRef> relevantFeatures(const llvm::Triple &triple) {
  static const StringRef x86[] = {"sse4.2",     "avx",        "avx2",       "fma",
                                  "f16c",       "avx512f",    "avx512bw",   "avx512dq",
                                  "avx512vl",   "avx512bf16", "avx512fp16", "avx512vnni",
                                  "avxvnni"};
  static const StringRef aarch64[] = {"neon", "fullfp16", "bf16", "dotprod", "i8mm",
                                      "sve"};
  if (triple.isX86())
    return x86;
  if (triple.isAArch64())
    return aarch64;
  return {};
}

llvm::Expected<CPUTargetAttr>
mlir::falcon::resolveCPUTarget(MLIRContext *context, StringRef tripleName, StringRef cpu,
                               StringRef extraFeatures, int64_t threads) {
  llvm::InitializeAllTargetInfos();
  llvm::InitializeAllTargets();
  llvm::InitializeAllTargetMCs();
  std::string hostTriple = llvm::sys::getDefaultTargetTriple();
  llvm::Triple triple(llvm::Triple::normalize(tripleName.empty() ? hostTriple : tripleName));
  bool native = cpu.empty() || cpu == "native";
  if (native && triple.str() != llvm::Triple::normalize(hostTriple))
    return llvm::createStringError("--mcpu=native means this machine (" + hostTriple +
                                   "); name a CPU of " + triple.str() +
                                   " (e.g. --mcpu=generic)");
  std::string error;
  const llvm::Target *target = llvm::TargetRegistry::lookupTarget(triple, error);
  if (!target)
    return llvm::createStringError("--mtriple: no LLVM target for '" + triple.str() +
                                   "': " + error);
  std::string cpuName = native ? llvm::sys::getHostCPUName().str() : cpu.str();
  // A subtarget for the generic CPU answers "is this a CPU name" without
  // LLVM's "not a recognized processor" warning on stderr.
  std::unique_ptr<llvm::MCSubtargetInfo> generic(
      target->createMCSubtargetInfo(triple, "", ""));
  if (!generic || (!native && !generic->isCPUStringValid(cpuName)))
    return llvm::createStringError("--mcpu: '" + cpuName + "' is not a CPU LLVM knows for " +
                                   triple.str() +
                                   (triple.isX86() ? " (e.g. x86-64-v3, znver4, skylake-avx512)"
                                                   : ""));
  std::unique_ptr<llvm::MCSubtargetInfo> subtarget(
      target->createMCSubtargetInfo(triple, cpuName, ""));
  llvm::StringMap<bool> hostFeatures;
  if (native)
    hostFeatures = llvm::sys::getHostCPUFeatures();

  SmallVector<std::string> features;
  for (StringRef feature : relevantFeatures(triple)) {
    bool enabled = native ? hostFeatures.lookup(feature)
                          : subtarget->checkFeatures(("+" + feature).str());
    features.push_back((enabled ? "+" : "-") + feature.str());
  }
  SmallVector<StringRef> extra;
  extraFeatures.split(extra, ',', /*MaxSplit=*/-1, /*KeepEmpty=*/false);
  for (StringRef feature : extra) {
    feature = feature.trim();
    StringRef name = feature.drop_front();
    bool known = llvm::any_of(subtarget->getAllProcessorFeatures(),
                              [&](const llvm::SubtargetFeatureKV &kv) {
                                return StringRef(kv.Key) == name;
                              });
    if (feature.size() < 2 || (feature.front() != '+' && feature.front() != '-') || !known)
      return llvm::createStringError("--mattr: '" + feature +
                                     "' is not '+name' or '-name' with a feature LLVM knows "
                                     "for " +
                                     triple.str());
    features.push_back(feature.str());
  }

  if (threads == 0) {
    int cores = llvm::get_physical_cores(); // -1 when unknown
    threads = std::max(1u, cores > 0 ? unsigned(cores) : std::thread::hardware_concurrency());
  }
  if (threads < 1 || threads > 1024)
    return llvm::createStringError("threads must be in [1, 1024], found " + Twine(threads));

  std::string featureString = llvm::join(features, ",");
  // The vector width and register count follow from the final features.
  auto probe = CPUTargetAttr::get(context, triple.str(), cpuName, featureString, 128, 16, 1);
  int64_t vectorBits = 128, vectorRegisters = 16;
  if (triple.isX86()) {
    bool avx512 = probe.hasFeature("avx512f");
    vectorBits = avx512 ? 512 : probe.hasFeature("avx") ? 256 : 128;
    vectorRegisters = avx512 ? 32 : 16;
  } else if (triple.isAArch64()) {
    vectorRegisters = 32;
  }
  return CPUTargetAttr::get(context, triple.str(), cpuName, featureString, vectorBits,
                            vectorRegisters, threads);
}

FailureOr<CPUTargetAttr> mlir::falcon::getCPUTarget(ModuleOp module) {
  auto target = module->getAttrOfType<CPUTargetAttr>(FalconDialect::kTargetAttrName);
  if (!target)
    return module.emitError() << "expects a #falcon.cpu_target as '"
                              << FalconDialect::kTargetAttrName
                              << "' on the module (run falcon-cpu-attach-target)";
  return target;
}

bool mlir::falcon::hasIntegerDecode(CPUTargetAttr target, unsigned weightBits) {
  if (target.hasFeature("avx512vnni") && target.hasFeature("avx512bw"))
    return true;
  return weightBits == 4 && target.hasFeature("avx2");
}

namespace {
struct FalconCPUAttachTargetPass
    : public mlir::falcon::impl::FalconCPUAttachTargetBase<FalconCPUAttachTargetPass> {
  using Base::Base;

  void runOnOperation() override {
    llvm::Expected<CPUTargetAttr> target =
        resolveCPUTarget(&getContext(), triple, cpu, features, threads);
    if (!target) {
      getOperation().emitError() << llvm::toString(target.takeError());
      return signalPassFailure();
    }
    getOperation()->setAttr(FalconDialect::kTargetAttrName, *target);
  }
};
} // namespace
