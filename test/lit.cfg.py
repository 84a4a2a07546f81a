# lit configuration for falcon-mlir's compiler tests.
import os
import lit.formats

config.name = "falcon-mlir"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir", ".test"]
config.excludes = ["lit.cfg.py", "lit.site.cfg.py", "unit", "fixtures", "Inputs",
                   "CMakeLists.txt"]
config.test_source_root = os.path.dirname(__file__)
# `--param mcpu=NAME` compiles the end-to-end tests' artifacts for that CPU
# (ctest runs the parity tests once more for x86-64-v3, AVX2); each CPU gets
# its own output tree so that the runs can go in parallel.
mcpu = lit_config.params.get("mcpu", "")
# `--param kv_cache_dtype=bf16` compiles them with a bf16 KV cache (ctest runs
# the parity tests so too). The logits are then compared with a tolerance of
# 0.1 instead of 1e-4: bf16 keeps 8 significant bits, so each cached key and
# value is rounded by up to 2^-9 of itself; on the parity fixtures that moves
# the logits by at most 0.073 (measured against transformers' f32), and every
# fixture still generates transformers' 20 greedy tokens.
kv_cache_dtype = lit_config.params.get("kv_cache_dtype", "f32")
suffix = "".join("-" + part for part in (mcpu, "" if kv_cache_dtype == "f32" else "kv-" + kv_cache_dtype) if part)
config.test_exec_root = os.path.join(config.falcon_obj_root, "test" + suffix)
config.substitutions.append(("%mcpu", "--mcpu=" + mcpu if mcpu else ""))
config.substitutions.append(("%kvcache", "--kv-cache-dtype=" + kv_cache_dtype))
# %tol: our logits against transformers'; %selftol: our decode steps against
# our own prefill over the same tokens (differently ordered sums).
config.substitutions.append(("%selftol", "5e-5" if kv_cache_dtype == "f32" else "0.1"))
config.substitutions.append(("%tol", "1e-4" if kv_cache_dtype == "f32" else "0.1"))
# Feature kv-cache-f32 (or -bf16, -f16): a test whose greedy tokens come near a
# tie checks them with `%if kv-cache-f32 %{ ... %}` only where the cache is exact.
config.available_features.add("kv-cache-" + kv_cache_dtype)
# What this machine can run: artifacts for CPUs with AVX-512 only where it has it.
try:
    with open("/proc/cpuinfo") as cpuinfo:
        flags = cpuinfo.read()
        if " avx512f" in flags:
            config.available_features.add("avx512")
        # AVX2: the int4 integer decode of x86-64-v3 artifacts (vpmaddubsw).
        if " avx2" in flags:
            config.available_features.add("avx2")
        # AVX512-VNNI: int8 activations at decode (falcon-compile --int8-activations).
        if " avx512_vnni" in flags:
            config.available_features.add("avx512vnni")
except OSError:
    pass
# Artifacts for this machine's own CPU (no --param mcpu).
if not mcpu:
    config.available_features.add("native-cpu")
    # AVX512-BF16: --dtype bf16 sums bf16 pairs with vdpbf16ps.
    if "avx512" in config.available_features and " avx512_bf16" in flags:
        config.available_features.add("native-avx512bf16")

# A build with sanitizers (scripts/test-sanitized.sh): feature `asan` where
# AddressSanitizer is in, which reserves terabytes of address space for its
# shadow memory and so cannot start under a `ulimit -v`.
if "Address" in getattr(config, "falcon_sanitizers", ""):
    config.available_features.add("asan")
# %sanitizer_runtime runs a command with the ASan (+UBSan) runtime, for host
# libraries compiled with --sanitize: a sanitized build's tools have it
# linked in; others get clang's shared runtime preloaded (leak checking off:
# the tools themselves were not built for it).
if "asan" in config.available_features:
    config.substitutions.append(("%sanitizer_runtime", ""))
else:
    config.substitutions.append((
        "%sanitizer_runtime",
        "env LD_PRELOAD=/usr/lib/llvm-22/lib/clang/22/lib/linux/libclang_rt.asan-x86_64.so "
        "ASAN_OPTIONS=detect_leaks=0"))

# %embed_cc / %embed_cmake_flags: how an outside program is compiled against
# the installed runtime (test/Install). A sanitized build's runtime library
# references the ASan/UBSan runtime, so the program that links it must be
# built by clang with the same sanitizers.
if "asan" in config.available_features:
    sanitize = "-fsanitize=address,undefined"
    config.substitutions.append(("%embed_cc", "clang-22 " + sanitize))
    config.substitutions.append((
        "%embed_cmake_flags",
        "-DCMAKE_C_COMPILER=clang-22 -DCMAKE_C_FLAGS=" + sanitize))
else:
    config.substitutions.append(("%embed_cc", "cc"))
    config.substitutions.append(("%embed_cmake_flags", ""))

# Our tools first, then LLVM's (FileCheck, not, split-file).
for path in [config.llvm_tools_dir, os.path.join(config.falcon_obj_root, "bin")]:
    config.environment["PATH"] = path + os.pathsep + config.environment.get("PATH", os.environ["PATH"])

config.substitutions.append(("%falcon_src", config.falcon_src_root))
config.substitutions.append(("%falcon_obj", config.falcon_obj_root))
# project(VERSION) of the top-level CMakeLists.txt (test/Install).
config.substitutions.append(("%falcon_version", config.falcon_version))
config.substitutions.append(("%examples", os.path.join(config.falcon_src_root, "examples")))
config.substitutions.append(("%fixtures", os.path.join(config.falcon_src_root, "test", "fixtures")))
config.substitutions.append(("%python", "python3"))
