//===- HostLibrary.cpp - LLVM dialect to a host shared library ------------===//

#include "falcon/Target/HostLibrary.h"
#include "Falcon/IR/FalconOps.h"
#include "falcon/Support/OutputStream.h"

#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/OpenMP/OpenMPToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Transforms/Instrumentation/AddressSanitizer.h"
#include "llvm/Transforms/Instrumentation/BoundsChecking.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/SubtargetFeature.h"

using namespace mlir;
using namespace mlir::falcon;

static llvm::Expected<std::unique_ptr<llvm::Module>>
translate(ModuleOp module, llvm::LLVMContext &context) {
  DialectRegistry registry;
  registerBuiltinDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  registerOpenMPDialectTranslation(registry);
  module->getContext()->appendDialectRegistry(registry);
  std::unique_ptr<llvm::Module> llvmModule =
      translateModuleToLLVMIR(module, context, "falcon_model");
  if (!llvmModule)
    return llvm::createStringError("cannot translate the module to LLVM IR");
  return std::move(llvmModule);
}

llvm::Expected<std::string>
mlir::falcon::translateToLLVMIRText(ModuleOp module) {
  llvm::LLVMContext context;
  auto llvmModule = translate(module, context);
  if (!llvmModule)
    return llvmModule.takeError();
  std::string text;
  llvm::raw_string_ostream os(text);
  (*llvmModule)->print(os, nullptr);
  return text;
}

llvm::Error mlir::falcon::checkHostLibraryOptions(const HostLibraryOptions &options) {
  if (options.optLevel > 3)
    return llvm::createStringError("--llvm-opt must be 0, 1, 2 or 3, found " +
                                   llvm::Twine(options.optLevel));
  for (const std::string &sanitizer : options.sanitizers)
    if (sanitizer != "address" && sanitizer != "undefined")
      return llvm::createStringError("--sanitize: '" + sanitizer +
                                     "' is not one of address, undefined");
  return llvm::Error::success();
}

llvm::Error mlir::falcon::checkHostLinkable(CPUTargetAttr target) {
  std::string host = llvm::sys::getDefaultTargetTriple();
  if (llvm::Triple(target.getTriple()).getArch() == llvm::Triple(host).getArch())
    return llvm::Error::success();
  return llvm::createStringError("a host library for " + target.getTriple() +
                                 " cannot be linked on this machine (" + host +
                                 "); use --emit=obj to cross-compile");
}

/// The TargetMachine of the module's #falcon.cpu_target: its triple, CPU and
/// exactly its features.
static llvm::Expected<std::unique_ptr<llvm::TargetMachine>>
createTargetMachine(ModuleOp module, const HostLibraryOptions &options) {
  if (llvm::Error error = checkHostLibraryOptions(options))
    return std::move(error);
  auto target = module->getAttrOfType<CPUTargetAttr>(FalconDialect::kTargetAttrName);
  if (!target)
    return llvm::createStringError("the module has no #falcon.cpu_target");
  llvm::InitializeAllTargets();
  llvm::InitializeAllTargetMCs();
  llvm::InitializeAllAsmPrinters();
  llvm::Triple triple(target.getTriple());
  std::string error;
  const llvm::Target *llvmTarget = llvm::TargetRegistry::lookupTarget(triple, error);
  if (!llvmTarget)
    return llvm::createStringError("no LLVM target for " + triple.str() + ": " + error);
  llvm::TargetOptions targetOptions;
  std::unique_ptr<llvm::TargetMachine> machine(llvmTarget->createTargetMachine(
      triple, target.getCpu(), target.getFeatures(), targetOptions, llvm::Reloc::PIC_,
      std::nullopt, llvm::CodeGenOptLevel::Aggressive));
  if (!machine)
    return llvm::createStringError("cannot create a target machine for " +
                                   target.getCpu() + " (" + triple.str() + ")");
  return std::move(machine);
}

static void optimize(llvm::Module &module, llvm::TargetMachine &machine,
                     const HostLibraryOptions &options) {
  bool address = llvm::is_contained(options.sanitizers, "address");
  bool undefined = llvm::is_contained(options.sanitizers, "undefined");
  // AddressSanitizer instruments the functions that ask for it.
  if (address)
    for (llvm::Function &function : module)
      if (!function.isDeclaration())
        function.addFnAttr(llvm::Attribute::SanitizeAddress);
  unsigned optLevel = options.optLevel;
  if (optLevel == 0 && !address && !undefined)
    return;
  llvm::LoopAnalysisManager loopAnalyses;
  llvm::FunctionAnalysisManager functionAnalyses;
  llvm::CGSCCAnalysisManager cgsccAnalyses;
  llvm::ModuleAnalysisManager moduleAnalyses;
  llvm::PipelineTuningOptions tuning;
  tuning.LoopVectorization = true;
  tuning.SLPVectorization = true;
  llvm::PassBuilder builder(&machine, tuning);
  builder.registerModuleAnalyses(moduleAnalyses);
  builder.registerCGSCCAnalyses(cgsccAnalyses);
  builder.registerFunctionAnalyses(functionAnalyses);
  builder.registerLoopAnalyses(loopAnalyses);
  builder.crossRegisterProxies(loopAnalyses, functionAnalyses, cgsccAnalyses,
                               moduleAnalyses);
  llvm::OptimizationLevel level = optLevel >= 3   ? llvm::OptimizationLevel::O3
                                  : optLevel == 2 ? llvm::OptimizationLevel::O2
                                  : optLevel == 1 ? llvm::OptimizationLevel::O1
                                                  : llvm::OptimizationLevel::O0;
  // The sanitizers' passes run last, on the optimized code (as clang's
  // -fsanitize does): bounds checks that report through the UBSan runtime
  // (__ubsan_handle_local_out_of_bounds_abort), then ASan's instrumentation.
  builder.registerOptimizerLastEPCallback(
      [&](llvm::ModulePassManager &passes, llvm::OptimizationLevel, llvm::ThinOrFullLTOPhase) {
        if (undefined) {
          llvm::BoundsCheckingPass::Options bounds;
          bounds.Rt = llvm::BoundsCheckingPass::Options::Runtime(
              /*MinRuntime=*/false, /*MayReturn=*/false, /*HandlerPreserveAllRegs=*/false);
          passes.addPass(
              llvm::createModuleToFunctionPassAdaptor(llvm::BoundsCheckingPass(bounds)));
        }
        if (address)
          passes.addPass(llvm::AddressSanitizerPass(llvm::AddressSanitizerOptions()));
      });
  if (optLevel == 0)
    builder.buildO0DefaultPipeline(llvm::OptimizationLevel::O0).run(module, moduleAnalyses);
  else
    builder.buildPerModuleDefaultPipeline(level).run(module, moduleAnalyses);
}

llvm::Error mlir::falcon::emitObjectFile(ModuleOp module, llvm::StringRef outputPath,
                                         const HostLibraryOptions &options) {
  llvm::LLVMContext context;
  auto llvmModule = translate(module, context);
  if (!llvmModule)
    return llvmModule.takeError();
  auto machine = createTargetMachine(module, options);
  if (!machine)
    return machine.takeError();
  (*llvmModule)->setDataLayout((*machine)->createDataLayout());
  (*llvmModule)->setTargetTriple((*machine)->getTargetTriple());
  optimize(**llvmModule, **machine, options);
  std::error_code ec;
  llvm::raw_fd_ostream os(outputPath, ec, llvm::sys::fs::OF_None);
  if (ec)
    return llvm::createStringError(outputPath + ": " + ec.message());
  llvm::legacy::PassManager passes;
  if ((*machine)->addPassesToEmitFile(passes, os, nullptr, llvm::CodeGenFileType::ObjectFile)) {
    llvm::consumeError(::falcon::closeOutputStream(os, outputPath));
    return llvm::createStringError("the target cannot emit object files");
  }
  passes.run(**llvmModule);
  return ::falcon::closeOutputStream(os, outputPath);
}

llvm::Error mlir::falcon::emitHostLibrary(ModuleOp module,
                                          llvm::StringRef outputPath,
                                          const HostLibraryOptions &options) {
  auto target = module->getAttrOfType<CPUTargetAttr>(FalconDialect::kTargetAttrName);
  if (target)
    if (llvm::Error error = checkHostLinkable(target))
      return error;
  // Object file next to the output, removed once linked.
  std::string objectPath = (outputPath + ".o").str();
  if (llvm::Error error = emitObjectFile(module, objectPath, options)) {
    llvm::sys::fs::remove(objectPath);
    return error;
  }
  // Link with the system C compiler driver: it knows where libc/libm live.
  llvm::ErrorOr<std::string> linker = llvm::sys::findProgramByName("cc");
  if (!linker)
    linker = llvm::sys::findProgramByName("clang-22");
  if (!linker)
    return llvm::createStringError("no C compiler driver (cc or clang-22) found to link the "
                     "host library");
  std::string output = outputPath.str();
  // Parallel loops call LLVM's OpenMP runtime (libomp, from LLVM's library
  // directory, found again at load time through the rpath).
  std::string libraryDir = std::string("-L") + FALCON_LLVM_LIBRARY_DIR;
  std::string rpath = std::string("-Wl,-rpath,") + FALCON_LLVM_LIBRARY_DIR;
  llvm::SmallVector<llvm::StringRef> args = {*linker,    "-shared", "-o",
                                             output,     objectPath, libraryDir,
                                             rpath,      "-lomp",    "-lm"};
  std::string errorMessage;
  int rc = llvm::sys::ExecuteAndWait(*linker, args, std::nullopt, {}, 0, 0,
                                     &errorMessage);
  llvm::sys::fs::remove(objectPath);
  if (rc != 0)
    return llvm::createStringError("linking " + outputPath + " failed (" + *linker + " exit " +
                     std::to_string(rc) + ")" +
                     (errorMessage.empty() ? "" : ": " + errorMessage));
  return llvm::Error::success();
}
