// The target is decided once, from what LLVM knows of the triple and CPU: the
// ISA features that matter (each + or -), the vector width and registers.
// RUN: falcon-opt %s --falcon-cpu-attach-target="cpu=x86-64-v3 threads=4" | FileCheck %s --check-prefix=AVX2
// RUN: falcon-opt %s --falcon-cpu-attach-target="cpu=znver4 threads=2" | FileCheck %s --check-prefix=AVX512
// RUN: falcon-opt %s --falcon-cpu-attach-target="cpu=x86-64-v3 features=+avx512f,+avx512bf16 threads=1" | FileCheck %s --check-prefix=EXTRA
// RUN: falcon-opt %s --falcon-cpu-attach-target="triple=aarch64-linux-gnu cpu=neoverse-n1 threads=8" | FileCheck %s --check-prefix=ARM
// RUN: falcon-opt %s --falcon-cpu-attach-target="threads=3" | FileCheck %s --check-prefix=NATIVE
// RUN: not falcon-opt %s --falcon-cpu-attach-target="cpu=bogus" 2>&1 | FileCheck %s --check-prefix=BADCPU
// RUN: not falcon-opt %s --falcon-cpu-attach-target="cpu=x86-64-v3 features=+nonsense" 2>&1 | FileCheck %s --check-prefix=BADFEATURE
// RUN: not falcon-opt %s --falcon-cpu-attach-target="triple=nonsense-unknown-none cpu=generic" 2>&1 | FileCheck %s --check-prefix=BADTRIPLE
// RUN: not falcon-opt %s --falcon-cpu-attach-target="triple=aarch64-linux-gnu" 2>&1 | FileCheck %s --check-prefix=CROSSNATIVE

// AVX2: module attributes {falcon.target = #falcon.cpu_target<triple = "x86_64-{{.*}}", cpu = "x86-64-v3", features = "+sse4.2,+avx,+avx2,+fma,+f16c,-avx512f,-avx512bw,-avx512dq,-avx512vl,-avx512bf16,-avx512fp16,-avx512vnni,-avxvnni", vector_bits = 256, vector_registers = 16, threads = 4>}
// AVX512: #falcon.cpu_target<triple = "x86_64-{{.*}}", cpu = "znver4", features = "+sse4.2,+avx,+avx2,+fma,+f16c,+avx512f,+avx512bw,+avx512dq,+avx512vl,+avx512bf16,-avx512fp16,+avx512vnni,-avxvnni", vector_bits = 512, vector_registers = 32, threads = 2>
// EXTRA: features = "{{.*}}-avx512f{{.*}},+avx512f,+avx512bf16", vector_bits = 512, vector_registers = 32, threads = 1>
// ARM: #falcon.cpu_target<triple = "aarch64-unknown-linux-gnu", cpu = "neoverse-n1", features = "+neon,+fullfp16,-bf16,+dotprod,-i8mm,-sve", vector_bits = 128, vector_registers = 32, threads = 8>
// NATIVE: #falcon.cpu_target<triple = "{{.+}}", cpu = "{{.+}}", features = "{{.*}}", vector_bits = {{128|256|512}}, vector_registers = {{16|32}}, threads = 3>
// BADCPU: error: --mcpu: 'bogus' is not a CPU LLVM knows for x86_64-{{.*}}
// BADFEATURE: error: --mattr: '+nonsense' is not '+name' or '-name' with a feature LLVM knows for x86_64-{{.*}}
// BADTRIPLE: error: --mtriple: no LLVM target for 'nonsense-unknown-none'
// CROSSNATIVE: error: --mcpu=native means this machine ({{.*}}); name a CPU of aarch64-unknown-linux-gnu (e.g. --mcpu=generic)
module {
}
