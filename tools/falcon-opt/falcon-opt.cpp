//===- falcon-opt.cpp - the falcon pass-debugging driver ------------------===//
//
// mlir-opt with the falcon dialect: every upstream dialect, pass and
// extension, plus ours.
//
//===----------------------------------------------------------------------===//

#include "Falcon/IR/FalconDialect.h"
#include "falcon/Codegen/CPU/Passes.h"
#include "falcon/Conversion/Passes.h"
#include "falcon/Pipelines/Pipelines.h"
#include "falcon/Support/ToolVersion.h"
#include "falcon/Transforms/Passes.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  // MlirOptMain parses the command line; our --version printer is set first.
  ::falcon::setToolVersionPrinter("falcon-opt");
  mlir::registerAllPasses();
  mlir::falcon::registerFalconTransformsPasses();
  mlir::falcon::registerFalconConversionPasses();
  mlir::falcon::registerFalconCPUCodegenPasses();
  mlir::falcon::registerFalconPipelines();
  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  registry.insert<mlir::falcon::FalconDialect>();
  mlir::falcon::registerFalconBufferizationExternalModels(registry);
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "falcon-mlir optimizer driver\n", registry));
}
