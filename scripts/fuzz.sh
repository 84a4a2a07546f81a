#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang, ASan and UBSan into
# build-fuzz/ and runs each for SECONDS (default 30) from its committed seed
# corpus (fuzz/corpus/<target>/). Prints the executions per target and fails
# on any crash, sanitizer report, leak, timeout or out-of-memory; the input
# that caused it is left in build-fuzz/artifacts/<target>/.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]   e.g. scripts/fuzz.sh 600 manifest
#   JOBS=1 scripts/fuzz.sh                  fewer parallel compile jobs
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(safetensors config shard-index manifest ir)
build=build-fuzz
jobs="${JOBS:-2}"
# The sanitized configuration, with coverage for libFuzzer and no tests.
scripts/configure-sanitized.sh "$build" -DLLVM_USE_SANITIZE_COVERAGE=ON \
  -DFALCON_ENABLE_FUZZERS=ON -DFALCON_ENABLE_TESTS=OFF
nice -n 19 cmake --build "$build" --target falcon-fuzzers -j "$jobs"

# allow_user_poisoning=0: see scripts/test-sanitized.sh (BumpPtrAllocator
# slabs shared between our instrumented code and the uninstrumented libMLIR).
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:allow_user_poisoning=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export ASAN_SYMBOLIZER_PATH="${ASAN_SYMBOLIZER_PATH:-/usr/lib/llvm-22/bin/llvm-symbolizer}"
failed=()
summary=()
for target in "${targets[@]}"; do
  binary="$build/bin/falcon-fuzz-$target"
  seeds="fuzz/corpus/$target"
  # New inputs go to a scratch corpus; the committed seeds stay as they are.
  corpus="$build/corpus/$target"
  artifacts="$build/artifacts/$target/"
  log="$build/fuzz-$target.log"
  mkdir -p "$corpus" "$artifacts"
  echo "fuzz: $target for ${seconds}s"
  status=0
  nice -n 19 "$binary" -max_total_time="$seconds" -print_final_stats=1 \
    -timeout=10 -rss_limit_mb=4096 -max_len=65536 \
    -artifact_prefix="$artifacts" "$corpus" "$seeds" >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  if [ "$status" -ne 0 ]; then
    tail -40 "$log"
    failed+=("$target")
    summary+=("$target: FAILED (exit $status) after ${execs:-?} executions, see $log")
  else
    summary+=("$target: ${execs:-?} executions in ${seconds}s, no crash")
  fi
done
printf 'fuzz: %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in ${failed[*]}" >&2
  exit 1
fi
