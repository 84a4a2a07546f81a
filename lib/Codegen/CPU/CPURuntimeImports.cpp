//===- CPURuntimeImports.cpp - allocations through the runtime ------------===//
//
// The host library's allocation functions, written against the import table
// of falcon/Support/RuntimeImports.h. They are spelled here as LLVM-dialect
// source (parsed once per compile) because that is shorter and easier to
// check against the C header than the equivalent builder calls.
//
//===----------------------------------------------------------------------===//

#include "falcon/Codegen/CPU/Passes.h"
#include "falcon/Support/RuntimeImports.h"

#include "Falcon/IR/FalconDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/OpenMP/OpenMPDialect.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Parser/Parser.h"

namespace mlir::falcon {
#define GEN_PASS_DEF_FALCONCPURUNTIMEIMPORTS
#include "falcon/Codegen/CPU/Passes.h.inc"
} // namespace mlir::falcon

using namespace mlir;

// falcon_runtime_imports_t: {version, size, context, alloc, free,
// trace_begin, trace_end, all_reduce_sum_f32}.
static_assert(FALCON_RUNTIME_IMPORTS_VERSION == 1,
              "update the table layout below with the header");
static constexpr llvm::StringLiteral kImportsSource = R"mlir(
llvm.mlir.global external @falcon_runtime_imports() {alignment = 8 : i64} : !llvm.struct<(i32, i32, ptr, ptr, ptr, ptr, ptr, ptr)> {
  %0 = llvm.mlir.zero : !llvm.struct<(i32, i32, ptr, ptr, ptr, ptr, ptr, ptr)>
  llvm.return %0 : !llvm.struct<(i32, i32, ptr, ptr, ptr, ptr, ptr, ptr)>
}
llvm.func @aligned_alloc(i64, i64) -> !llvm.ptr
llvm.func @free(!llvm.ptr)

// `size` bytes aligned to `alignment` from the runtime, or from libc when the
// table was not filled.
llvm.func internal @falcon_imported_alloc(%alignment: i64, %size: i64) -> !llvm.ptr {
  %table = llvm.mlir.addressof @falcon_runtime_imports : !llvm.ptr
  %version = llvm.load %table : !llvm.ptr -> i32
  %zero = llvm.mlir.constant(0 : i32) : i32
  %filled = llvm.icmp "ne" %version, %zero : i32
  llvm.cond_br %filled, ^runtime, ^libc
^runtime:
  %contextSlot = llvm.getelementptr %table[0, 2] : (!llvm.ptr) -> !llvm.ptr, !llvm.struct<(i32, i32, ptr, ptr, ptr, ptr, ptr, ptr)>
  %context = llvm.load %contextSlot : !llvm.ptr -> !llvm.ptr
  %allocSlot = llvm.getelementptr %table[0, 3] : (!llvm.ptr) -> !llvm.ptr, !llvm.struct<(i32, i32, ptr, ptr, ptr, ptr, ptr, ptr)>
  %alloc = llvm.load %allocSlot : !llvm.ptr -> !llvm.ptr
  %memory = llvm.call %alloc(%context, %size, %alignment) : !llvm.ptr, (!llvm.ptr, i64, i64) -> !llvm.ptr
  llvm.return %memory : !llvm.ptr
^libc:
  // aligned_alloc wants a multiple of the alignment.
  %one = llvm.mlir.constant(1 : i64) : i64
  %minusOne = llvm.mlir.constant(-1 : i64) : i64
  %low = llvm.sub %alignment, %one : i64
  %padded = llvm.add %size, %low : i64
  %mask = llvm.xor %low, %minusOne : i64
  %rounded = llvm.and %padded, %mask : i64
  %fallback = llvm.call @aligned_alloc(%alignment, %rounded) : (i64, i64) -> !llvm.ptr
  llvm.return %fallback : !llvm.ptr
}

llvm.func internal @_mlir_memref_to_llvm_alloc(%size: i64) -> !llvm.ptr {
  %alignment = llvm.mlir.constant(64 : i64) : i64
  %memory = llvm.call @falcon_imported_alloc(%alignment, %size) : (i64, i64) -> !llvm.ptr
  llvm.return %memory : !llvm.ptr
}

llvm.func internal @_mlir_memref_to_llvm_aligned_alloc(%alignment: i64, %size: i64) -> !llvm.ptr {
  %memory = llvm.call @falcon_imported_alloc(%alignment, %size) : (i64, i64) -> !llvm.ptr
  llvm.return %memory : !llvm.ptr
}

// falcon.all_reduce on its flattened buffer (memref<?xf32>, passed as the
// C interface's descriptor {allocated, aligned, offset, [size], [stride]}):
// summed in place across the tensor-parallel ranks by the runtime. A runtime
// that cannot complete it ends the call (it does not return here); without
// the table, this is a world of one rank.
llvm.func internal @_mlir_ciface_falcon_all_reduce_sum_f32(%descriptor: !llvm.ptr) {
  %table = llvm.mlir.addressof @falcon_runtime_imports : !llvm.ptr
  %version = llvm.load %table : !llvm.ptr -> i32
  %zero = llvm.mlir.constant(0 : i32) : i32
  %filled = llvm.icmp "ne" %version, %zero : i32
  llvm.cond_br %filled, ^runtime, ^done
^runtime:
  %memref = llvm.load %descriptor : !llvm.ptr -> !llvm.struct<(ptr, ptr, i64, array<1 x i64>, array<1 x i64>)>
  %aligned = llvm.extractvalue %memref[1] : !llvm.struct<(ptr, ptr, i64, array<1 x i64>, array<1 x i64>)>
  %offset = llvm.extractvalue %memref[2] : !llvm.struct<(ptr, ptr, i64, array<1 x i64>, array<1 x i64>)>
  %count = llvm.extractvalue %memref[3, 0] : !llvm.struct<(ptr, ptr, i64, array<1 x i64>, array<1 x i64>)>
  %data = llvm.getelementptr %aligned[%offset] : (!llvm.ptr, i64) -> !llvm.ptr, f32
  %contextSlot = llvm.getelementptr %table[0, 2] : (!llvm.ptr) -> !llvm.ptr, !llvm.struct<(i32, i32, ptr, ptr, ptr, ptr, ptr, ptr)>
  %context = llvm.load %contextSlot : !llvm.ptr -> !llvm.ptr
  %reduceSlot = llvm.getelementptr %table[0, 7] : (!llvm.ptr) -> !llvm.ptr, !llvm.struct<(i32, i32, ptr, ptr, ptr, ptr, ptr, ptr)>
  %reduce = llvm.load %reduceSlot : !llvm.ptr -> !llvm.ptr
  %status = llvm.call %reduce(%context, %data, %count) : !llvm.ptr, (!llvm.ptr, !llvm.ptr, i64) -> i32
  llvm.br ^done
^done:
  llvm.return
}

llvm.func internal @_mlir_memref_to_llvm_free(%memory: !llvm.ptr) {
  %table = llvm.mlir.addressof @falcon_runtime_imports : !llvm.ptr
  %version = llvm.load %table : !llvm.ptr -> i32
  %zero = llvm.mlir.constant(0 : i32) : i32
  %filled = llvm.icmp "ne" %version, %zero : i32
  llvm.cond_br %filled, ^runtime, ^libc
^runtime:
  %contextSlot = llvm.getelementptr %table[0, 2] : (!llvm.ptr) -> !llvm.ptr, !llvm.struct<(i32, i32, ptr, ptr, ptr, ptr, ptr, ptr)>
  %context = llvm.load %contextSlot : !llvm.ptr -> !llvm.ptr
  %freeSlot = llvm.getelementptr %table[0, 4] : (!llvm.ptr) -> !llvm.ptr, !llvm.struct<(i32, i32, ptr, ptr, ptr, ptr, ptr, ptr)>
  %release = llvm.load %freeSlot : !llvm.ptr -> !llvm.ptr
  llvm.call %release(%context, %memory) : !llvm.ptr, (!llvm.ptr, !llvm.ptr) -> ()
  llvm.return
^libc:
  llvm.call @free(%memory) : (!llvm.ptr) -> ()
  llvm.return
}
)mlir";

/// The functions the memref lowering calls to allocate.
static bool isAllocation(LLVM::CallOp call) {
  std::optional<StringRef> callee = call.getCallee();
  return callee && (*callee == "_mlir_memref_to_llvm_alloc" ||
                    *callee == "_mlir_memref_to_llvm_aligned_alloc");
}

namespace {
struct FalconCPURuntimeImportsPass
    : public mlir::falcon::impl::FalconCPURuntimeImportsBase<FalconCPURuntimeImportsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    // The runtime turns an allocation it cannot give into an error status by
    // ending the call on the calling thread (Workspace::invoke); inside a
    // parallel region an OpenMP worker would be the caller, with no way back.
    WalkResult inParallel = module.walk([](LLVM::CallOp call) {
      if (!isAllocation(call) || !call->getParentOfType<omp::ParallelOp>())
        return WalkResult::advance();
      call.emitError("falcon-cpu-runtime-imports: an allocation inside a parallel region "
                     "(its failure could not be reported); hoist it out of the region");
      return WalkResult::interrupt();
    });
    if (inParallel.wasInterrupted())
      return signalPassFailure();
    // The plan's device grid (shard.grid) has no meaning in LLVM: its
    // collectives are calls of the import table by now.
    if (Operation *grid = SymbolTable::lookupSymbolIn(module, mlir::falcon::FalconDialect::kPlanGridName)) {
      if (!SymbolTable::symbolKnownUseEmpty(grid, module)) {
        grid->emitError("falcon-cpu-runtime-imports: a collective on the plan's grid was "
                        "not lowered");
        return signalPassFailure();
      }
      grid->erase();
    }
    OwningOpRef<ModuleOp> imports =
        parseSourceString<ModuleOp>(kImportsSource, ParserConfig(&getContext()));
    if (!imports) {
      module.emitError("falcon-cpu-runtime-imports: the built-in import functions do not parse");
      return signalPassFailure();
    }
    SymbolTable symbols(module);
    OpBuilder builder = OpBuilder::atBlockEnd(module.getBody());
    for (Operation &op : llvm::make_early_inc_range(*imports->getBody())) {
      StringRef name = SymbolTable::getSymbolName(&op).getValue();
      if (Operation *existing = symbols.lookup(name)) {
        // A declaration the memref lowering made (or libc's, already
        // declared) is replaced by, or kept as, ours; a definition of the
        // same name would be a clash.
        auto function = dyn_cast<LLVM::LLVMFuncOp>(existing);
        if (!function || !function.isExternal()) {
          existing->emitError() << "falcon-cpu-runtime-imports: '" << name
                                << "' is already defined";
          return signalPassFailure();
        }
        if (cast<LLVM::LLVMFuncOp>(op).isExternal())
          continue;
        existing->erase();
      }
      op.moveBefore(builder.getInsertionBlock(), builder.getInsertionPoint());
    }
  }
};
} // namespace
