// RUN: falcon-opt %s -split-input-file --falcon-cpu-runtime-imports -verify-diagnostics | FileCheck %s

// The memref lowering's allocation functions are defined to call the
// runtime's import table (libc when the table is not filled).
// CHECK-LABEL: llvm.func @forward
// CHECK: llvm.call @_mlir_memref_to_llvm_alloc
// CHECK: llvm.mlir.global external @falcon_runtime_imports
// CHECK: llvm.func internal @falcon_imported_alloc
// CHECK: llvm.func internal @_mlir_memref_to_llvm_alloc(
// CHECK: llvm.call @falcon_imported_alloc
llvm.func @_mlir_memref_to_llvm_alloc(i64) -> !llvm.ptr
llvm.func @forward(%size: i64) -> !llvm.ptr {
  %0 = llvm.call @_mlir_memref_to_llvm_alloc(%size) : (i64) -> !llvm.ptr
  llvm.return %0 : !llvm.ptr
}

// -----

// Inside a parallel region an allocation's failure could not be turned into
// an error status (the runtime ends the call on the calling thread): refused.
llvm.func @_mlir_memref_to_llvm_alloc(i64) -> !llvm.ptr
llvm.func @forward(%size: i64) {
  omp.parallel {
    // expected-error @+1 {{falcon-cpu-runtime-imports: an allocation inside a parallel region (its failure could not be reported); hoist it out of the region}}
    %0 = llvm.call @_mlir_memref_to_llvm_alloc(%size) : (i64) -> !llvm.ptr
    omp.terminator
  }
  llvm.return
}
