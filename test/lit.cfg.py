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
config.test_exec_root = os.path.join(config.falcon_obj_root, "test" + ("-" + mcpu if mcpu else ""))
config.substitutions.append(("%mcpu", "--mcpu=" + mcpu if mcpu else ""))
# What this machine can run: artifacts for CPUs with AVX-512 only where it has it.
try:
    with open("/proc/cpuinfo") as cpuinfo:
        if " avx512f" in cpuinfo.read():
            config.available_features.add("avx512")
except OSError:
    pass

# Our tools first, then LLVM's (FileCheck, not, split-file).
for path in [config.llvm_tools_dir, os.path.join(config.falcon_obj_root, "bin")]:
    config.environment["PATH"] = path + os.pathsep + config.environment.get("PATH", os.environ["PATH"])

config.substitutions.append(("%falcon_src", config.falcon_src_root))
config.substitutions.append(("%falcon_obj", config.falcon_obj_root))
config.substitutions.append(("%examples", os.path.join(config.falcon_src_root, "examples")))
config.substitutions.append(("%fixtures", os.path.join(config.falcon_src_root, "test", "fixtures")))
config.substitutions.append(("%python", "python3"))
