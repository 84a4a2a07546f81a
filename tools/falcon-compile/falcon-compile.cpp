//===- falcon-compile.cpp - the falcon-mlir ahead-of-time compiler --------===//
//
// falcon-compile MODEL [--emit=falcon] [--print-stats] [-o FILE]
//
// MODEL is a Hugging Face checkpoint directory, a lone config.json or a .mlir
// file. Output is written only once everything succeeded: an error leaves no
// partial file behind.
//
//===----------------------------------------------------------------------===//

#include "Falcon/IR/FalconDialect.h"
#include "falcon/Import/Importer.h"
#include "falcon/Import/ModelStats.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"

using namespace mlir;
using namespace mlir::falcon;

namespace {
enum class EmitKind { None, Falcon };

llvm::cl::OptionCategory category("falcon-compile options");
llvm::cl::opt<std::string> modelPath(
    llvm::cl::Positional, llvm::cl::Required,
    llvm::cl::desc("<checkpoint dir | config.json | file.mlir>"),
    llvm::cl::cat(category));
llvm::cl::opt<std::string> outputPath("o", llvm::cl::desc("Output file"),
                                      llvm::cl::value_desc("path"),
                                      llvm::cl::init("-"),
                                      llvm::cl::cat(category));
llvm::cl::opt<EmitKind> emit(
    "emit", llvm::cl::desc("IR to print"), llvm::cl::init(EmitKind::None),
    llvm::cl::values(clEnumValN(EmitKind::Falcon, "falcon",
                                "the imported falcon dialect module")),
    llvm::cl::cat(category));
llvm::cl::opt<bool> printStats(
    "print-stats",
    llvm::cl::desc("Print the parameter count, weight bytes at bf16/int8/int4, "
                   "KV-cache bytes per token and the IR size"),
    llvm::cl::cat(category));
} // namespace

static int fail(const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "falcon-compile") << message << "\n";
  return 1;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  llvm::cl::HideUnrelatedOptions(category);
  llvm::cl::ParseCommandLineOptions(argc, argv,
                                    "falcon-mlir ahead-of-time compiler\n");
  if (emit == EmitKind::None && !printStats)
    return fail("nothing to do: pass --emit=falcon and/or --print-stats");

  MLIRContext context;
  context.loadDialect<FalconDialect, func::FuncDialect, scf::SCFDialect,
                      tensor::TensorDialect, arith::ArithDialect>();
  OwningOpRef<ModuleOp> module;
  std::optional<Checkpoint> checkpoint;
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
    module = importFalconModel(&context, *checkpoint);
  }
  if (failed(verify(*module)))
    return fail(modelPath + ": the module does not verify");

  // Everything succeeded: now write.
  std::string errorMessage;
  std::unique_ptr<llvm::ToolOutputFile> output =
      openOutputFile(outputPath, &errorMessage);
  if (!output)
    return fail(outputPath + ": " + errorMessage);
  if (printStats)
    printModelStats(checkpoint->config, checkpoint->name, *module,
                    emit == EmitKind::None ? output->os() : llvm::outs());
  if (emit == EmitKind::Falcon)
    module->print(output->os());
  output->keep();
  return 0;
}
