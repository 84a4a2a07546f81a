#!/usr/bin/env bash
# Configures a clang-22 build of falcon-mlir with AddressSanitizer and
# UndefinedBehaviorSanitizer into BUILD_DIR (every check but vptr: LLVM and
# MLIR are built without RTTI; no recovery, so a report ends the process).
# Used by scripts/test-sanitized.sh and scripts/fuzz.sh; run every time
# (cheap once configured), so that a changed flag here takes effect.
#
#   scripts/configure-sanitized.sh BUILD_DIR [CMAKE_ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
build="$1"
shift
cmake -G Ninja -S . -B "$build" \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22 \
  -DMLIR_DIR=/usr/lib/llvm-22/lib/cmake/mlir \
  -DLLVM_EXTERNAL_LIT=/usr/lib/llvm-22/bin/lit \
  -DLLVM_USE_LINKER=lld \
  -DLLVM_USE_SANITIZER="Address;Undefined" \
  -DLLVM_UBSAN_FLAGS="-fsanitize=undefined -fno-sanitize=vptr -fno-sanitize-recover=all" \
  -DFALCON_TEST_PARITY_VARIANTS=OFF \
  -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
  "$@"
