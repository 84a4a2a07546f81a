#!/usr/bin/env bash
# Builds falcon-mlir with clang, AddressSanitizer and UndefinedBehaviorSanitizer
# into build-asan/ and runs the whole test suite (lit + GoogleTest) there; any
# sanitizer report fails its test. Only the project's own code is
# instrumented: libMLIR.so, libLLVM.so and libomp come from Debian unsanitized,
# and the host libraries falcon-compile builds are instrumented only when
# compiled with --sanitize (test/Runtime/sanitize.test).
#
#   scripts/test-sanitized.sh            configure, build, run ctest
#   JOBS=1 scripts/test-sanitized.sh     fewer parallel compile and test jobs
set -euo pipefail
cd "$(dirname "$0")/.."
build=build-asan
jobs="${JOBS:-2}"
scripts/configure-sanitized.sh "$build"
nice -n 19 cmake --build "$build" --target all falcon-test-depends -j "$jobs"

# Any report ends the process with an error (halt_on_error, exit code 86);
# leaks are reported too. allocator_may_return_null: a failed or oversized
# malloc returns NULL as it does without ASan (the runtime turns that into
# RESOURCE_EXHAUSTED, and tests check it) instead of aborting.
# allow_user_poisoning=0: LLVM's BumpPtrAllocator poisons its free slab space
# when its inline code is compiled with ASan (ours) and unpoisons each
# allocation; libMLIR.so's uninstrumented copy allocates from the same slabs
# without unpoisoning, so MLIR writing its own storage would read as a
# use-after-poison (a false report from mixing instrumented and plain code).
# The symbolizer turns addresses into file:line.
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=0:detect_leaks=1:allocator_may_return_null=1:allow_user_poisoning=0:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:exitcode=86${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=86${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-}"
export ASAN_SYMBOLIZER_PATH="${ASAN_SYMBOLIZER_PATH:-/usr/lib/llvm-22/bin/llvm-symbolizer}"
export FALCON_SANITIZED_BUILD=1
ctest --test-dir "$build" --output-on-failure -j "$jobs"
