//===- Passes.td - CPU code generation passes --------------*- tablegen -*-===//
//
// The CPU back end after IREE's split: falcon-cpu-attach-target puts the
// target on the module, falcon-cpu-select-lowering-strategy is the only pass
// that reads it and records its decisions as #falcon.lowering_config, and the
// tiling passes consume those configs.
//
//===----------------------------------------------------------------------===//

#ifndef FALCON_CODEGEN_CPU_PASSES_TD
#define FALCON_CODEGEN_CPU_PASSES_TD

include "mlir/Pass/PassBase.td"

def FalconCPUAttachTarget : Pass<"falcon-cpu-attach-target", "ModuleOp"> {
  let summary = "Attach the CPU target (#falcon.cpu_target) to the module";
  let description = [{
    Resolves a triple, a CPU name and extra features into a
    `#falcon.cpu_target` (the ISA features that matter to the generated code,
    the vector width and register count, the thread split) and sets it as the
    module's `falcon.target` (like upstream's `nvvm-attach-target`). The
    default is this machine: its triple, its CPU and the features it really
    has (`cpu=native`), and its physical cores. An unknown triple, CPU or
    feature is an error.
  }];
  let options = [
    Option<"triple", "triple", "std::string", /*default=*/"\"\"",
           "LLVM target triple (default: this machine's)">,
    Option<"cpu", "cpu", "std::string", /*default=*/"\"native\"",
           "LLVM CPU name, or 'native' for this machine's CPU and features">,
    Option<"features", "features", "std::string", /*default=*/"\"\"",
           "Extra features, '+name' or '-name' separated by commas">,
    Option<"threads", "threads", "int64_t", /*default=*/"0",
           "Blocks parallel loops are split into (0: this machine's physical cores)">
  ];
  let dependentDialects = ["::mlir::falcon::FalconDialect"];
}

def FalconCPUSelectLoweringStrategy
    : Pass<"falcon-cpu-select-lowering-strategy", "ModuleOp"> {
  let summary = "Choose tiles, threads and loop orders for the module's CPU";
  let description = [{
    Reads the module's `#falcon.cpu_target` and writes a
    `#falcon.lowering_config` on every operation it decides for:

    * projections (`isProjection`): the register tile `[rows, cols, depth]`
      sized for the target's vector registers — `cols` is two vectors of f32
      lanes, `rows` the accumulator rows that fit beside two weight vectors
      and a broadcast (8 x 32 on AVX-512, 6 x 16 on AVX2, 8 x 8 on NEON),
      `depth` 256 input features — the thread split, and
      `decode_activation_bits = 8` where the CPU has AVX512-VNNI (integer
      dot products for the decode of quantized weights; `int8-activations`);
    * `falcon.attention`: the thread split along the KV groups, or along the
      query heads of a single group (multi-query), and the `attention_block`
      `[rows, keys]` of its tiled online softmax (64 x 512).

    The options override the register tile and the attention block (0: the
    target's choice).
  }];
  let options = [
    Option<"tileRows", "tile-rows", "int64_t", /*default=*/"0",
           "Sequence rows of a projection's register tile (0: the target's choice)">,
    Option<"tileCols", "tile-cols", "int64_t", /*default=*/"0",
           "Output columns of a projection's register tile (0: the target's choice)">,
    Option<"tileDepth", "tile-depth", "int64_t", /*default=*/"0",
           "Input features per block of a register tile's reduction (0: 256)">,
    Option<"attentionRows", "attention-rows", "int64_t", /*default=*/"0",
           "Query rows per block of the tiled attention (0: 64)">,
    Option<"attentionKeys", "attention-keys", "int64_t", /*default=*/"0",
           "Keys per block of the tiled attention (0: 512)">,
    Option<"int8Activations", "int8-activations", "std::string", /*default=*/"\"auto\"",
           "Decode projections with quantized weights quantize their activation rows to "
           "int8 and sum integer dot products: auto (where the CPU has AVX512-VNNI), on "
           "(an error elsewhere) or off">
  ];
  let dependentDialects = ["::mlir::falcon::FalconDialect"];
}

def FalconCPUDecomposeAttention : Pass<"falcon-cpu-decompose-attention", "func::FuncOp"> {
  let summary = "Decompose falcon.attention into linalg for the CPU";
  let description = [{
    Rewrites every `falcon.attention` into `linalg.generic`s on tensors with
    loop orders chosen for the CPU: the cache append, then a loop over blocks
    of query rows and, inside it, over blocks of keys (the lowering config's
    `attention_block`, default 64 x 512; a block of rows visits only the keys
    its last row may see): the dot products with the keys innermost (with at
    least 8 query rows the visible keys are first transposed to
    `[B, K, d, T]` so that they are read contiguously), the causal mask and
    ALiBi bias, and an online softmax — a running maximum, denominator and
    weighted sum of values per row, rescaled by exp(old max - new max) when
    a block raises the maximum — with the head features innermost. The
    scores of one block exist at a time, so the attention's memory grows
    linearly with the prompt, not with its square. Every generic over a
    whole block inherits the attention's `#falcon.lowering_config` (its
    thread split); the per-row statistics run on one thread.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::tensor::TensorDialect"];
}

def FalconCPUWeightLayout : Pass<"falcon-cpu-weight-layout", "ModuleOp"> {
  let summary = "Pack projection weights [in, out] for the CPU kernels";
  let description = [{
    A projection `y = x W^T` with `W` stored `[out, in]` (the checkpoint's
    layout, which the target-neutral lowering reads) reduces along rows of
    `W`; with `W` packed `[in, out]` the innermost loop is a contiguous
    `y[n] += x[k] * W[k, n]` over output features that vectorizes and streams
    each weight once per token. This pass rewrites every projection generic
    (`isProjection` with an `[out, in]` weight) whose weight is a
    `falcon.param` into the `[in, out]` form, reading the param with the
    weight encoding `permutation = [1, 0]`; the artifact writer packs those
    transposed (include/falcon/Support/WeightTransform.h). A tied LM head
    gets its own transposed copy of the embedding table (the embedding
    itself keeps reading rows).
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect"];
}

def FalconCPUTileProjections : Pass<"falcon-cpu-tile-projections", "func::FuncOp"> {
  let summary = "Tile projections for threads and registers, prefill and decode";
  let description = [{
    Rewrites every projection `linalg.generic` on tensors that carries a
    `#falcon.lowering_config` with a register tile `[rows, cols, depth]`
    (loops batch, in, seq, out) into an `scf.if` on the sequence length,
    since one compiled function serves both:

    * at least `rows` rows (prefill, compute-bound): the output columns are
      split into `threads` blocks run as an `scf.forall` (OpenMP threads),
      then tiled into loops (batch, `depth` input features, `cols` columns,
      `rows` rows). The column and row loops are peeled so that every tile
      of the main loops has the static size `rows` x `cols`; those tiles, and
      those of the last rows (fewer than `rows`), keep the lowering config
      for falcon-cpu-projection-microkernels; the last columns (when the
      columns are not a multiple of `cols`) stay generic;
    * fewer rows (decode, bandwidth-bound): the input features (the
      reduction) are split into `threads` contiguous blocks of weight rows,
      computed in parallel (`scf.forall`) into partial sums that are added
      afterwards (split-K), so each thread streams its own part of the
      weight. With `decode_activation_bits = 8` and a quantized weight
      (`falcon.dequantize` on its producer), each activation row is first
      quantized to int8 in blocks of 16 rows of codes (16 inputs, 32 for int4; fewer when the weight's
      groups are smaller), and each thread's loops sum integer dot products
      of the codes with it (`vpdpbusd`, 64 products per instruction), one f32
      scale per block and group (CPUInt8Decode.cpp).
  }];
  let dependentDialects = ["::mlir::scf::SCFDialect", "::mlir::affine::AffineDialect",
                           "::mlir::tensor::TensorDialect", "::mlir::vector::VectorDialect",
                           "::mlir::math::MathDialect", "::mlir::LLVM::LLVMDialect"];
}

def FalconCPUParallelHeads : Pass<"falcon-cpu-parallel-heads", "func::FuncOp"> {
  let summary = "Run the attention heads on threads";
  let description = [{
    Tiles every `linalg.generic` whose `#falcon.lowering_config` names a
    `thread_dim` (the attention generics of falcon-cpu-decompose-attention:
    scores, softmax, context) along that loop dimension into `threads`
    blocks, as an `scf.forall` that the CPU pipeline turns into an OpenMP
    parallel loop. Each head is computed by one thread in the same order as
    without threads.
  }];
  let dependentDialects = ["::mlir::scf::SCFDialect", "::mlir::affine::AffineDialect",
                           "::mlir::tensor::TensorDialect"];
}

def FalconCPUProjectionMicrokernels
    : Pass<"falcon-cpu-projection-microkernels", "func::FuncOp"> {
  let summary = "Turn static projection tiles into vector FMA register tiles";
  let description = [{
    Replaces every projection tile with a `#falcon.lowering_config` register
    tile `[T, ...]` whose column extent is static
    (`y[1, R, C] += x[1, R, K] * W[K, C]`) by a register tile: R accumulators
    of `vector<C x f32>` read from `y`, a loop over K that loads one weight row
    `W[k, 0:C]` and does R `vector.fma`s with the broadcast inputs
    `x[0, r, k]`, and the accumulators written back. Each weight load is
    reused by R rows and each input by C columns, from registers; narrower
    weights (bf16/f16) are read as they are and extended in registers, and a
    quantized weight's row is dequantized in registers from its rows of
    codes, scales and zero points (the tile's body evaluated on vectors). A tile
    with a dynamic row count n (the last rows of a sequence) becomes a T-row
    tile under `scf.if 1 <= n <= T` whose rows past n repeat row n - 1 (the
    same value written to the same place); other counts run the generic.
    Tiles with dynamic columns are left alone. Activations rounded to
    bf16/f16 (falcon-compute-precision) are extended as they are broadcast.

    With `bf16_dot_products` in the config (bf16 activations and weight),
    the accumulators are `vector<16 x f32>` and the loop takes the inputs in
    pairs: the weight rows k and k + 1 interleaved (`vector.interleave`, 32
    bf16 per 16 columns), the activations `x[0, r, k:k+2]` broadcast as one
    32-bit lane, and `x86vector.avx512.dot` (`vdpbf16ps`) adding both
    products to each lane; an odd last input takes the FMA step.
  }];
  let dependentDialects = ["::mlir::affine::AffineDialect", "::mlir::scf::SCFDialect",
                           "::mlir::vector::VectorDialect", "::mlir::tensor::TensorDialect",
                           "::mlir::x86vector::X86VectorDialect"];
}

def FalconCPUExpandBF16 : Pass<"falcon-cpu-expand-bf16", "func::FuncOp"> {
  let summary = "Rewrite bf16 conversions as integer arithmetic";
  let description = [{
    `arith.truncf` to bf16 (round to nearest even) and `arith.extf` from bf16
    become bitcasts, shifts and adds on i32 (upstream's
    `populateExpandBFloat16Patterns`); an integer converted straight to bf16
    goes through f32 first. Without AVX512-BF16, LLVM lowers an
    f32 -> bf16 truncation to a call of compiler-rt's `__truncsfbf2`, which
    the host library does not link (GCC 12's libgcc lacks it): every CPU runs
    the expanded form, and it rounds exactly as the instruction does.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect"];
}

def FalconCPULowerDotBytes : Pass<"falcon-cpu-lower-dot-bytes", "func::FuncOp"> {
  let summary = "Lower falcon.dot_bytes to AVX512-VNNI's vpdpbusd or AVX2's byte multiplies";
  let description = [{
    Rewrites every `falcon.dot_bytes` into `llvm.call_intrinsic
    "llvm.x86.avx512.vpdpbusd.512"` where the target has AVX512-VNNI, and
    otherwise, per 256-bit half, into `llvm.x86.avx2.pmadd.ub.sw` (pairs of
    unsigned-by-signed byte products summed to i16) and `llvm.x86.avx2.pmadd.wd`
    by ones (pairs of those summed to i32), which is exact while the unsigned
    bytes are below 128 (int4 codes: the strategy asks for no other on such
    a target). It runs after bufferization, whose
    buffer deallocation refuses operations of unknown memory effects (as an
    intrinsic call is).
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect", "::mlir::vector::VectorDialect"];
}

def FalconCPURuntimeImports : Pass<"falcon-cpu-runtime-imports", "ModuleOp"> {
  let summary = "Route the host code's allocations through the runtime's import table";
  let description = [{
    Runs on the LLVM dialect after `finalize-memref-to-llvm{use-generic-functions}`,
    which calls `_mlir_memref_to_llvm_alloc`, `_mlir_memref_to_llvm_aligned_alloc`
    and `_mlir_memref_to_llvm_free` instead of malloc/free. This pass adds the
    exported, zero-initialized table `falcon_runtime_imports`
    (falcon/Support/RuntimeImports.h) and defines those three functions
    (internal linkage) to call the table's `alloc`/`free` with its `context`,
    so that the runtime, which fills the table when it loads the library,
    owns and counts every byte of workspace. A library whose table was not
    filled (version 0: loaded by something other than the runtime) uses
    aligned_alloc/free.
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect"];
}

#endif // FALCON_CODEGEN_CPU_PASSES_TD
