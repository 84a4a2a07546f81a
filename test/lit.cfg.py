# lit configuration for falcon-mlir's compiler tests.
import os
import lit.formats

config.name = "falcon-mlir"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir", ".test"]
config.excludes = ["lit.cfg.py", "lit.site.cfg.py", "unit", "fixtures", "Inputs",
                   "CMakeLists.txt"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.falcon_obj_root, "test")

# Our tools first, then LLVM's (FileCheck, not, split-file).
for path in [config.llvm_tools_dir, os.path.join(config.falcon_obj_root, "bin")]:
    config.environment["PATH"] = path + os.pathsep + config.environment.get("PATH", os.environ["PATH"])

config.substitutions.append(("%falcon_src", config.falcon_src_root))
config.substitutions.append(("%falcon_obj", config.falcon_obj_root))
config.substitutions.append(("%examples", os.path.join(config.falcon_src_root, "examples")))
config.substitutions.append(("%fixtures", os.path.join(config.falcon_src_root, "test", "fixtures")))
config.substitutions.append(("%python", "python3"))
