//===- FalconIRFuzzer.cpp - fuzz the falcon dialect's IR parser and verifier ===//
//
// Parses the input as a module with the falcon dialect (and func, arith,
// tensor, which its IR uses) and verifies it; diagnostics are dropped.
//
//===----------------------------------------------------------------------===//

#include "Falcon/IR/FalconDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"

#include <cstdint>
#include <memory>
#include <string>

namespace {
std::unique_ptr<mlir::MLIRContext> createContext() {
  mlir::DialectRegistry registry;
  registry.insert<mlir::falcon::FalconDialect, mlir::func::FuncDialect,
                  mlir::arith::ArithDialect, mlir::tensor::TensorDialect>();
  auto context =
      std::make_unique<mlir::MLIRContext>(registry, mlir::MLIRContext::Threading::DISABLED);
  context->loadAllAvailableDialects();
  context->getDiagEngine().registerHandler([](mlir::Diagnostic &) { return mlir::success(); });
  return context;
}

/// A context lives for this many inputs: the attributes and types each input
/// creates stay uniqued in it, so one context for a whole run grows without
/// bound, and a fresh one per input spends most of the time loading dialects.
constexpr unsigned kInputsPerContext = 1000;
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  // NUL-terminated, as every file MLIR reads is (MemoryBuffer::getFile): the
  // MLIR lexer relies on the terminator, and on a buffer that ends without one
  // it reads past the end (found by this fuzzer in its first minute:
  // `#falcon.weigfh` at the very end of the input).
  std::string text(reinterpret_cast<const char *>(data), size);
  static std::unique_ptr<mlir::MLIRContext> context;
  static unsigned inputs = 0;
  if (!context || ++inputs % kInputsPerContext == 0)
    context = createContext();
  {
    mlir::OwningOpRef<mlir::ModuleOp> module =
        mlir::parseSourceString<mlir::ModuleOp>(text, context.get());
    if (module)
      (void)mlir::verify(*module);
  }
  return 0;
}
