//===- HostLibrary.h - LLVM dialect to a host shared library ----*- C++ -*-===//
#ifndef FALCON_TARGET_HOSTLIBRARY_H
#define FALCON_TARGET_HOSTLIBRARY_H

#include "Falcon/IR/FalconOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"

#include <string>
#include <vector>

namespace mlir::falcon {

struct HostLibraryOptions {
  /// LLVM optimization level of the IR pipeline (0 = codegen only).
  unsigned optLevel = 3;
  /// Element type of the KV cache the code was compiled for ("f32", "bf16"
  /// or "f16"): recorded in the manifest and in the exported geometry.
  std::string kvCacheDType = "f32";
  /// The entry point takes `precision_guard` (falcon-compute-precision's
  /// guard): recorded in the manifest and in the exported geometry.
  bool precisionGuard = false;
  /// Sanitizers to instrument the host code with (falcon-compile
  /// --sanitize): "address" (AddressSanitizer's instrumentation pass) and
  /// "undefined" (the checks of UndefinedBehaviorSanitizer's family that
  /// LLVM applies to IR: out-of-bounds accesses of objects of known size,
  /// reported through the UBSan runtime). The library then needs the
  /// sanitizer runtime in the process that loads it.
  std::vector<std::string> sanitizers;
};

/// Translates an LLVM-dialect module to LLVM IR, optimizes it and emits an
/// object file for the module's #falcon.cpu_target (any triple LLVM has).
llvm::Error emitObjectFile(ModuleOp module, llvm::StringRef outputPath,
                           const HostLibraryOptions &options);

/// emitObjectFile, then links the object into the shared library
/// `outputPath` (against libm and LLVM's OpenMP runtime); the target must be
/// of this machine's architecture.
llvm::Error emitHostLibrary(ModuleOp module, llvm::StringRef outputPath,
                            const HostLibraryOptions &options);

/// Success when a library for `target` can be linked on this machine (the
/// same architecture); otherwise an error that points to --emit=obj.
llvm::Error checkHostLinkable(CPUTargetAttr target);

/// Checks `options` before any work: an optimization level in 0-3.
llvm::Error checkHostLibraryOptions(const HostLibraryOptions &options);

/// The LLVM IR of `module` as text (for `falcon-compile --emit=llvm-ir`).
llvm::Expected<std::string> translateToLLVMIRText(ModuleOp module);

} // namespace mlir::falcon

#endif // FALCON_TARGET_HOSTLIBRARY_H
