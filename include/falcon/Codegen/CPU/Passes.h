//===- Passes.h - CPU code generation passes --------------------*- C++ -*-===//
#ifndef FALCON_CODEGEN_CPU_PASSES_H
#define FALCON_CODEGEN_CPU_PASSES_H

#include "Falcon/IR/FalconOps.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Dialect/X86Vector/X86VectorDialect.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"
#include "llvm/Support/Error.h"

namespace mlir::falcon {

#define GEN_PASS_DECL
#include "falcon/Codegen/CPU/Passes.h.inc"

/// Query rows x keys of one block of the tiled attention, the CPU strategy's
/// choice (and falcon-cpu-decompose-attention's without a lowering config):
/// 64 rows re-read each block of keys 1/64 as often as one row at a time, and
/// 512 keys of scores per row (2 KiB) keep a block's scores for falcon-7b's
/// 71 heads at 9 MiB.
inline constexpr int64_t kCPUAttentionBlockRows = 64;
inline constexpr int64_t kCPUAttentionBlockKeys = 512;

/// Resolves a triple (empty: this machine's), a CPU name ("native": this
/// machine's CPU and the features it really has), extra features ("+a,-b")
/// and a thread count (0: this machine's physical cores) into the target
/// attribute, or an error naming what LLVM does not know. The one place a
/// CPU target is decided: falcon-cpu-attach-target and falcon-compile's
/// up-front option check both call it.
llvm::Expected<CPUTargetAttr> resolveCPUTarget(MLIRContext *context,
                                               llvm::StringRef triple,
                                               llvm::StringRef cpu,
                                               llvm::StringRef features,
                                               int64_t threads);

/// The module's target, or an error diagnostic on `module` naming the pass
/// that should have attached it.
FailureOr<CPUTargetAttr> getCPUTarget(ModuleOp module);

/// Whether `target` runs the integer decode (int8 activations) of weights of
/// `weightBits` bits: AVX512-VNNI's vpdpbusd for int8 and int4; on AVX2
/// without it, int4 only, as vpmaddubsw + vpmaddwd (exact for codes below
/// 128; an unsigned int8 code would saturate vpmaddubsw's 16-bit sums). The
/// one definition falcon-cpu-select-lowering-strategy,
/// falcon-cpu-lower-dot-bytes and falcon-compile's up-front check of
/// --int8-activations=on share.
bool hasIntegerDecode(CPUTargetAttr target, unsigned weightBits);

#define GEN_PASS_REGISTRATION
#include "falcon/Codegen/CPU/Passes.h.inc"

} // namespace mlir::falcon

#endif // FALCON_CODEGEN_CPU_PASSES_H
